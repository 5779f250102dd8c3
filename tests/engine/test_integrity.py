"""Integrity, provoked on purpose: corrupted checkpoints, a full disk, kills between two writes, concurrent writers,
and non-finite numbers on their way to a table. Each test names the failure it provokes in its docstring."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import multiprocessing as mp
import os
import re
from pathlib import Path

import pytest
import torch

from lskd.engine import DataSpec, DivergenceError, OptimSpec, RunSpec, train_one
from lskd.engine import checkpoint as ckpt
from lskd.engine import trainer as trainer_module
from lskd.engine.io import write_json, write_text
from lskd.models import SMALL_STUDENT

EPOCHS, TRAIN, BATCH = 3, 200, 32
STEPS = math.ceil(TRAIN / BATCH)


def spec(model: str = SMALL_STUDENT, **changes) -> RunSpec:
    base = {"model": model, "data": DataSpec(name="digits", train_subset=TRAIN, test_subset=100),
            "optim": OptimSpec(epochs=EPOCHS, batch_size=BATCH, lr=0.05, milestones=[2]), "threads": 1, "cell": "tiny"}
    return RunSpec(**{**base, **changes})


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def outputs(run: Path) -> tuple[bytes, bytes, bytes]:
    return tuple((run / n).read_bytes() for n in ("metrics.json", "model.safetensors", "test_logits.safetensors"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every recovered run must reproduce byte for byte."""
    out = tmp_path_factory.mktemp("reference")
    train_one(spec(), out, progress=False)
    return out


def crash_in_epoch(monkeypatch, epoch: int) -> None:
    """Make training raise KeyboardInterrupt (a kill) a few steps into ``epoch``."""
    real, calls = trainer_module._step, {"n": 0}

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == (epoch - 1) * STEPS + 3:
            raise KeyboardInterrupt(f"simulated kill in epoch {epoch}")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "_step", step)


def interrupted_run(tmp_path: Path, monkeypatch, epoch: int = 3) -> Path:
    """A run killed in ``epoch`` (generations ``last`` = epoch - 1 and ``prev`` = epoch - 2 on disk)."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        crash_in_epoch(m, epoch)
        with pytest.raises(KeyboardInterrupt):
            train_one(spec(), out, progress=False)
    return out


def resume(out: Path, capfd) -> str:
    train_one(spec(), out, progress=False)
    return capfd.readouterr().err


# ------------------------------------------------------------------ corrupted checkpoints
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage,target,reason", [
    (_truncate, ckpt.WEIGHTS, r"last\.safetensors has SHA-256 .* \(truncated or corrupted\)"),
    (_flip, ckpt.WEIGHTS, r"last\.safetensors has SHA-256 .* \(truncated or corrupted\)"),
    (_flip, ckpt.STATE, r"last_state\.pt has SHA-256 .* \(truncated or corrupted\)"),
    (_truncate, ckpt.MANIFEST, r"unreadable manifest"),
    (_flip, ckpt.MANIFEST, r"(does not match its own SHA-256|unreadable manifest)"),
], ids=["truncated weights", "flipped byte in weights", "flipped byte in state", "truncated manifest",
        "flipped byte in manifest"])
def test_corrupted_checkpoint_is_refused_and_the_previous_epoch_resumes(tmp_path, monkeypatch, capfd, reference,
                                                                      damage, target, reason):
    """Failure: the newest checkpoint is truncated or has a flipped byte. Behaviour: its SHA-256 no longer matches
    the one recorded at write time, so it is skipped with a warning naming the file, the run resumes from the
    previous generation (epoch 1) and ends bit-identical to an uninterrupted run."""
    out = interrupted_run(tmp_path, monkeypatch)
    damage(out / target)
    err = resume(out, capfd)
    assert re.search(reason, err), err
    assert "resuming from the intact epoch-1 checkpoint" in err and "resuming after epoch 1" in err
    assert outputs(out) == outputs(reference)


def test_every_checkpoint_corrupted_restarts_from_epoch_one(tmp_path, monkeypatch, capfd, reference):
    """Failure: both kept generations are corrupted. Behaviour: neither is used; the run starts over (with a
    warning) and still ends bit-identical."""
    out = interrupted_run(tmp_path, monkeypatch)
    for name in ("last.safetensors", "prev.safetensors"):
        _flip(out / "checkpoint" / name)
    err = resume(out, capfd)
    assert "no intact checkpoint is left, starting from epoch 1" in err and "resuming after" not in err
    assert outputs(out) == outputs(reference)


def test_checkpoint_of_another_spec_is_refused(tmp_path, monkeypatch):
    """Failure: the output folder holds an intact checkpoint of a different spec. Behaviour: CheckpointError."""
    out = interrupted_run(tmp_path, monkeypatch)
    with pytest.raises(ckpt.CheckpointError, match="belongs to a different run spec"):
        train_one(spec(seed=5), out, progress=False)


# ------------------------------------------------------------------ kills between two writes
@pytest.mark.parametrize("when", ["after the weights, before the state", "after the state, before the manifest",
                                  "in the middle of the renames"])
def test_kill_while_a_checkpoint_is_written_resumes_exactly(tmp_path, monkeypatch, capfd, reference, when):
    """Failure: the job dies while the epoch-2 checkpoint is being written (three files and six renames).
    Behaviour: a generation whose files do not match its manifest is never used; the run resumes from an intact
    one and ends bit-identical (the old single-file-pair layout resumed epoch-1 state with epoch-2 weights)."""
    out = tmp_path / "run"
    real_atomic, real_replace = ckpt.atomic_write, Path.replace
    epoch = {"n": 0}

    def atomic_write(path, write):
        if Path(path).name == "next_state.pt":
            epoch["n"] += 1
            if epoch["n"] == 2 and when.startswith("after the weights"):
                raise KeyboardInterrupt(when)
        return real_atomic(path, write)

    def write_json(path, data):
        if epoch["n"] == 2 and when.startswith("after the state"):
            raise KeyboardInterrupt(when)
        return ckpt_write_json(path, data)

    def replace(self, target):
        if epoch["n"] == 2 and when.startswith("in the middle") and self.name == "next.safetensors":
            raise KeyboardInterrupt(when)
        return real_replace(self, target)

    ckpt_write_json = ckpt.write_json
    with monkeypatch.context() as m:
        m.setattr(ckpt, "atomic_write", atomic_write)
        m.setattr(ckpt, "write_json", write_json)
        m.setattr(Path, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            train_one(spec(), out, progress=False)
    err = resume(out, capfd)
    assert re.search(r"resuming after epoch [12]\b", err), err  # epoch 2 when its generation was complete
    assert outputs(out) == outputs(reference)


def test_kill_after_the_last_checkpoint_before_metrics_finishes_the_run(tmp_path, monkeypatch, capfd, reference):
    """Failure: the job dies after its final-epoch checkpoint but before metrics.json is written. Behaviour: the
    rerun restores the final epoch, re-evaluates and writes the outputs without training again (the old code
    looped over no epoch and crashed on the missing metrics.json)."""
    out = tmp_path / "run"
    real_write = trainer_module.write_final_outputs

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before the final outputs")

    with monkeypatch.context() as m:
        m.setattr(trainer_module, "write_final_outputs", killed)
        with pytest.raises(KeyboardInterrupt):
            train_one(spec(), out, progress=False)
    assert not (out / "metrics.json").exists()
    monkeypatch.setattr(trainer_module, "write_final_outputs", real_write)
    monkeypatch.setattr(trainer_module, "_step", lambda *a, **k: pytest.fail("trained again"))
    err = resume(out, capfd)
    assert f"resuming after epoch {EPOCHS}" in err
    assert outputs(out) == outputs(reference) and not (out / "checkpoint").exists()


# ------------------------------------------------------------------ disk full
def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, capfd, reference):
    """Failure: ENOSPC while the epoch-2 checkpoint is written. Behaviour: CheckpointWriteError saying the disk is
    full and that the epoch-1 checkpoint is untouched (its files are byte-identical, no temporary file is left);
    after space is freed the same command resumes and ends bit-identical."""
    out = tmp_path / "run"
    real_save, real_checkpoint = torch.save, ckpt.save_checkpoint
    snapshot: dict[str, str] = {}

    def save_checkpoint(out_dir, model, method, optimizer, epoch, history, fingerprint):
        real_checkpoint(out_dir, model, method, optimizer, epoch, history, fingerprint)
        if epoch == 1:
            snapshot.update(hashes(out_dir / "checkpoint"))

    def full_disk(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 2:
            Path(f).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(trainer_module, "save_checkpoint", save_checkpoint)
        m.setattr(ckpt.torch, "save", full_disk)
        with pytest.raises(ckpt.CheckpointWriteError) as info:
            train_one(spec(), out, progress=False)
    message = str(info.value)
    assert "could not write the epoch-2 checkpoint" in message and "No space left on device" in message
    assert "The epoch-1 checkpoint is untouched" in message and "rerun the same command" in message
    assert hashes(out / "checkpoint") == snapshot  # no next.*, no temporary file, last.* unchanged
    err = resume(out, capfd)
    assert "resuming after epoch 1" in err
    assert outputs(out) == outputs(reference)


# ------------------------------------------------------------------ concurrent writers
def _hammer(path: str, worker: int, rounds: int) -> None:
    """Rewrite ``path`` (a metrics-like JSON and a table-like CSV) with large, self-checking content."""
    for i in range(rounds):
        payload = {"worker": worker, "round": i, "rows": [worker * 1_000_000 + i] * 20_000}
        write_json(path + ".json", payload)
        write_text(path + ".csv", "run,top1\n" + "".join(f"w{worker}r{i},{j}\n" for j in range(20_000)) + "END\n")


@pytest.mark.slow
def test_concurrent_writers_never_expose_a_partial_file(tmp_path):
    """Failure: two processes rewrite the same metrics file and table in a loop while a third reads them.
    Behaviour: every read is a complete file from one writer (atomic rename); no temporary file is left."""
    target = str(tmp_path / "results" / "tables" / "shared")
    Path(target).parent.mkdir(parents=True)
    _hammer(target, 0, 1)
    ctx = mp.get_context("fork")  # the writers use no torch, so forking is safe and quick
    writers = [ctx.Process(target=_hammer, args=(target, w, 60)) for w in (1, 2)]
    for p in writers:
        p.start()
    reads = 0
    while any(p.is_alive() for p in writers) or reads < 20:
        data = json.loads(Path(target + ".json").read_text())  # raises on a partial file
        assert data["rows"] == [data["worker"] * 1_000_000 + data["round"]] * 20_000
        table = Path(target + ".csv").read_text()
        assert table.startswith("run,top1\n") and table.endswith("END\n") and table.count("\n") == 20_002
        reads += 1
    for p in writers:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(os.listdir(Path(target).parent)) == ["shared.csv", "shared.json"]
    assert reads >= 20


def _train_into(out: str, seed: int) -> None:
    torch.set_num_threads(1)
    train_one(spec(seed=seed, optim=OptimSpec(epochs=2, batch_size=BATCH)), out, progress=False)


@pytest.mark.slow
def test_two_jobs_training_into_one_results_tree_concurrently(tmp_path):
    """Failure: two training processes write run folders in the same results tree at once (as parallel Snakemake
    jobs do). Behaviour: both finish and each folder equals the folder the run writes alone."""
    ctx = mp.get_context("spawn")
    runs = tmp_path / "results" / "runs"
    jobs = [ctx.Process(target=_train_into, args=(str(runs / f"seed{s}"), s)) for s in (0, 1)]
    for p in jobs:
        p.start()
    for p in jobs:
        p.join(timeout=300)
        assert p.exitcode == 0
    _train_into(str(tmp_path / "alone"), 1)
    assert outputs(runs / "seed1") == outputs(tmp_path / "alone")
    assert not (runs / "seed0" / "checkpoint").exists() and not list(runs.rglob("*.tmp"))


# ------------------------------------------------------------------ no NaN on the way to a table
def test_json_writer_refuses_nan():
    """Failure: a NaN metric is about to be written. Behaviour: ValueError, nothing written."""
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json(Path("/nonexistent/never-written.json"), {"top1": float("nan")})


def test_a_diverged_run_never_reaches_a_table(tmp_path):
    """Failure: an absurd learning rate makes a cell diverge next to a healthy one. Behaviour: the diverged run
    stops with DivergenceError naming cell, epoch and step, keeps divergence.json, writes no metrics.json; collecting
    the results refuses it by name instead of averaging a NaN, so no table can hold one."""
    from lskd.analysis import collect_runs

    healthy, diverged = tmp_path / "healthy", tmp_path / "diverged"
    train_one(spec(optim=OptimSpec(epochs=1, batch_size=BATCH)), healthy, progress=False)
    with pytest.raises(DivergenceError, match=r"\[bad-lr\] non-finite loss at epoch 1, step \d+"):
        train_one(spec(optim=OptimSpec(epochs=1, batch_size=BATCH, lr=1e12), cell="bad-lr"), diverged, progress=False)
    record = json.loads((diverged / "divergence.json").read_text())
    assert record["epoch"] == 1 and "ce" in record["terms"]
    assert not (diverged / "metrics.json").exists()
    with pytest.raises(FileNotFoundError, match="diverged has no metrics.json: the run is not finished"):
        collect_runs([healthy, diverged])
    metrics = json.loads((healthy / "metrics.json").read_text())
    metrics["last"]["top1"] = "NaN"  # a hand-edited or foreign metrics file
    (healthy / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match=r"non-finite or missing metrics \(last\.top1='NaN'\); refusing to tabulate"):
        collect_runs([healthy])

