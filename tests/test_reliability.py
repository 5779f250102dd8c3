"""Failures provoked on purpose: killed jobs resume exactly, untrusted pickles never run code."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lskd.engine.checkpoint import STATE
from lskd.engine.pretrained import load_state_dict
from lskd.models import SMALL_STUDENT, SMALL_TEACHER

COMMON = ["--dataset", "digits", "--train-subset", "600", "--test-subset", "200", "--batch-size", "16",
          "--threads", "1", "--no-progress", "--seed", "3"]


def _lskd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lskd.cli", *args]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    subprocess.run(_lskd("train-teacher", "--model", SMALL_TEACHER, "--epochs", "1", "--out", str(out), *COMMON),
                   check=True, capture_output=True)
    return out


def _distill(teacher: Path, out: Path) -> list[str]:
    return _lskd("distill", "--teacher", str(teacher), "--model", SMALL_STUDENT, "--method", "kd",
                 "--transform", "zscore", "--temperature", "2", "--kd-weight", "9", "--epochs", "6",
                 "--out", str(out), *COMMON[4:])


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM (preemption)"])
def test_killed_distillation_resumes_to_identical_metrics(tmp_path, teacher, sig):
    full = tmp_path / "full"
    subprocess.run(_distill(teacher, full), check=True, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_distill(teacher, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / STATE).exists():  # wait for the first epoch checkpoint, then kill mid-training
        assert proc.poll() is None and time.time() < deadline, "the job ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert not (killed / "metrics.json").exists() and (killed / STATE).exists()
    rerun = subprocess.run(_distill(teacher, killed), check=False, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming after epoch" in rerun.stderr
    assert (full / "metrics.json").read_bytes() == (killed / "metrics.json").read_bytes()
    assert (full / "model.safetensors").read_bytes() == (killed / "model.safetensors").read_bytes()


class _Exploit:
    """Unpickling this object would run a command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("fmt", ["state_dict", "mdistiller"])
def test_a_crafted_pickle_is_refused_and_its_code_never_runs(tmp_path, fmt):
    marker = tmp_path / "pwned"
    weights = tmp_path / "teacher.pth"
    with open(weights, "wb") as fh:
        pickle.dump({"model": _Exploit(marker)}, fh)
    with pytest.raises(ValueError, match="cannot be read as a torch checkpoint with weights_only=True"):
        load_state_dict(weights, fmt)
    assert not marker.exists()


def _plant_crafted_checkpoint(out: Path, marker: Path, *, forge_for: str | None) -> None:
    """A checkpoint whose state is a pickle that would run code; optionally with a manifest whose hashes match."""
    import hashlib
    import json

    from lskd.engine.checkpoint import MANIFEST, WEIGHTS, _seal

    (out / "checkpoint").mkdir(parents=True)
    torch.save({"weights": torch.zeros(1)}, out / WEIGHTS)
    with open(out / STATE, "wb") as fh:
        pickle.dump({"epoch": _Exploit(marker)}, fh)
    if forge_for is not None:  # the attacker also writes a manifest whose hashes match, for this run's spec
        digest = {k: hashlib.sha256((out / p).read_bytes()).hexdigest() for k, p in (("weights", WEIGHTS), ("state", STATE))}
        body = {"epoch": 1, "fingerprint": forge_for, "sha256": digest}
        (out / MANIFEST).write_text(json.dumps({**body, "seal": _seal(body)}))


def _tiny_spec():
    from lskd.engine import DataSpec, OptimSpec, RunSpec

    return RunSpec(model=SMALL_STUDENT, data=DataSpec(name="digits", train_subset=200, test_subset=100),
                   optim=OptimSpec(epochs=1, batch_size=32), threads=1)


def test_a_crafted_checkpoint_without_checksums_is_never_unpickled(tmp_path, capfd):
    """Failure: a planted pickle in checkpoint/ (no manifest). Behaviour: skipped unread, the run starts over."""
    from lskd.engine import train_one

    marker, out = tmp_path / "pwned", tmp_path / "run"
    _plant_crafted_checkpoint(out, marker, forge_for=None)
    metrics = train_one(_tiny_spec(), out, progress=False)
    assert metrics["last"]["epoch"] == 1 and not marker.exists()
    assert "skipping unusable checkpoint files" in capfd.readouterr().err


def test_a_crafted_checkpoint_with_a_forged_manifest_is_refused(tmp_path):
    """Failure: a planted pickle whose manifest hashes match. Behaviour: weights_only refuses it, no code runs."""
    from lskd.engine import train_one
    from lskd.engine.checkpoint import CheckpointError

    marker, out = tmp_path / "pwned", tmp_path / "run"
    spec = _tiny_spec()
    _plant_crafted_checkpoint(out, marker, forge_for=spec.fingerprint())
    with pytest.raises(CheckpointError, match="cannot be read with weights_only=True"):
        train_one(spec, out, progress=False)
    assert not marker.exists()
