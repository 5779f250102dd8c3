"""Published teacher weights: digests (pinned, recorded or trusted on first use), the track's lock of them, the
shared download cache, and members of tar archives.

The ``pretrained`` block of a teacher (``workflow/schemas/config.schema.yaml``) takes three forms:

1. a weight file, ``url`` or ``file`` (optionally with ``sha256``);
2. a member of a tar archive, ``url``/``file`` of the archive plus ``member`` (optionally ``sha256`` of the member
   and ``archive_sha256``): mdistiller's ``cifar_teachers.tar``;
3. a timm tag, ``timm: ARCH.TAG``, alone (timm downloads it, not pinned) or with ``url``/``file`` (+ ``sha256``).

Where each digest comes from, and what is checked:

* **pinned**: 64 hex digits in the config, or ``recorded``, which takes the digest from
  ``lskd/data/teachers.json`` where that file knows it;
* **trust on first use**: no digest pinned (none given, or ``recorded`` and none recorded). The first fetch
  computes the SHA-256 of the archive and of the member (or of the weight file), prints them (one line each, to
  stderr: the job log) and records them in the track's lock file, ``<results>/teachers.lock.json``
  (:attr:`lskd.workflow.grid.Experiment.teacher_lock`). Every later fetch, on any machine, must match the lock.
* **strict** (``teacher_verification.strict``, ``lskd fetch-teacher --strict``): only pinned digests are accepted;
  anything else is refused before any download (:class:`ChecksumMissingError`).

A digest that differs from a pinned or locked one stops the fetch (:class:`lskd.data.download.ChecksumError`,
naming the expected and the actual digest and where the expected one comes from) and leaves nothing behind: no
archive in the cache, no extracted member, no run folder. Files whose digest is not known yet are downloaded /
extracted into ``cache_dir()/incoming`` and moved into their digest-named folder (``archives/<sha256>/``,
``members/<sha256>/``, ``files/<sha256>/``) only once they are checked.

The lock file (JSON) maps ``SOURCE`` (a weight file) or ``SOURCE::MEMBER`` (a member of a tar archive) to
``{source, member, archive_sha256, sha256, obtained: {archive_sha256, sha256}, utc, host}``; SOURCE is the url,
or the file name of a local ``file`` (so the same lock serves copies at other paths). ``obtained`` says how each
digest was first known: ``pinned``, ``recorded`` or ``first use``. The jobs of a track share the lock: it is
updated under an exclusive ``flock`` on its sibling ``.teachers.lock.json.flock`` and replaced atomically.
Fetches of one source on one machine are serialized by a lock in ``cache_dir()/locks``, so concurrent first
fetches of several members of one archive download it once.

Importing this module loads neither torch nor timm (the download helpers are imported where used), so the
workflow's config checks stay fast.
``python -m lskd.teachers ARCHIVE.tar`` prints the SHA-256 of an archive and of each of its members.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import fcntl
import functools
import hashlib
import json
import os
import pathlib
import socket
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

RECORDED = "recorded"
PINNED = "pinned"
FIRST_USE = "first use"
LOCKED = "lock"
CACHE_ENV = "LSKD_CACHE"
CHUNK = 1 << 20
LOCK_VERSION = 1
STRICT_HINT = ("Or set teacher_verification.strict: false (lskd fetch-teacher without --strict): the first fetch "
               "then trusts the digests it computes and records them in the track's teachers.lock.json.")

#: An expected digest and where it comes from (for messages).
Expectation = tuple[str, str]


class ChecksumMissingError(ValueError):
    """Strict verification refuses a teacher whose SHA-256 is not pinned (or a pinned digest is inconsistent); the
    message says how to pin it. ``problems`` (one line per digest) and ``hints`` let callers merge several."""

    def __init__(self, problems: list[str], hints: list[str]) -> None:
        self.problems, self.hints = problems, hints
        super().__init__(format_missing(problems, hints))


def format_missing(problems: list[str], hints: list[str]) -> str:
    """The refusal message for unpinned or inconsistent checksums (hints deduplicated, in order)."""
    return ("refusing to fetch teacher weights whose SHA-256 is not pinned (lskd loads only verified files):\n  "
            + "\n  ".join(problems) + ("\n" + "\n".join(dict.fromkeys(hints)) if hints else ""))


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
    """Structural checks of one ``pretrained`` block (no network, no torch), ``min_top1`` included: every fetched
    teacher has an accuracy gate. Raises :class:`PretrainedFormError`."""
    source = [k for k in ("url", "file") if pretrained.get(k)]
    tag = pretrained.get("timm")
    if len(source) > 1:
        raise PretrainedFormError(f"{where}: give url or file, not both")
    if pretrained.get("member") and not source:
        raise PretrainedFormError(f"{where}.member: a member needs the archive's url or file")
    if not source and not tag:
        raise PretrainedFormError(f"{where}: source pretrained needs pretrained.url or pretrained.file (sha256 "
                                  "optional), or pretrained.timm (a timm tag such as resnet34.tv_in1k)")
    if pretrained.get("member") and tag:
        raise PretrainedFormError(f"{where}: member (a tar archive) and timm cannot be combined")
    if pretrained.get("archive_sha256") and not pretrained.get("member"):
        raise PretrainedFormError(f"{where}.archive_sha256: only meaningful with member (a tar archive)")
    if tag and tag.split(".", 1)[0] != model:
        raise PretrainedFormError(f"{where}.timm: tag {tag!r} is a {tag.split('.', 1)[0]!r}, but the teacher's model "
                                  f"is {model!r}; set model: {tag.split('.', 1)[0]}")
    if pretrained.get("min_top1") is None:
        raise PretrainedFormError(f"{where}.min_top1: missing; every fetched teacher needs this accuracy gate (its "
                                  "test top-1 in %, below which the teacher is refused and no run folder is written): "
                                  "set min_top1 to the published top-1 minus a margin, e.g. min_top1: 77.4 for a "
                                  "79.42% teacher")


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
                    "(configs/README.md, 'Teachers: download, verification, conversion')."]


def _needed(pretrained: dict[str, Any]) -> list[str]:
    """The digests strict verification needs: the weight file's (or member's) and, for an archive downloaded from
    a url (or one whose archive_sha256 is given), the archive's."""
    if not (pretrained.get("url") or pretrained.get("file")):
        return []
    member = pretrained.get("member")
    return ["sha256"] + (["archive_sha256"] if member and (pretrained.get("url") or pretrained.get("archive_sha256"))
                         else [])


def _resolve(pretrained: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """A copy of ``pretrained`` with ``recorded`` replaced by the digest teachers.json records (or dropped where it
    records none), how each remaining digest is pinned (``pinned`` / ``recorded``), and one problem line per
    digest strict verification would need but that is not pinned."""
    out = copy.deepcopy(pretrained)
    how: dict[str, str] = {}
    unpinned: list[str] = []
    source = out.get("url") or out.get("file")
    if not source:  # timm tag alone: timm/huggingface_hub fetch it, nothing to pin
        if out.get("timm"):
            unpinned.append(f"{where}.timm: {out['timm']!r} alone is downloaded by timm from the Hugging Face hub and "
                            "cannot be pinned; give url or file of the weight file with sha256")
        return out, how, unpinned
    record = _archive_record(out)
    needed = _needed(out)
    for key in ("sha256", "archive_sha256"):
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
                out[key], how[key] = found, RECORDED
                continue
            del out[key]
            if key in needed:
                unpinned.append(f"{where}.{key}: 'recorded', but lskd/data/teachers.json records no SHA-256 for "
                                f"{what}; put the 64 hex digits of `{_how_to(out, key)}` here")
        elif value:
            how[key] = PINNED
        elif key in needed:
            unpinned.append(f"{where}.{key}: not pinned; put the 64 hex digits of `{_how_to(out, key)}` here")
    return out, how, unpinned


def resolve_checksums(pretrained: dict[str, Any], where: str = "pretrained", *, strict: bool = False) -> dict[str, Any]:
    """A copy of ``pretrained`` whose ``sha256`` / ``archive_sha256`` are hex digests where they are pinned
    (``recorded`` is looked up in teachers.json) and absent where they are not (trusted on first use, see the module
    docstring). With ``strict``, a digest that is not pinned (or a timm tag alone) raises
    :class:`ChecksumMissingError`; so does, always, a pinned digest that contradicts torchvision's file name."""
    out, _, unpinned = _resolve(pretrained, where)
    if strict and unpinned:
        raise ChecksumMissingError(unpinned, _hints(out) + [STRICT_HINT])
    for tag, entry in load_records()["timm"].items():
        if tag.startswith("_") or not out.get("sha256") or out.get("url") != entry.get("torchvision_url"):
            continue
        prefix = entry["torchvision_sha256_prefix"]
        if not out["sha256"].startswith(prefix):
            raise ChecksumMissingError([f"{where}.sha256: torchvision names {out['url']} by its SHA-256 prefix "
                                        f"{prefix}, but the configured digest starts {out['sha256'][:8]}"], [])
    return out


# ---------------------------------------------------------------------------------------------- the lock file
def source_name(pretrained: dict[str, Any]) -> str:
    """How the lock names a block's source: its url, or the file name of a local file."""
    return pretrained.get("url") or pathlib.Path(pretrained["file"]).name


def lock_key(source: str, member: str | None) -> str:
    """The lock entry of a weight file (``SOURCE``) or of a member of a tar archive (``SOURCE::MEMBER``)."""
    return f"{source}::{member}" if member else source


def read_lock(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The parsed lock file (``{"entries": {}}`` when there is none). Raises ``ValueError`` for a file that is not
    a teachers lock."""
    if path is None or not pathlib.Path(path).is_file():
        return {"version": LOCK_VERSION, "entries": {}}
    try:
        data = json.loads(pathlib.Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); it should be lskd's lock of teacher digests") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise ValueError(f"{path} is not lskd's lock of teacher digests (no 'entries' mapping)")
    return data


def _lock_expectations(entries: dict[str, Any], lock: pathlib.Path, source: str, member: str | None,
                       key: str) -> list[Expectation]:
    """What the lock expects for ``key`` (``sha256`` of this entry; ``archive_sha256`` of any entry of the same
    archive, since several members share it)."""
    out: dict[str, str] = {}
    for name, entry in entries.items():
        same = (entry.get("source") == source) if key == "archive_sha256" else name == lock_key(source, member)
        digest = entry.get(key) if same else None
        if digest and digest not in out:
            first = (entry.get("obtained") or {}).get(key, "?")
            out[digest] = (f"lock file {lock}, entry {name!r} ({first} on {entry.get('host', '?')} at "
                           f"{entry.get('utc', '?')})")
    return list(out.items())


def _origin(how: str, where: str, key: str) -> str:
    if how == RECORDED:
        return f"recorded in lskd/data/teachers.json ({where}.{key}: recorded)"
    return f"pinned in the config ({where}.{key})"


def _check(actual: str, expected: list[Expectation], what: str, lock: pathlib.Path | None) -> None:
    """Raise :class:`lskd.data.download.ChecksumError` unless ``actual`` equals every expected digest."""
    from lskd.data.download import ChecksumError

    bad = [(digest, origin) for digest, origin in expected if digest != actual]
    if not bad:
        return
    lines = "; ".join(f"expected {digest} ({origin})" for digest, origin in bad)
    fix = ("If the file was replaced on purpose, check its new digest against a source you trust, then fix the "
           "pinned digest in the config" + (f" or remove the entry from {lock}" if lock is not None else "") + ".")
    raise ChecksumError(f"{what}: SHA-256 mismatch: actual {actual}, {lines}. Refused; nothing was kept. {fix}")


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


@dataclass
class Fetched:
    """The outcome of :func:`fetch_verified`: the verified weight file (``None`` for a timm tag alone), its (or the
    member's) SHA-256, the archive's, and how each was verified (``pinned`` / ``recorded`` / ``lock`` /
    ``first use``)."""

    path: pathlib.Path | None
    sha256: str | None = None
    archive_sha256: str | None = None
    verified: dict[str, str] = field(default_factory=dict)


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _incoming() -> pathlib.Path:
    """Where files whose digest is not checked yet are written (same file system as their final folders)."""
    path = cache_dir() / "incoming"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cached(dest: pathlib.Path, digest: str) -> bool:
    from lskd.data.download import file_digests

    if dest.is_file():
        if file_digests(dest)["sha256"] == digest:
            return True
        dest.unlink()  # a damaged cached copy: fetched again
    return False


def _commit(tmp: pathlib.Path, dest: pathlib.Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


def _into_cache(folder: str, name: str, produce: Callable[[], tuple[pathlib.Path, str]],
                expected: list[Expectation], what: str, lock: pathlib.Path | None,
                staged: list[tuple[pathlib.Path, pathlib.Path]]) -> tuple[pathlib.Path, str]:
    """A file in ``cache_dir()/folder/<sha256>/name``: reused when cached and expected, else written by
    ``produce()`` (a new file in ``incoming`` and its sha256) and checked; a file checked against an expected
    digest is moved into place at once, one trusted on first use is appended to ``staged`` (moved once the lock
    records it). Returns (path, sha256)."""
    if expected:
        digest = expected[0][0]
        dest = cache_dir() / folder / digest / name
        with file_lock(cache_dir() / "locks" / f"{folder.rstrip('s')}-{digest}.lock"):
            if _cached(dest, digest):
                _check(digest, expected, what, lock)
                return dest, digest
            tmp, actual = produce()
            try:
                _check(actual, expected, what, lock)
                _commit(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            return dest, actual
    tmp, actual = produce()
    dest = cache_dir() / folder / actual / name
    if _cached(dest, actual):  # the same bytes are already cached (e.g. by another track)
        tmp.unlink()
        return dest, actual
    staged.append((tmp, dest))
    return tmp, actual


def _download(url: str, folder: str, expected: list[Expectation], what: str, lock: pathlib.Path | None,
              staged: list[tuple[pathlib.Path, pathlib.Path]]) -> tuple[pathlib.Path, str]:
    """``url`` in ``cache_dir()/folder/<sha256>/`` (see :func:`_into_cache`)."""
    from lskd.data.download import download_to_temp

    return _into_cache(folder, url.rsplit("/", 1)[-1], lambda: download_to_temp(url, _incoming()), expected, what,
                       lock, staged)


def _local(path_text: str, expected: list[Expectation], what: str, lock: pathlib.Path | None) -> tuple[pathlib.Path, str]:
    from lskd.data.download import file_digests

    path = pathlib.Path(path_text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained {what} {path} does not exist")
    actual = file_digests(path)["sha256"]
    _check(actual, expected, f"{what} {path}", lock)
    return path, actual


def _extract_to(archive: pathlib.Path, member: str, folder: pathlib.Path) -> tuple[pathlib.Path, str]:
    """``member`` of the tar ``archive`` written to a new temporary file in ``folder`` while hashing it; returns
    (file, sha256). Only this one regular file is read; nothing else is unpacked. No file is left on an error."""
    from lskd.data.download import stream_to_temp

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
            tmp, digests = stream_to_temp(src, folder, pathlib.PurePosixPath(member).name)
            return tmp, digests["sha256"]
    except tarfile.TarError as err:
        raise ValueError(f"{archive} is not a readable tar archive: {err}") from None


def _member(archive: pathlib.Path, member: str, expected: list[Expectation], lock: pathlib.Path | None,
            staged: list[tuple[pathlib.Path, pathlib.Path]]) -> tuple[pathlib.Path, str]:
    """The member, in ``cache_dir()/members/<sha256>/`` (see :func:`_into_cache`)."""
    return _into_cache("members", pathlib.PurePosixPath(member).name,
                       lambda: _extract_to(archive, member, _incoming()), expected, f"member {member}", lock, staged)


def _torchvision_prefix(url: str | None) -> str | None:
    for tag, entry in load_records()["timm"].items():
        if not tag.startswith("_") and url and url == entry.get("torchvision_url"):
            return entry["torchvision_sha256_prefix"]
    return None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fetch_verified(pretrained: dict[str, Any], *, lock: str | os.PathLike[str] | None = None, strict: bool = False,
                   where: str = "pretrained", log: Callable[[str], None] | None = None) -> Fetched:
    """The verified weight file of a ``pretrained`` block (see the module docstring): pinned digests are checked,
    digests not pinned are checked against the ``lock`` file or, on first use, computed, printed and recorded
    there. ``strict`` refuses digests that are not pinned before anything is downloaded. A mismatch raises
    :class:`lskd.data.download.ChecksumError` and leaves no file behind. ``log`` receives one line per digest
    (default: stderr)."""
    log = log or _stderr
    resolved, how, unpinned = _resolve(pretrained, where)
    if strict and unpinned:
        raise ChecksumMissingError(unpinned, _hints(resolved) + [STRICT_HINT])
    resolved = resolve_checksums(pretrained, where)  # the torchvision prefix check
    url, member = resolved.get("url"), resolved.get("member")
    if not (url or resolved.get("file")):
        log(f"lskd teachers: {resolved.get('timm')}: fetched by timm from the Hugging Face hub, not checksum-pinned")
        return Fetched(None)
    lock_path = pathlib.Path(lock) if lock is not None else None
    source = source_name(resolved)
    key = lock_key(source, member)
    staged: list[tuple[pathlib.Path, pathlib.Path]] = []

    def expected(name: str, entries: dict[str, Any]) -> list[Expectation]:
        pinned = [(resolved[name], _origin(how[name], where, name))] if resolved.get(name) else []
        return pinned + (_lock_expectations(entries, lock_path, source, member, name) if lock_path else [])

    def verified(name: str, entries: dict[str, Any]) -> str:
        if resolved.get(name):
            return how[name]
        return LOCKED if lock_path and _lock_expectations(entries, lock_path, source, member, name) else FIRST_USE

    try:
        with file_lock(cache_dir() / "locks" / f"source-{_short(source)}.lock"):
            entries = read_lock(lock_path)["entries"]
            archive_sha = None
            if member:
                what = f"archive {source}"
                if url:
                    archive, archive_sha = _download(url, "archives", expected("archive_sha256", entries), what,
                                                     lock_path, staged)
                else:
                    archive, archive_sha = _local(resolved["file"], expected("archive_sha256", entries), "archive",
                                                  lock_path)
                weights, sha = _member(archive, member, expected("sha256", entries), lock_path, staged)
            elif url:
                weights, sha = _download(url, "files", expected("sha256", entries), f"weight file {url}", lock_path,
                                         staged)
            else:
                weights, sha = _local(resolved["file"], expected("sha256", entries), "weight file", lock_path)
            prefix = _torchvision_prefix(url)
            if prefix and not sha.startswith(prefix):
                _check(sha, [(prefix + "...", "torchvision names the file by this SHA-256 prefix")],
                       f"weight file {url}", lock_path)
            fetched = Fetched(weights, sha, archive_sha)
            keys = (["archive_sha256"] if member else []) + ["sha256"]
            if lock_path is None:
                fetched.verified = {k: verified(k, entries) for k in keys}
                for tmp, dest in staged:
                    _commit(tmp, dest)
            else:
                fetched.verified = _record(lock_path, key, fetched, resolved, how, keys, staged)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    if fetched.path in [tmp for tmp, _ in staged]:
        fetched.path = dict(staged)[fetched.path]
    for k in keys:
        digest = fetched.archive_sha256 if k == "archive_sha256" else fetched.sha256
        what = f"archive {source}" if k == "archive_sha256" else (f"member {member}" if member else source)
        state = fetched.verified[k]
        if state == FIRST_USE:
            note = (f"trusted on first use, recorded in {lock_path}; check it against a source you trust"
                    if lock_path else "trusted on first use and NOT recorded (no lock file given)")
        elif state == LOCKED:
            note = f"matches {lock_path}"
        else:
            note = f"matches the digest {_origin(state, where, k)}"
        log(f"lskd teachers: {k} {digest} of {what}: {note}")
    return fetched


def _obtained(k: str, resolved: dict[str, Any], how: dict[str, str], entries: dict[str, Any], source: str) -> str:
    """How a digest was first known: pinned / recorded in this config, else as the entry of another member of the
    same archive that recorded it says, else first use."""
    if resolved.get(k):
        return how[k]
    if k == "archive_sha256":
        for entry in entries.values():
            if entry.get("source") == source and entry.get(k):
                return (entry.get("obtained") or {}).get(k, FIRST_USE)
    return FIRST_USE


def _record(lock_path: pathlib.Path, key: str, fetched: Fetched, resolved: dict[str, Any], how: dict[str, str],
            keys: list[str], staged: list[tuple[pathlib.Path, pathlib.Path]]) -> dict[str, str]:
    """Under the lock file's flock: compare with the lock as it is now (another machine may have written it since
    it was read), move the files trusted on first use into the cache, and add the entry if it is new. Returns how
    each digest was verified."""
    from lskd.engine.io import write_json

    with file_lock(lock_path.parent / f".{lock_path.name}.flock"):
        data = read_lock(lock_path)
        entries = data["entries"]
        source, member = source_name(resolved), resolved.get("member")
        out = {}
        for k in keys:
            digest = fetched.archive_sha256 if k == "archive_sha256" else fetched.sha256
            assert digest is not None
            locked = _lock_expectations(entries, lock_path, source, member, k)
            what = f"archive {source}" if k == "archive_sha256" else (f"member {member}" if member else source)
            _check(digest, locked, what, lock_path)
            out[k] = how[k] if resolved.get(k) else (LOCKED if locked else FIRST_USE)
        for tmp, dest in staged:
            _commit(tmp, dest)
        if key not in entries:
            entries[key] = {
                "source": source, "member": member, "archive_sha256": fetched.archive_sha256,
                "sha256": fetched.sha256,
                "obtained": {k: _obtained(k, resolved, how, entries, source) for k in keys},
                "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "host": socket.gethostname(),
            }
            data.setdefault("about", "SHA-256 of the teacher weights this track fetched (lskd.teachers): every "
                                     "later fetch must match. Remove an entry only to accept new weights, after "
                                     "checking their digest against a source you trust.")
            data["version"] = LOCK_VERSION
            write_json(lock_path, data)
    return out


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
