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
from pipeline import snakemake_env

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


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL], ids=["SIGKILL"])  # SIGTERM: tests/engine/test_preempt.py, test_distributed.py
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


# ------------------------------------------------------------------ the whole pipeline killed and rerun
ROOT = Path(__file__).resolve().parents[2]
TINY_PIPELINE = """
title: kill test
results: results
report: report
dataset: {name: digits, train_subset: 300, test_subset: 100}
execution: {device: cpu, threads: 1}
teachers:
  cnn_w24d4: {model: cnn_w24d4, optim: {epochs: 1, batch_size: 64, lr: 0.05, schedule: cosine}}
student_optim: {epochs: 3, batch_size: 32, lr: 0.05, schedule: cosine}
pairs: [{teacher: cnn_w24d4, student: cnn_w8d3}]
grid: {methods: [kd], transforms: [none, zscore], temperatures: [4], seeds: [0]}
methods: {kd: {hparams: {ce_weight: 0.1, kd_weight: 0.9}, transforms: {zscore: {kd_weight: 9}}}}
"""


def _snakemake(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args, "--configfile", "configs/kill.yaml"]  # nargs=+: last


def _tree_hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() + f"@{p.stat().st_mtime_ns}"
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_killed_pipeline_reruns_only_unfinished_jobs(tmp_path):
    """Failure: the whole pipeline (Snakemake and its running job) is SIGKILLed mid-way, as when a node dies.
    Behaviour: after `snakemake --unlock` (Snakemake's own lock survives a SIGKILL), the rerun redoes only the
    unfinished jobs, the interrupted one resumes from its checkpoint, and every finished run folder keeps the same
    bytes and modification times."""
    import shutil

    for name in ("Snakefile", "workflow"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/kill.yaml").write_text(TINY_PIPELINE)
    target = "results/tables/runs.csv"
    runs = tmp_path / "results/runs"
    proc = subprocess.Popen(_snakemake(target, "--cores", "1"), cwd=tmp_path, env=snakemake_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while True:  # kill once two runs are finished and a third has written its first epoch checkpoint
            finished = [p.parent for p in runs.rglob("metrics.json")] if runs.exists() else []
            midway = [p.parents[1] for p in runs.rglob(STATE.split("/")[-1])] if runs.exists() else []
            if len(finished) >= 2 and midway:
                break
            assert proc.poll() is None and time.time() < deadline, "the pipeline ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    interrupted = midway[0]
    before = {str(d): _tree_hashes(d) for d in finished}
    assert not (interrupted / "metrics.json").exists()

    unlock = subprocess.run(_snakemake("--unlock"), cwd=tmp_path, env=snakemake_env(), check=False,
                            capture_output=True, text=True, timeout=120)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    rerun = subprocess.run(_snakemake(target, "--cores", "2"), cwd=tmp_path, env=snakemake_env(),
                           check=False, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert {str(d): _tree_hashes(d) for d in finished} == before  # finished folders untouched
    assert (interrupted / "metrics.json").exists() and (tmp_path / target).exists()
    rel = interrupted.relative_to(runs)
    log = tmp_path / "logs" / ("" if rel.parts[0] in ("baselines", "teachers") else "runs") / f"{rel}.log"
    assert "resuming after epoch" in log.read_text(), log.read_text()[-2000:]
    dry = subprocess.run(_snakemake(target, "-n"), cwd=tmp_path, env=snakemake_env(), check=False,
                         capture_output=True, text=True, timeout=120)
    assert "Nothing to be done" in dry.stdout + dry.stderr
