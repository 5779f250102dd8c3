"""Engine: schedules, metrics, determinism, resume, lockstep groups, divergence, spec validation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lskd.engine import (
    DataSpec,
    DivergenceError,
    OptimSpec,
    RunSpec,
    classification_metrics,
    expected_calibration_error,
    lr_at,
    topk_accuracy,
    train,
    train_one,
)
from lskd.engine import trainer as trainer_module
from lskd.engine.io import read_json, read_tensors
from lskd.models import SMALL_MODELS

TEACHER_ARCH, STUDENT_ARCH = SMALL_MODELS[0], SMALL_MODELS[1]


def digits_spec(model: str, method: str = "ce", *, epochs: int = 1, teacher: Path | None = None,
                seed: int = 0, lr: float = 0.05, **hparams) -> RunSpec:
    return RunSpec(
        model=model,
        data=DataSpec(name="digits", train_subset=400, test_subset=200),
        optim=OptimSpec(epochs=epochs, batch_size=32, lr=lr, milestones=[1], gamma=0.5),
        method=method,
        hparams=hparams,
        teacher_dir=str(teacher) if teacher else None,
        seed=seed,
        threads=1,
        cell=f"{method}-{hparams.get('transform', 'none')}",
    )


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    train_one(digits_spec(TEACHER_ARCH, epochs=2), out, progress=False)
    return out


# ---------------------------------------------------------------- pure pieces
def test_multistep_schedule_with_warmup():
    o = OptimSpec(epochs=240, lr=0.05, milestones=[150, 180, 210], gamma=0.1, warmup_epochs=5)
    assert lr_at(1, o) == pytest.approx(0.01)
    assert lr_at(5, o) == pytest.approx(0.05)
    assert lr_at(150, o) == pytest.approx(0.05)  # decay applies after the milestone epoch (mdistiller)
    assert lr_at(151, o) == pytest.approx(0.005)
    assert lr_at(211, o) == pytest.approx(0.05e-3)
    c = OptimSpec(epochs=10, lr=1.0, schedule="cosine")
    assert lr_at(1, c) == pytest.approx(1.0) and lr_at(6, c) == pytest.approx(0.5)


def test_accuracy_and_calibration_metrics():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 5.0], [0.0, 1.0, 2.0]])
    targets = torch.tensor([0, 2, 2, 0])
    assert topk_accuracy(logits, targets, 1) == 50.0
    assert topk_accuracy(logits, targets, 2) == 75.0
    # one sample, confidence 0.8, wrong -> ECE = |0 - 0.8| = 80 %
    assert expected_calibration_error(torch.tensor([[math.log(4.0), 0.0]]), torch.tensor([1])) == pytest.approx(80.0)
    m = classification_metrics(logits, targets)
    assert set(m) == {"top1", "top5", "nll", "ece"} and m["top5"] == 100.0


# ---------------------------------------------------------------- per-run contract
def test_teacher_run_writes_the_per_run_contract(teacher_dir):
    for name in ("spec.json", "history.csv", "metrics.json", "test_logits.safetensors", "model.safetensors", "timing.json"):
        assert (teacher_dir / name).exists(), name
    assert not (teacher_dir / "checkpoint").exists()
    record = read_json(teacher_dir / "spec.json")
    assert record["spec"]["seed"] == 0 and record["git_commit"]
    assert {"torch", "timm", "lskd"} <= set(record["versions"]) and record["hardware"]["cpu_count"]
    metrics = read_json(teacher_dir / "metrics.json")
    assert metrics["last"]["epoch"] == 2 and 1 <= metrics["best"]["epoch"] <= 2
    assert metrics["num_test"] == 200
    logits = read_tensors(teacher_dir / "test_logits.safetensors")
    assert logits["logits"].shape == (200, 10) and logits["targets"].shape == (200,)
    assert classification_metrics(logits["logits"], logits["targets"])["top1"] == pytest.approx(metrics["last"]["top1"])
    assert metrics["last"]["top1"] > 30  # 2 epochs on 400 digits beat chance (10 %) by far


def test_same_seed_gives_bit_identical_metrics(tmp_path, teacher_dir):
    spec = digits_spec(STUDENT_ARCH, "kd", teacher=teacher_dir, temperature=2.0, transform="zscore", kd_weight=9.0)
    train_one(spec, tmp_path / "a", progress=False)
    train_one(spec, tmp_path / "b", progress=False)
    assert (tmp_path / "a/metrics.json").read_bytes() == (tmp_path / "b/metrics.json").read_bytes()
    assert (tmp_path / "a/test_logits.safetensors").read_bytes() == (tmp_path / "b/test_logits.safetensors").read_bytes()
    other = digits_spec(STUDENT_ARCH, "kd", teacher=teacher_dir, seed=1, temperature=2.0, transform="zscore", kd_weight=9.0)
    train_one(other, tmp_path / "c", progress=False)
    assert (tmp_path / "c/metrics.json").read_bytes() != (tmp_path / "a/metrics.json").read_bytes()


def test_resume_after_an_interrupted_epoch_matches_an_uninterrupted_run(tmp_path, teacher_dir, monkeypatch):
    spec = digits_spec(STUDENT_ARCH, "dkd", epochs=3, teacher=teacher_dir, temperature=4.0, warmup=2)
    train_one(spec, tmp_path / "full", progress=False)

    real_step, calls = trainer_module._step, {"n": 0}
    steps_per_epoch = math.ceil(400 / 32)

    def crash_mid_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 5:
            raise KeyboardInterrupt("simulated kill in epoch 2")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "_step", crash_mid_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_one(spec, tmp_path / "resumed", progress=False)
    assert (tmp_path / "resumed/checkpoint/last_state.pt").exists()
    assert not (tmp_path / "resumed/metrics.json").exists()
    monkeypatch.setattr(trainer_module, "_step", real_step)
    train_one(spec, tmp_path / "resumed", progress=False)
    assert (tmp_path / "full/metrics.json").read_bytes() == (tmp_path / "resumed/metrics.json").read_bytes()
    assert (tmp_path / "full/model.safetensors").read_bytes() == (tmp_path / "resumed/model.safetensors").read_bytes()


def test_finished_runs_are_not_retrained(tmp_path, teacher_dir, monkeypatch):
    spec = digits_spec(STUDENT_ARCH, "ce")
    train_one(spec, tmp_path / "run", progress=False)
    before = (tmp_path / "run/metrics.json").stat().st_mtime_ns
    monkeypatch.setattr(trainer_module, "_train_group", lambda *a, **k: pytest.fail("retrained a finished run"))
    train_one(spec, tmp_path / "run", progress=False)
    assert (tmp_path / "run/metrics.json").stat().st_mtime_ns == before


def test_a_cell_trained_in_a_group_matches_the_cell_trained_alone(tmp_path, teacher_dir):
    cells = [
        digits_spec(STUDENT_ARCH, "kd", teacher=teacher_dir, temperature=4.0),
        digits_spec(STUDENT_ARCH, "kd", teacher=teacher_dir, temperature=2.0, transform="zscore", kd_weight=9.0),
        digits_spec(STUDENT_ARCH, "mlkd", teacher=teacher_dir, temperature=4.0),
    ]
    train(cells, [tmp_path / f"group{i}" for i in range(3)], progress=False)
    for i in (1, 2):
        train_one(cells[i], tmp_path / f"alone{i}", progress=False)
        assert (tmp_path / f"group{i}/metrics.json").read_bytes() == (tmp_path / f"alone{i}/metrics.json").read_bytes()


@pytest.mark.parametrize("method,hparams,terms", [
    ("kd", {"temperature": 4.0}, {"ce", "kd"}),
    ("kd", {"temperature": 2.0, "transform": "zscore", "kd_weight": 9.0}, {"ce", "kd"}),
    ("dkd", {"temperature": 4.0, "warmup": 1}, {"ce", "tckd", "nckd"}),
    ("dkd", {"temperature": 2.0, "transform": "zscore", "kd_weight": 9.0, "warmup": 1}, {"ce", "tckd", "nckd"}),
    ("ctkd", {}, {"ce", "kd"}),
    ("ctkd", {"transform": "zscore", "kd_weight": 9.0}, {"ce", "kd"}),
    ("mlkd", {"temperature": 4.0}, {"ce", "kd", "cc", "bc"}),
    ("mlkd", {"temperature": 2.0, "transform": "zscore", "kd_weight": 9.0}, {"ce", "kd", "cc", "bc"}),
])
def test_every_method_trains_and_logs_its_terms(tmp_path, teacher_dir, method, hparams, terms):
    metrics = train_one(digits_spec(STUDENT_ARCH, method, teacher=teacher_dir, **hparams), tmp_path, progress=False)
    import pandas as pd

    history = pd.read_csv(tmp_path / "history.csv")
    assert {f"loss_{t}" for t in terms} <= set(history.columns)
    assert history[[f"loss_{t}" for t in terms]].notna().all().all()
    if method == "ctkd":
        assert 1.0 < history["temperature"].iloc[-1] < 21.0
    assert 0 <= metrics["last"]["top1"] <= 100


def test_divergence_stops_with_cell_epoch_and_step(tmp_path, teacher_dir):
    spec = digits_spec(STUDENT_ARCH, "kd", teacher=teacher_dir, lr=1e12, temperature=4.0)
    with pytest.raises(DivergenceError, match=r"\[kd-none\] non-finite loss at epoch 1, step \d+"):
        train_one(spec, tmp_path, progress=False)
    assert (tmp_path / "divergence.json").exists()
    assert not (tmp_path / "metrics.json").exists()


# ---------------------------------------------------------------- validation before compute
@pytest.mark.parametrize("change,message", [
    ({"model": "resnet8x5"}, "unknown model 'resnet8x5'"),
    ({"method": "kdd"}, "unknown method 'kdd' \\(did you mean 'kd'\\?\\)"),
    ({"method": "kd"}, "needs a teacher"),
    ({"hparams": {"temprature": 2}}, "does not take temprature"),
    ({"data": {"name": "mnist"}}, "mnist"),
    ({"optim": {"epochs": 0}}, "epochs must be >= 1"),
    ({"seeed": 1}, "unknown key 'seeed' in run spec \\(did you mean 'seed'\\?\\)"),
])
def test_bad_specs_fail_before_compute(change, message):
    raw = {"model": STUDENT_ARCH, "data": {"name": "digits"}, "optim": {"epochs": 1}, "method": "ce", **change}
    with pytest.raises((ValueError, KeyError), match=message):
        RunSpec.from_dict(raw)


def test_cuda_request_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU is visible"):
        trainer_module.resolve_device("cuda")
