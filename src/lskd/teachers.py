"""Published teacher weights: recorded checksums, the shared download cache, and members of tar archives.

The ``pretrained`` block of a teacher (``workflow/schemas/config.schema.yaml``) takes three forms:

1. a weight file, ``url`` or ``file`` with ``sha256``;
2. a member of a tar archive, ``url``/``file`` of the archive plus ``member``, ``sha256`` of the member and (for a
   ``url``) ``archive_sha256``: mdistiller's ``cifar_teachers.tar``;
3. a timm tag, ``timm: ARCH.TAG``, alone (timm downloads it, not pinned) or with ``url``/``file`` + ``sha256``.

``sha256: recorded`` (or ``archive_sha256: recorded``) takes the digest from ``lskd/data/teachers.json``; where
none is recorded, :func:`resolve_checksums` refuses with a message that says how to compute it. Every byte that
is loaded is verified first: the archive is downloaded once into :func:`cache_dir` (atomically, under a file
lock in ``cache_dir()/locks``, so concurrent jobs share it), and the member is extracted atomically into the cache
and verified before use.
A checksum mismatch leaves no file behind.

Importing this module loads neither torch nor timm (the download helpers are imported where used), so the
workflow's config checks stay fast.
``python -m lskd.teachers ARCHIVE.tar`` prints the SHA-256 of an archive and of each of its members.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import hashlib
import json
import os
import pathlib
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from importlib import resources
from typing import Any

RECORDED = "recorded"
CACHE_ENV = "LSKD_CACHE"
CHUNK = 1 << 20


class ChecksumMissingError(ValueError):
    """A pretrained teacher has no usable SHA-256 (none given and none recorded); the message says how to get one.
    ``problems`` (one line per missing digest) and ``hints`` (how to compute them) let callers merge several."""

    def __init__(self, problems: list[str], hints: list[str]) -> None:
        self.problems, self.hints = problems, hints
        super().__init__(format_missing(problems, hints))


def format_missing(problems: list[str], hints: list[str]) -> str:
    """The refusal message for missing checksums (hints deduplicated, in order)."""
    return ("refusing to fetch teacher weights without a checksum (lskd loads only verified files):\n  "
            + "\n  ".join(problems) + "\n" + "\n".join(dict.fromkeys(hints)))


class PretrainedFormError(ValueError):
    """A ``pretrained`` block mixes or lacks keys (e.g. ``member`` without an archive)."""


@functools.cache
def load_records() -> dict[str, Any]:
    """The parsed ``lskd/data/teachers.json``."""
    return json.loads(resources.files("lskd.data").joinpath("teachers.json").read_text())


def cache_dir() -> pathlib.Path:
    """Where downloaded archives and extracted members live: ``$LSKD_CACHE``, else ``$XDG_CACHE_HOME/lskd``,
    else ``~/.cache/lskd``."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "lskd"


# ---------------------------------------------------------------------------------------------- config checks
def check_form(pretrained: dict[str, Any], model: str, where: str) -> None:
    """Structural checks of one ``pretrained`` block (no network, no torch). Raises :class:`PretrainedFormError`."""
    source = [k for k in ("url", "file") if pretrained.get(k)]
    tag = pretrained.get("timm")
    if len(source) > 1:
        raise PretrainedFormError(f"{where}: give url or file, not both")
    if pretrained.get("member") and not source:
        raise PretrainedFormError(f"{where}.member: a member needs the archive's url or file")
    if not source and not tag:
        raise PretrainedFormError(f"{where}: source pretrained needs pretrained.url or pretrained.file (and sha256), "
                                  "or pretrained.timm (a timm tag such as resnet34.tv_in1k)")
    if pretrained.get("member") and tag:
        raise PretrainedFormError(f"{where}: member (a tar archive) and timm cannot be combined")
    if pretrained.get("archive_sha256") and not pretrained.get("member"):
        raise PretrainedFormError(f"{where}.archive_sha256: only meaningful with member (a tar archive)")
    if tag and tag.split(".", 1)[0] != model:
        raise PretrainedFormError(f"{where}.timm: tag {tag!r} is a {tag.split('.', 1)[0]!r}, but the teacher's model "
                                  f"is {model!r}; set model: {tag.split('.', 1)[0]}")


def _archive_record(pretrained: dict[str, Any]) -> dict[str, Any] | None:
    """The teachers.json archive record matching the block's url (or, for a local file, its file name)."""
    url, file = pretrained.get("url"), pretrained.get("file")
    for record in load_records()["archives"].values():
        if url and url == record["url"]:
            return record
        if file and pathlib.Path(file).name == record["url"].rsplit("/", 1)[-1]:
            return record
    return None


def _how_to(pretrained: dict[str, Any], which: str) -> str:
    name = (pretrained.get("url") or pretrained.get("file") or "").rsplit("/", 1)[-1]
    if which == "sha256" and pretrained.get("member"):
        return f"tar -xOf {name} {pretrained['member']} | sha256sum"
    return f"sha256sum {name}"


def _hints(pretrained: dict[str, Any]) -> list[str]:
    name = (pretrained.get("url") or pretrained.get("file") or "").rsplit("/", 1)[-1]
    hints = [f"Download once: curl -LO {pretrained['url']}"] if pretrained.get("url") else []
    if pretrained.get("member"):
        hints.append(f"`python -m lskd.teachers {name}` prints the archive's and every member's SHA-256.")
    return hints + ["Check the digests against a source you trust before pasting them "
                    "(README: GPU and paper-scale tracks)."]


def resolve_checksums(pretrained: dict[str, Any], where: str = "pretrained") -> dict[str, Any]:
    """A copy of ``pretrained`` whose ``sha256`` / ``archive_sha256`` are hex digests: ``recorded`` is looked up
    in teachers.json. Raises :class:`ChecksumMissingError` when a needed digest is unknown."""
    out = copy.deepcopy(pretrained)
    source = out.get("url") or out.get("file")
    if not source:  # timm tag alone: timm/huggingface_hub fetch it, nothing to pin
        return out
    record = _archive_record(out)
    # a downloaded archive must be pinned; a local one is checked when archive_sha256 is given
    needed = ["sha256"] + (["archive_sha256"] if out.get("member") and (out.get("url") or out.get("archive_sha256"))
                           else [])
    problems = []
    for key in needed:
        value = out.get(key)
        what = (out.get("member") or source) if key == "sha256" else source
        if value == RECORDED:
            found = None
            if record is not None:
                if key == "archive_sha256":
                    found = record.get("sha256")
                elif out.get("member"):
                    found = (record["members"].get(out["member"]) or {}).get("sha256")
            if found:
                out[key] = found
                continue
            problems.append(f"{where}.{key}: 'recorded', but lskd/data/teachers.json records no SHA-256 for {what}; "
                            f"put the 64 hex digits of `{_how_to(out, key)}` here")
        elif not value:
            problems.append(f"{where}.{key}: missing; put the 64 hex digits of `{_how_to(out, key)}` here")
    if problems:
        raise ChecksumMissingError(problems, _hints(out))
    for tag, entry in load_records()["timm"].items():
        if tag.startswith("_") or out.get("url") != entry.get("torchvision_url"):
            continue
        prefix = entry["torchvision_sha256_prefix"]
        if not out["sha256"].startswith(prefix):
            raise ChecksumMissingError([f"{where}.sha256: torchvision names {out['url']} by its SHA-256 prefix "
                                        f"{prefix}, but the configured digest starts {out['sha256'][:8]}"], [])
    return out


# ---------------------------------------------------------------------------------------------- fetching
@contextlib.contextmanager
def file_lock(path: pathlib.Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if needed): concurrent jobs fetching the same file wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_archive(pretrained: dict[str, Any]) -> pathlib.Path:
    """The verified archive: a local ``file`` (checked against ``archive_sha256`` when given) or ``url``
    downloaded once into ``cache_dir()/archives/<sha256>/``."""
    from lskd.data.download import download_file, verify_file

    if pretrained.get("file"):
        path = pathlib.Path(pretrained["file"]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"pretrained archive {path} does not exist")
        if pretrained.get("archive_sha256"):
            verify_file(path, sha256=pretrained["archive_sha256"])
        return path
    url, sha256 = pretrained["url"], pretrained["archive_sha256"]
    dest = cache_dir() / "archives" / sha256 / url.rsplit("/", 1)[-1]
    with file_lock(cache_dir() / "locks" / f"archive-{sha256}.lock"):
        return download_file(url, dest, sha256=sha256)


def extract_member(archive: pathlib.Path, member: str, sha256: str) -> pathlib.Path:
    """``member`` of the tar ``archive``, extracted into ``cache_dir()/members/<sha256>/`` atomically and verified;
    an already extracted, verified copy is reused. Only this one regular file is read; nothing else is unpacked."""
    from lskd.data.download import ChecksumError, verify_file

    dest = cache_dir() / "members" / sha256 / pathlib.PurePosixPath(member).name
    with file_lock(cache_dir() / "locks" / f"member-{sha256}.lock"):
        if dest.is_file():
            try:
                verify_file(dest, sha256=sha256)
                return dest
            except ChecksumError:
                dest.unlink()
        try:
            with tarfile.open(archive, "r:*") as tar:
                try:
                    info = tar.getmember(member)
                except KeyError:
                    names = [n for n in tar.getnames() if n.endswith((".pth", ".pt", ".safetensors"))]
                    raise FileNotFoundError(f"{archive} has no member {member!r}; weight files in it: "
                                            f"{', '.join(names[:20]) or 'none'}") from None
                if not info.isfile():
                    raise ValueError(f"{archive}: member {member!r} is not a regular file")
                src = tar.extractfile(info)
                assert src is not None
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
                tmp = pathlib.Path(tmp_name)
                try:
                    with os.fdopen(fd, "wb") as out:
                        while chunk := src.read(CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                        out.flush()
                        os.fsync(out.fileno())
                    if digest.hexdigest() != sha256:
                        raise ChecksumError(f"{archive}:{member}: checksum mismatch: sha256 {digest.hexdigest()} "
                                            f"(expected {sha256})")
                    os.replace(tmp, dest)
                finally:
                    tmp.unlink(missing_ok=True)
        except tarfile.TarError as err:
            raise ValueError(f"{archive} is not a readable tar archive: {err}") from None
        finally:
            with contextlib.suppress(OSError):
                dest.parent.rmdir()  # only succeeds when nothing was extracted
    return dest


def fetch_member(pretrained: dict[str, Any]) -> pathlib.Path:
    """The verified member file of a ``pretrained`` block with ``member`` (checksums already resolved)."""
    return extract_member(fetch_archive(pretrained), pretrained["member"], pretrained["sha256"])


def archive_digests(path: str | os.PathLike[str]) -> dict[str, str]:
    """SHA-256 of a tar archive (key ``""``) and of each regular member, by member name."""
    from lskd.data.download import file_digests

    out = {"": file_digests(path)["sha256"]}
    with tarfile.open(path, "r:*") as tar:
        for info in tar:
            if info.isfile():
                src = tar.extractfile(info)
                assert src is not None
                digest = hashlib.sha256()
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                out[info.name] = digest.hexdigest()
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m lskd.teachers ARCHIVE...``: print the digests to paste into a config."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m lskd.teachers ARCHIVE.tar [...]", file=sys.stderr)
        return 2
    for path in args:
        digests = archive_digests(path)
        print(f"# {path}\narchive_sha256: {digests.pop('')}")
        for name, digest in digests.items():
            print(f"# member: {name}\nsha256: {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
