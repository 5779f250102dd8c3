"""Data-parallel training (lskd.engine.distributed) on CPU: torchrun with 2 processes and the gloo backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from safetensors.torch import load_file

from lskd.engine.distributed import SINGLE, Context, loss_scale, rank_slice
from lskd.models import SMALL_STUDENT, SMALL_TEACHER

HERE = Path(__file__).resolve().parents[1]  # tests/: the worker scripts
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
COMMON = ["--dataset", "digits", "--train-subset", "600", "--test-subset", "201", "--batch-size", "32",
          "--threads", "1", "--no-progress", "--seed", "3"]


def test_the_ranks_shares_of_a_batch_are_the_batch_and_their_scaled_means_its_mean():
    batch = list(range(100, 115))  # 15 images over 2 ranks: 8 and 7
    shares = [rank_slice(batch, Context(2, r, r)) for r in range(2)]
    assert sorted(shares[0] + shares[1]) == batch and [len(s) for s in shares] == [8, 7]
    # DDP averages the ranks' gradients; with the scale that is the gradient of the mean over all 15
    assert sum(loss_scale(len(s), 15, Context(2, r, r)) for r, s in enumerate(shares)) / 2 == pytest.approx(1.0)
    assert [loss_scale(len(s), 15, Context(2, r, r)) for r, s in enumerate(shares)] == [16 / 15, 14 / 15]
    assert rank_slice(batch, SINGLE) == batch and loss_scale(15, 15, SINGLE) == 1.0


@pytest.mark.slow
def test_one_ddp_step_has_the_one_process_gradients_of_the_global_batch(tmp_path):
    out = tmp_path / "grads.json"
    run = subprocess.run([*TORCHRUN, str(HERE / "ddp_grad_worker.py"), str(out), "15"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["world"] == 2 and result["ddp"] and result["shares"] == 8  # unequal shares: 8 and 7
    assert max(result["max_abs_diff"].values()) < 1e-5 * max(1.0, result["max_abs_grad"]), result


def _lskd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lskd.cli", *args]


@pytest.mark.slow
def test_a_two_process_run_writes_the_one_process_run_folder_over_the_whole_test_set(tmp_path):
    teacher = tmp_path / "teacher"
    subprocess.run(_lskd("train-teacher", "--model", SMALL_TEACHER, "--epochs", "1", "--out", str(teacher),
                         *COMMON), check=True, capture_output=True)
    distill = ["distill", "--teacher", str(teacher), "--model", SMALL_STUDENT, "--method", "kd", "--transform",
               "zscore", "--temperature", "2", "--kd-weight", "9", "--epochs", "2", *COMMON]
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(_lskd(*distill, "--out", str(one)), check=True, capture_output=True)
    run = subprocess.run([*TORCHRUN, "-m", "lskd.cli", *distill, "--out", str(two)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m2.keys() == m1.keys() and m2["num_eval"] == m1["num_eval"] == 201  # the whole (odd-sized) test set
    h1, h2 = (pd.read_csv(d / "history.csv") for d in (one, two))
    assert list(h2.columns) == list(h1.columns) and len(h2) == 2
    l1, l2 = (load_file(d / "test_logits.safetensors") for d in (one, two))
    assert (l2["targets"] == l1["targets"]).all()  # gathered back in the test set's order
    acc = 100.0 * float((l2["logits"].argmax(-1) == l2["targets"]).double().mean())
    assert acc == pytest.approx(m2["last"]["top1"])  # the metrics are those of the gathered logits
    parallel = json.loads((two / "spec.json").read_text())["resolved"]["parallel"]
    assert parallel["processes"] == 2 and parallel["backend"] == "gloo"
    assert parallel["global_batch_size"] == 32 and parallel["per_process_batch_size"] == 16
    assert json.loads((one / "spec.json").read_text())["resolved"]["parallel"]["processes"] == 1
    # the same global batches: after 2 epochs the 2-process student is close to the 1-process one (the ranks
    # normalise their own 16 images in BatchNorm, so not equal)
    assert abs(m2["last"]["top1"] - m1["last"]["top1"]) < 15


@pytest.mark.slow
def test_a_sigtermed_two_process_job_resumes_mid_epoch_to_the_uninterrupted_result(tmp_path):
    """SIGTERM to torchrun (as SLURM sends it): torchrun passes it to both processes, they agree to stop after the
    same step, rank 0 writes the checkpoint at that step, and a rerun with torchrun ends bit-identical."""
    import signal
    import time

    from lskd.engine.checkpoint import MANIFEST

    teacher = tmp_path / "teacher"
    subprocess.run(_lskd("train-teacher", "--model", SMALL_TEACHER, "--epochs", "1", "--out", str(teacher),
                         *COMMON), check=True, capture_output=True)
    distill = ["-m", "lskd.cli", "distill", "--teacher", str(teacher), "--model", SMALL_STUDENT, "--method", "kd",
               "--transform", "zscore", "--temperature", "2", "--kd-weight", "9", "--epochs", "6", *COMMON]
    full, stopped = tmp_path / "full", tmp_path / "stopped"
    subprocess.run([*TORCHRUN, *distill, "--out", str(full)], check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen([*TORCHRUN, *distill, "--out", str(stopped)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (stopped / MANIFEST).exists():  # the first epoch is done
        assert proc.poll() is None and time.time() < deadline, "the job ended before it could be signalled"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode != 0 and not (stopped / "metrics.json").exists()
    assert json.loads((stopped / MANIFEST).read_text()).get("step", 0) >= 1
    rerun = subprocess.run([*TORCHRUN, *distill, "--out", str(stopped)], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming in epoch" in rerun.stderr
    for name in ("metrics.json", "model.safetensors", "test_logits.safetensors"):
        assert (full / name).read_bytes() == (stopped / name).read_bytes(), name
