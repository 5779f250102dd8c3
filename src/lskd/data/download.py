"""Checksum-verified, atomic file download and the published checksums (``checksums.json``).

:func:`download_file` streams a URL (``http(s)://`` or ``file://``) into a temporary file next to
the destination while hashing it, checks the digest(s), and only then moves it into place with
``os.replace``: the destination either does not exist or holds a verified file, never a partial one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import tempfile
import urllib.request
from collections.abc import Sequence
from importlib import resources
from typing import Any, BinaryIO

from lskd.data.registry import DatasetCorruptedError, PathLike

CHUNK = 1 << 20


class ChecksumError(DatasetCorruptedError):
    """A file's digest differs from the expected one."""


@functools.cache
def load_checksums() -> dict[str, Any]:
    """The parsed ``checksums.json`` shipped with the package."""
    return json.loads(resources.files("lskd.data").joinpath("checksums.json").read_text())


def file_digests(path: PathLike, algorithms: Sequence[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of ``path`` for each hashlib algorithm name."""
    hashes = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            for h in hashes.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashes.items()}


def _expected(sha256: str | None, md5: str | None) -> dict[str, str]:
    expected = {k: v.lower() for k, v in (("sha256", sha256), ("md5", md5)) if v}
    if not expected:
        raise ValueError("refusing an unverified download: give sha256 and/or md5")
    return expected


def verify_file(path: PathLike, *, sha256: str | None = None, md5: str | None = None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` matches every given digest."""
    expected = _expected(sha256, md5)
    actual = file_digests(path, list(expected))
    bad = [f"{a} {actual[a]} (expected {expected[a]})" for a in expected if actual[a] != expected[a]]
    if bad:
        raise ChecksumError(f"{path}: checksum mismatch: " + "; ".join(bad))


def _open_url(url: str, timeout: float) -> BinaryIO:
    """Open ``url`` for reading (indirection so tests can monkeypatch the fetch)."""
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - callers pass known URLs


def download_file(
    url: str, dest: PathLike, *, sha256: str | None = None, md5: str | None = None, timeout: float = 60.0,
) -> pathlib.Path:
    """Download ``url`` to ``dest`` after verifying its digest(s); return ``dest``.

    An existing ``dest`` that already verifies is kept as is.  On a mismatch or any error the
    temporary file is removed, ``dest`` is left untouched, and the error is raised
    (:class:`ChecksumError` for a digest mismatch).
    """
    expected = _expected(sha256, md5)
    dest = pathlib.Path(dest)
    if dest.is_file():
        try:
            verify_file(dest, sha256=sha256, md5=md5)
            return dest
        except ChecksumError:
            pass  # re-download over it
    dest.parent.mkdir(parents=True, exist_ok=True)
    hashes = {a: hashlib.new(a) for a in expected}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = pathlib.Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _open_url(url, timeout) as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                for h in hashes.values():
                    h.update(chunk)
            out.flush()
            os.fsync(out.fileno())
        bad = [f"{a} {h.hexdigest()} (expected {expected[a]})" for a, h in hashes.items() if h.hexdigest() != expected[a]]
        if bad:
            raise ChecksumError(f"download of {url} failed verification: " + "; ".join(bad))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def download_from_mirrors(
    mirrors: Sequence[str], filename: str, dest: PathLike, *, sha256: str | None = None, md5: str | None = None,
) -> pathlib.Path:
    """Try ``mirror + filename`` for each mirror in turn; raise the last error if all fail."""
    errors: list[str] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            return download_file(url, dest, sha256=sha256, md5=md5)
        except (OSError, ChecksumError) as err:
            errors.append(f"{url}: {err}")
    raise OSError(f"could not download {filename}:\n  " + "\n  ".join(errors))
