"""Checksum-verified, atomic file download and the published checksums (``checksums.json``).

:func:`download_file` streams a URL (``http(s)://`` or ``file://``) into a temporary file next to
the destination while hashing it, checks the digest(s), and only then moves it into place with
``os.replace``: the destination either does not exist or holds a verified file, never a partial one.
:func:`download_to_temp` is the same stream for a file whose digest is not known yet (teacher weights
trusted on first use, :mod:`lskd.teachers`): it returns the temporary file and its SHA-256, and the
caller checks the digest and moves the file into place or deletes it.

Why not pooch (made for verified, cached downloads): it has no ``file://`` downloader (the tests and
local mirrors serve archives that way), it names cached files by URL rather than by content digest, and
with no known hash it stores the file in its cache first and only logs the digest afterwards; lskd needs
the digest before anything lands in the cache, so that a file that does not match a pinned digest or
the track's lock never does. Both fit in the few lines below (urllib + hashlib), without a dependency.
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
    tmp, actual = _stream(url, dest.parent, dest.name, list(expected), timeout)
    try:
        bad = [f"{a} {actual[a]} (expected {expected[a]})" for a in expected if actual[a] != expected[a]]
        if bad:
            raise ChecksumError(f"download of {url} failed verification: " + "; ".join(bad))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def stream_to_temp(src: BinaryIO, folder: pathlib.Path, name: str,
                   algorithms: Sequence[str] = ("sha256",)) -> tuple[pathlib.Path, dict[str, str]]:
    """Copy the readable ``src`` into a new temporary file ``folder/.NAME.*.part`` while hashing it; return it and
    its digests. On any error the temporary file is removed."""
    folder.mkdir(parents=True, exist_ok=True)
    hashes = {a: hashlib.new(a) for a in algorithms}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    tmp = pathlib.Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                for h in hashes.values():
                    h.update(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, {a: h.hexdigest() for a, h in hashes.items()}


def _stream(url: str, folder: pathlib.Path, name: str, algorithms: Sequence[str],
            timeout: float) -> tuple[pathlib.Path, dict[str, str]]:
    """Stream ``url`` into a new temporary file in ``folder`` while hashing it (:func:`stream_to_temp`)."""
    with _open_url(url, timeout) as src:
        return stream_to_temp(src, folder, name, algorithms)


def download_to_temp(url: str, folder: PathLike, *, timeout: float = 60.0) -> tuple[pathlib.Path, str]:
    """Download ``url`` into a new temporary file in ``folder`` (``.NAME.*.part``) and return it with its SHA-256.
    Nothing is verified here: the caller compares the digest and then moves the file into place (``os.replace``,
    same folder or file system) or deletes it. On a download error no file is left."""
    tmp, digests = _stream(url, pathlib.Path(folder), url.rsplit("/", 1)[-1], ("sha256",), timeout)
    return tmp, digests["sha256"]


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
