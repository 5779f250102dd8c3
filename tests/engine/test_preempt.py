"""Preemption (lskd.engine.preempt): SIGTERM mid-epoch writes a checkpoint at that step; the rerun ends bit-identical.

The signal is a real SIGTERM sent to this process while the trainer is inside an epoch (just before a chosen
optimiser step), so the installed handler, the checkpoint at that step and the resume path all run as they do
under SLURM. tests/engine/test_reliability.py does the same to a separate `lskd distill` process at a random moment.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from lskd.engine import DataSpec, OptimSpec, RunSpec, train
from lskd.engine import trainer as trainer_module
from lskd.engine.checkpoint import MANIFEST
from lskd.engine.preempt import EXIT_PREEMPTED, Preempted, StopRequest
from lskd.models import SMALL_STUDENT


def _specs() -> list[RunSpec]:
    """Two CE students in one lockstep group: 200 digits in batches of 32, 7 steps per epoch, 3 epochs."""
    data = DataSpec(name="digits", train_subset=200, test_subset=100)
    return [RunSpec(model=SMALL_STUDENT, data=data, optim=OptimSpec(epochs=3, batch_size=32, lr=lr), threads=1)
            for lr in (0.05, 0.1)]


def _sigterm_before(monkeypatch: pytest.MonkeyPatch, epoch: int, step: int) -> None:
    real = trainer_module._step

    def step_then_maybe_signal(student, inputs, teacher_logits, y, e, s, check, **kwargs):
        if (e, s) == (epoch, step) and student is not None and not getattr(step_then_maybe_signal, "sent", False):
            step_then_maybe_signal.sent = True
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to the trainer's handler before this step runs
        return real(student, inputs, teacher_logits, y, e, s, check, **kwargs)

    monkeypatch.setattr(trainer_module, "_step", step_then_maybe_signal)


def _history(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "history.csv").drop(columns=["seconds"])  # wall time is provenance, not a result


def test_sigterm_mid_epoch_checkpoints_that_step_and_the_rerun_is_bit_identical(tmp_path, monkeypatch, capfd):
    specs = _specs()
    full = [tmp_path / "full" / f"m{i}" for i in range(2)]
    train(specs, full, progress=False)

    stopped = [tmp_path / "stopped" / f"m{i}" for i in range(2)]
    with monkeypatch.context() as m:
        _sigterm_before(m, epoch=2, step=3)
        with pytest.raises(Preempted) as stop:
            train(specs, stopped, progress=False)
    assert stop.value.code == EXIT_PREEMPTED
    for run in stopped:
        manifest = json.loads((run / MANIFEST).read_text())
        # the signal arrived before step index 3 ran, and that step still finished: 4 steps of epoch 2 are done
        assert (manifest["epoch"], manifest["step"]) == (1, 4)
        assert not (run / "metrics.json").exists()
    assert "preempted in epoch 2 after step 4/7" in capfd.readouterr().err

    train(specs, stopped, progress=False)  # the rerun (Snakemake's retry, or SLURM's requeue)
    assert "resuming in epoch 2 after step 4" in capfd.readouterr().err
    for a, b in zip(full, stopped):
        for name in ("metrics.json", "model.safetensors", "test_logits.safetensors"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        pd.testing.assert_frame_equal(_history(a), _history(b), check_exact=True)
        assert not (b / "checkpoint").exists()


def test_a_second_preemption_in_the_same_epoch_resumes_from_the_later_step(tmp_path, monkeypatch):
    specs = _specs()[:1]
    full, stopped = tmp_path / "full", tmp_path / "stopped"
    train(specs, [full], progress=False)
    for step in (1, 5):  # preempted twice in epoch 3
        with monkeypatch.context() as m:
            _sigterm_before(m, epoch=3, step=step)
            with pytest.raises(Preempted):
                train(specs, [stopped], progress=False)
        assert json.loads((stopped / MANIFEST).read_text())["step"] == step + 1
    train(specs, [stopped], progress=False)
    assert (full / "model.safetensors").read_bytes() == (stopped / "model.safetensors").read_bytes()
    pd.testing.assert_frame_equal(_history(full), _history(stopped), check_exact=True)


def test_the_stop_request_restores_the_previous_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert signal.getsignal(signal.SIGTERM) == stop._handle and not stop.requested
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.requested and stop.signal == signal.SIGUSR1
    assert signal.getsignal(signal.SIGTERM) == before
