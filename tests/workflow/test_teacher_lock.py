"""Fetched teachers without manual steps, still verified: digests pinned in the config (hex or 'recorded') are
checked, the others are trusted on first use and kept in the track's lock file (<results>/teachers.lock.json),
which every later fetch must match; strict verification refuses what is not pinned; a mismatch names both digests
and leaves nothing behind. Also: mdistiller checkpoints (options as argparse.Namespace, numpy scalars) load with
torch.load(weights_only=True) and nothing else does. Offline and CPU only."""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pipeline import copy_workflow, run_snakemake
from test_tracks import MDISTILLER_URL, MEMBER, _mdistiller_archive, _teacher, _write_cifar_standin, files_under, raw

import lskd.data.download as download
from lskd.cli import main as lskd_main
from lskd.data.download import ChecksumError
from lskd.engine.pretrained import fetch_weights, load_state_dict
from lskd.teachers import (
    FIRST_USE,
    LOCKED,
    PINNED,
    RECORDED,
    ChecksumMissingError,
    fetch_verified,
    load_records,
    lock_key,
    read_lock,
)
from lskd.workflow import ConfigError, Experiment, validate_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
RECORDED_MEMBER_SHA = "22aa12e2b632b19ddde155ccf2388671842ddd304824b3095e0a7fff364beb4f"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LSKD_CACHE", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LSKD_DATA", raising=False)
    return folder


@pytest.fixture
def served(tmp_path) -> tuple[Path, str, str]:
    """An mdistiller-format cifar_teachers.tar with a real lskd teacher, served by file:// URL."""
    return _mdistiller_archive(tmp_path / "srv", _teacher("resnet8x4"))


def unpinned(archive: Path, **extra) -> dict:
    """A pretrained block that pins no digest (as configs/cifar100.yaml for all but one member)."""
    return {"url": archive.as_uri(), "member": MEMBER, "format": "mdistiller", "min_top1": 0, **extra}


def no_downloads(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(download, "_open_url", refuse)


def digest_lines(text: str, digest: str) -> list[str]:
    return [line for line in text.splitlines() if digest in line]


# ------------------------------------------------------------------------------------------ trust on first use
def test_first_fetch_records_the_lock_and_prints_the_digests(tmp_path, served, cache, capsys):
    archive, archive_sha, member_sha = served
    lock = Path(Experiment({"results": str(tmp_path / "results")}).teacher_lock)
    assert lock == tmp_path / "results/teachers.lock.json"
    fetched = fetch_verified(unpinned(archive), lock=lock)
    assert (fetched.archive_sha256, fetched.sha256) == (archive_sha, member_sha)
    assert fetched.verified == {"archive_sha256": FIRST_USE, "sha256": FIRST_USE}
    assert fetched.path == cache / "members" / member_sha / "ckpt_epoch_240.pth"
    assert files_under(cache) == sorted([f"archives/{archive_sha}/cifar_teachers.tar",
                                         f"members/{member_sha}/ckpt_epoch_240.pth"])
    err = capsys.readouterr().err
    for digest in (archive_sha, member_sha):  # one clear line each
        (line,) = digest_lines(err, digest)
        assert "trusted on first use" in line and str(lock) in line
    entry = read_lock(lock)["entries"][lock_key(archive.as_uri(), MEMBER)]
    assert entry["source"] == archive.as_uri() and entry["member"] == MEMBER
    assert (entry["archive_sha256"], entry["sha256"]) == (archive_sha, member_sha)
    assert entry["obtained"] == {"archive_sha256": FIRST_USE, "sha256": FIRST_USE}
    assert entry["host"] == socket.gethostname()
    when = datetime.datetime.fromisoformat(entry["utc"])
    assert when.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 600


def test_later_fetches_verify_against_the_lock_and_leave_it_unchanged(tmp_path, served, cache, monkeypatch, capsys):
    archive, archive_sha, member_sha = served
    lock = tmp_path / "results/teachers.lock.json"
    fetch_verified(unpinned(archive), lock=lock)
    before = lock.read_bytes()
    capsys.readouterr()
    # a rerun on this machine: both digests come from the lock, the verified cache is reused (no download)
    no_downloads(monkeypatch)
    again = fetch_verified(unpinned(archive), lock=lock)
    assert again.verified == {"archive_sha256": LOCKED, "sha256": LOCKED} and again.sha256 == member_sha
    assert lock.read_bytes() == before
    err = capsys.readouterr().err
    assert all(f"matches {lock}" in digest_lines(err, d)[0] for d in (archive_sha, member_sha))
    # another machine (an empty cache): downloaded again and checked against the lock
    monkeypatch.undo()
    monkeypatch.setenv("LSKD_CACHE", str(tmp_path / "other-node"))
    elsewhere = fetch_verified(unpinned(archive), lock=lock)
    assert elsewhere.verified == {"archive_sha256": LOCKED, "sha256": LOCKED}
    assert lock.read_bytes() == before
    # a second member of the same archive takes the archive's digest from the lock and adds its own entry
    other = "cifar_teachers/resnet56_vanilla/ckpt_epoch_240.pth"
    second = fetch_verified(unpinned(archive, member=other), lock=lock)
    assert second.verified == {"archive_sha256": LOCKED, "sha256": FIRST_USE}
    entries = read_lock(lock)["entries"]
    assert set(entries) == {lock_key(archive.as_uri(), MEMBER), lock_key(archive.as_uri(), other)}
    assert entries[lock_key(archive.as_uri(), other)]["obtained"] == {"archive_sha256": FIRST_USE, "sha256": FIRST_USE}


def test_a_weight_file_is_locked_by_its_file_name(tmp_path, cache):
    weights = tmp_path / "a/w.pth"
    weights.parent.mkdir()
    torch.save({"w": torch.zeros(3)}, weights)
    lock = tmp_path / "results/teachers.lock.json"
    first = fetch_verified({"file": str(weights), "format": "state_dict", "min_top1": 0}, lock=lock)
    assert first.path == weights and first.verified == {"sha256": FIRST_USE}
    assert read_lock(lock)["entries"]["w.pth"]["sha256"] == first.sha256
    copy = tmp_path / "b/w.pth"  # the same file at another path (another machine) is the same entry
    copy.parent.mkdir()
    copy.write_bytes(weights.read_bytes())
    assert fetch_verified({"file": str(copy), "format": "state_dict"}, lock=lock).verified == {"sha256": LOCKED}
    torch.save({"w": torch.ones(3)}, copy)
    changed = hashlib.sha256(copy.read_bytes()).hexdigest()
    with pytest.raises(ChecksumError, match=rf"weight file {re.escape(str(copy))}: SHA-256 mismatch: actual {changed}, "
                                            rf"expected {first.sha256} \(lock file"):
        fetch_verified({"file": str(copy), "format": "state_dict"}, lock=lock)
    # a url is cached under files/<sha256>/ (nothing goes into a run folder before it is verified)
    url_block = {"url": weights.as_uri(), "format": "state_dict"}
    path = fetch_weights(url_block, tmp_path / "run", lock=lock)
    assert path == cache / "files" / first.sha256 / "w.pth" and not (tmp_path / "run").exists()


def test_tampered_archive_is_refused_naming_both_digests_and_leaves_nothing(tmp_path, served, monkeypatch):
    archive, archive_sha, member_sha = served
    data = tmp_path / "data"
    _write_cifar_standin(data, {"train": 1, "test": 1})
    config = {"results": str(tmp_path / "results"),
              "dataset": {"name": "cifar100", "root": str(data), "test_subset": 20},
              "execution": {"device": "cpu", "threads": 1},
              "teachers": {"resnet8x4": {"model": "resnet8x4", "source": "pretrained", "pretrained": unpinned(archive)}},
              "student_optim": {"epochs": 1}, "pairs": [{"teacher": "resnet8x4", "student": "resnet8x4"}],
              "grid": {"methods": ["kd"], "transforms": ["none"], "temperatures": [4], "seeds": [0]}}
    exp = Experiment(validate_config(config, SCHEMA, check_data=True))  # no digest pinned: passes
    lock = Path(exp.teacher_lock)

    def fetch(out: Path) -> int:  # as the fetch_teacher rule runs it
        return lskd_main(["fetch-teacher", "--spec-json", json.dumps(exp.teacher_spec("resnet8x4")),
                          "--pretrained-json", json.dumps(config["teachers"]["resnet8x4"]["pretrained"]),
                          "--lock", str(lock), "--out", str(out)])

    assert fetch(tmp_path / "results/runs/teachers/resnet8x4") == 0
    record = json.loads((tmp_path / "results/runs/teachers/resnet8x4/pretrained.json").read_text())
    assert (record["sha256"], record["archive_sha256"]) == (member_sha, archive_sha)
    assert record["verified"] == {"archive_sha256": FIRST_USE, "sha256": FIRST_USE}
    before = lock.read_bytes()
    # the same URL now serves an archive with different weights; a fresh node (empty cache) fetches it
    _, tampered_sha, tampered_member = _mdistiller_archive(tmp_path / "srv", _teacher("resnet8x4", seed=1))
    assert tampered_sha != archive_sha and tampered_member != member_sha
    fresh = tmp_path / "fresh-cache"
    monkeypatch.setenv("LSKD_CACHE", str(fresh))
    out = tmp_path / "results/runs/teachers/again"
    with pytest.raises(SystemExit) as err:
        fetch(out)
    message = str(err.value)
    assert "SHA-256 mismatch" in message and f"actual {tampered_sha}" in message
    assert f"expected {archive_sha}" in message and f"lock file {lock}" in message
    assert not out.exists() and files_under(fresh) == [] and lock.read_bytes() == before
    # through the library: the same refusal (ChecksumError), also when only the lock knows the digest
    with pytest.raises(ChecksumError, match=rf"actual {tampered_sha}, expected {archive_sha} \(lock file"):
        fetch_verified(unpinned(archive), lock=lock)
    assert files_under(fresh) == []


# ------------------------------------------------------------------------------------------ pinned and strict
def test_strict_refuses_an_unpinned_teacher_before_any_download(tmp_path, served, cache, monkeypatch):
    archive, archive_sha, member_sha = served
    lock = tmp_path / "results/teachers.lock.json"
    no_downloads(monkeypatch)
    with pytest.raises(ChecksumMissingError) as err:
        fetch_verified(unpinned(archive), lock=lock, strict=True)
    assert [p.split(":", 1)[0] for p in err.value.problems] == ["pretrained.sha256", "pretrained.archive_sha256"]
    assert "teacher_verification.strict: false" in str(err.value)
    # the cifar100 resnet32x4 block: the member is recorded (pinned), the archive is not
    block = raw("cifar100")["teachers"]["resnet32x4"]["pretrained"]
    assert block["url"] == MDISTILLER_URL and block["sha256"] == RECORDED
    with pytest.raises(ChecksumMissingError) as err:
        fetch_verified(block, lock=lock, strict=True)
    assert len(err.value.problems) == 1 and "archive_sha256: 'recorded', but" in err.value.problems[0]
    with pytest.raises(ChecksumMissingError, match=r"timm.*cannot be pinned"):
        fetch_verified({"timm": "resnet34.tv_in1k", "min_top1": 70}, strict=True)
    assert not lock.exists() and files_under(cache) == []
    # the fetch-teacher command: refused with one message, no run folder
    spec = {"model": "resnet8x4", "method": "ce", "data": {"name": "cifar100", "root": str(tmp_path)}}
    with pytest.raises(SystemExit, match=r"(?s)not pinned.*pretrained\.sha256: not pinned"):
        lskd_main(["fetch-teacher", "--spec-json", json.dumps(spec), "--pretrained-json",
                   json.dumps(unpinned(archive)), "--lock", str(lock), "--strict", "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()
    # pinned digests pass strict verification (and are recorded as pinned)
    monkeypatch.undo()
    monkeypatch.setenv("LSKD_CACHE", str(cache))
    ok = fetch_verified(unpinned(archive, sha256=member_sha, archive_sha256=archive_sha), lock=lock, strict=True)
    assert ok.verified == {"archive_sha256": PINNED, "sha256": PINNED}
    assert read_lock(lock)["entries"][lock_key(archive.as_uri(), MEMBER)]["obtained"] == ok.verified


def test_a_pinned_digest_that_mismatches_is_refused(tmp_path, served, cache):
    archive, archive_sha, member_sha = served
    lock = tmp_path / "results/teachers.lock.json"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        fetch_verified(unpinned(archive, sha256=wrong), lock=lock)
    message = str(err.value)
    assert f"member {MEMBER}: SHA-256 mismatch: actual {member_sha}, expected {wrong}" in message
    assert "pinned in the config (pretrained.sha256)" in message
    assert files_under(cache) == [] and not lock.exists()  # the unpinned archive is not kept either
    with pytest.raises(ChecksumError, match=rf"archive .*: SHA-256 mismatch: actual {archive_sha}, expected {wrong}"):
        fetch_verified(unpinned(archive, archive_sha256=wrong, sha256=member_sha), lock=lock)
    assert files_under(cache) == [] and not lock.exists()
    # 'recorded': teachers.json's digest of resnet32x4's member, checked against a local copy of the archive
    assert load_records()["archives"]["mdistiller_cifar_teachers"]["members"][MEMBER]["sha256"] == RECORDED_MEMBER_SHA
    with pytest.raises(ChecksumError) as err:
        fetch_verified({"file": str(archive), "member": MEMBER, "format": "mdistiller", "sha256": RECORDED}, lock=lock)
    assert f"actual {member_sha}, expected {RECORDED_MEMBER_SHA}" in str(err.value)
    assert "recorded in lskd/data/teachers.json" in str(err.value)
    assert files_under(cache) == [] and not lock.exists()
    # a digest pinned in the config that contradicts the lock: refused too (the lock names the bytes seen before)
    fetch_verified(unpinned(archive), lock=lock)
    with pytest.raises(ChecksumError, match=rf"actual {member_sha}, expected {'1' * 64} \(pinned"):
        fetch_verified(unpinned(archive, sha256="1" * 64), lock=lock)


# ------------------------------------------------------------------------------------------ configs
def test_cifar100_check_config_passes_with_no_digest_filled_in(capsys):
    config = raw("cifar100")
    digests = [t["pretrained"].get(k) for t in config["teachers"].values() for k in ("sha256", "archive_sha256")]
    assert set(digests) <= {RECORDED, None}  # nothing pasted by hand
    assert load_records()["archives"]["mdistiller_cifar_teachers"]["sha256"] is None  # the archive is not known
    assert lskd_main(["check-config", str(ROOT / "configs/cifar100.yaml"), "--schema", str(SCHEMA)]) == 0
    assert "valid" in capsys.readouterr().out
    validated = validate_config(raw("cifar100"), SCHEMA, runtime=False)
    assert validated["teacher_verification"] == {"strict": False}
    assert Experiment(validated).teacher_lock == "results/cifar100/teachers.lock.json"


def test_every_fetched_teacher_needs_min_top1():
    for path in sorted((ROOT / "configs").glob("*.yaml")):  # every shipped config sets it
        validate_config(yaml.safe_load(path.read_text()), SCHEMA, runtime=False)
    config = raw("cifar100")
    del config["teachers"]["resnet56"]["pretrained"]["min_top1"]
    with pytest.raises(ConfigError, match=r"teachers\.resnet56\.pretrained\.min_top1: missing.*set min_top1"):
        validate_config(config, SCHEMA, runtime=False)


@pytest.mark.slow
def test_fetch_teacher_rule_passes_the_lock_and_strictness(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "strict.yaml").write_text("teacher_verification: {strict: true}\n")
    target = "results/cifar100_ablation/runs/teachers/resnet32x4/metrics.json"
    for extra, strict in (([], False), (["strict.yaml"], True)):
        proc = run_snakemake(work, "-n", "-p", target, "--configfile", "configs/cifar100_ablation.yaml", *extra,
                             timeout=300)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        (command,) = [line for line in (proc.stdout + proc.stderr).splitlines() if "lskd fetch-teacher" in line]
        assert "--lock results/cifar100_ablation/teachers.lock.json" in command
        assert (" --strict " in command) == strict


# ------------------------------------------------------------------------------------------ mdistiller pickles
def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    return _teacher("resnet8x4", seed).state_dict()


def _mdistiller_payload(state: dict[str, torch.Tensor], **extra) -> dict:
    opt = argparse.Namespace(model="resnet8x4", dataset="cifar100", learning_rate=0.05, lr_decay_epochs=[150, 180, 210],
                             weight_decay=5e-4, trial="0")
    return {"model": state, "opt": opt, "best_acc": np.float64(79.42), "epoch": 240, **extra}


def test_mdistiller_checkpoint_with_options_and_numpy_scalars_loads_without_code(tmp_path):
    state = _state()
    for legacy in (False, True):
        path = tmp_path / f"ckpt{int(legacy)}.pth"
        torch.save(_mdistiller_payload(state, best_epoch=np.int64(238)), path,
                   _use_new_zipfile_serialization=not legacy)
        loaded = load_state_dict(path, "mdistiller")
        assert list(loaded) == list(state) and all(torch.equal(loaded[k], v) for k, v in state.items())
    # allowed only while an mdistiller checkpoint is read: not registered globally, not for other formats
    assert argparse.Namespace not in torch.serialization.get_safe_globals()
    with pytest.raises(ValueError, match="weights_only=True"):
        load_state_dict(path, "state_dict")


def test_mdistiller_checkpoint_saved_with_numpy_1_loads(tmp_path):
    """numpy 1.x pickles its scalars with the global numpy.core.multiarray.scalar (numpy 2: numpy._core...)."""
    state = _state()
    buffer = io.BytesIO()
    torch.save(_mdistiller_payload(state), buffer, _use_new_zipfile_serialization=False)  # a sequential stream
    new_name, old_name = b"cnumpy._core.multiarray\nscalar\n", b"cnumpy.core.multiarray\nscalar\n"
    assert buffer.getvalue().count(new_name) == 1
    path = tmp_path / "numpy1.pth"
    path.write_bytes(buffer.getvalue().replace(new_name, old_name))
    assert old_name in path.read_bytes() and new_name not in path.read_bytes()
    loaded = load_state_dict(path, "mdistiller")
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


class _Planted:
    """Unpickling this would create a marker file: ``open(marker, "w")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_mdistiller_checkpoint_with_any_other_global_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "code-ran"
    for name, extra in (("planted", {"hook": _Planted(marker)}),
                        ("in-options", {"opt": argparse.Namespace(callback=_Planted(marker))}),
                        ("array", {"history": np.arange(3.0)})):  # a numpy array is not among the allowed types
        path = tmp_path / f"{name}.pth"
        torch.save(_mdistiller_payload(_state(), **extra), path)
        with pytest.raises(ValueError, match=r"cannot be read as a torch checkpoint with weights_only=True"):
            load_state_dict(path, "mdistiller")
        assert not marker.exists()
