"""Run health (lskd.analysis.health): each status from synthetic metrics, histories and logits, the precedence of
the rules, the status and statistic written into runs.csv, and the report's run-health part."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lskd.analysis import collect_runs, headline_table, selected_runs
from lskd.analysis.health import (
    CHANCE_LEVEL,
    DIVERGED,
    HEALTHY,
    NOT_CONVERGED,
    NOT_CONVERGED_SHARE,
    SINGLE_CLASS,
    SINGLE_CLASS_SHARE,
    STATUSES,
    assess,
    chance_threshold,
    configured_share,
    healthy_mask,
    is_healthy,
    last_epoch_share,
    majority_share,
    run_health,
)
from lskd.engine.io import write_json, write_tensors
from lskd.report.figures_common import Results
from lskd.report.run_health import health_context

K, N = 10, 10_000
BALANCED = np.arange(N) % K  # every class predicted equally often
CLIMBED = [40.0, 60.0, 70.0, 71.0]  # levelled off: the last epoch adds 1 of 61 points


def _metrics(top1: float, **extra) -> dict:
    block = {"epoch": 4, "top1": top1, "top5": 90.0, "nll": 1.0, "ece": 5.0}
    return {"status": "ok", "split": "test", "last": block, "best": block, "num_eval": N, "num_classes": K, **extra}


def _single(share: float) -> np.ndarray:
    """Predictions where class 3 takes ``share`` of them and the rest are spread over the other classes."""
    n_major = int(round(share * N))
    rest = np.array([c for c in range(K) if c != 3])
    return np.concatenate([np.full(n_major, 3), rest[np.arange(N - n_major) % len(rest)]])


# ---------------------------------------------------------------- statistics
def test_majority_share_and_last_epoch_share():
    assert majority_share(BALANCED) == pytest.approx(0.1)
    assert majority_share(_single(0.95)) == pytest.approx(0.95)
    assert math.isnan(majority_share([]))
    # (a_L - best earlier) / (a_L - chance)
    assert last_epoch_share([20.0, 30.0, 60.0], 10.0) == pytest.approx(30 / 50)
    assert last_epoch_share([50.0, 20.0, 60.0], 10.0) == pytest.approx(10 / 50)  # a dip then a recovery is no climb
    assert last_epoch_share([50.0, 60.0, 55.0], 10.0) < 0
    assert math.isnan(last_epoch_share([20.0, 60.0], 10.0))  # two epochs: no trend to judge (MIN_EPOCHS)
    assert math.isnan(last_epoch_share([12.0, 11.0, 9.0], 10.0))  # nothing above chance to take a share of
    assert chance_threshold(10, 10_000) == pytest.approx(10.9)


# ---------------------------------------------------------------- each status
def test_ok():
    h = assess(_metrics(71.0), K, predictions=BALANCED, history_top1=CLIMBED)
    assert h.status == HEALTHY and h.note == "" and is_healthy(h.status)
    assert h.majority_share == pytest.approx(0.1) and h.last_epoch_share == pytest.approx(1 / 61)


def test_diverged():
    h = assess({"status": "diverged", "last": None, "diverged": {"message": "non-finite loss at epoch 3\nmore"}}, K)
    assert h.status == DIVERGED and h.note == "non-finite loss at epoch 3" and not is_healthy(h.status)


def test_single_class():
    h = assess(_metrics(19.0), K, predictions=_single(SINGLE_CLASS_SHARE), history_top1=CLIMBED)
    assert h.status == SINGLE_CLASS and "90.0% of predictions are one class" in h.note
    below = assess(_metrics(19.0), K, predictions=_single(SINGLE_CLASS_SHARE - 0.01), history_top1=[18.0, 19.0])
    assert below.status == HEALTHY


def test_chance_level():
    h = assess(_metrics(10.8), K, predictions=BALANCED)
    assert h.status == CHANCE_LEVEL and "top-1 10.80% ≤ 10.90%" in h.note
    assert assess(_metrics(11.0), K, predictions=BALANCED).status == HEALTHY


def test_not_converged():
    steep = [12.0, 14.0, 20.0, 60.0]  # 40 of the 50 points above chance came in the last epoch
    h = assess(_metrics(60.0), K, predictions=BALANCED, history_top1=steep)
    assert h.status == NOT_CONVERGED and h.last_epoch_share == pytest.approx(0.8)
    assert "last epoch added 80% of the rise above chance" in h.note and "best earlier epoch 20.00%" in h.note
    at_threshold = [20.0, 35.0, 60.0]  # (60 - 35) / (60 - 10) = 0.5 exactly: not above the threshold
    assert last_epoch_share(at_threshold, 10.0) == NOT_CONVERGED_SHARE
    assert assess(_metrics(60.0), K, history_top1=at_threshold).status == HEALTHY
    # the config's health.not_converged_share: a lower threshold flags it, None switches the check off
    assert assess(_metrics(60.0), K, history_top1=at_threshold, not_converged_share=0.4).status == NOT_CONVERGED
    assert assess(_metrics(60.0), K, history_top1=steep, not_converged_share=None).status == HEALTHY
    assert configured_share({}) == NOT_CONVERGED_SHARE
    assert configured_share({"health": {"not_converged_share": None}}) is None


def test_missing_inputs_skip_their_check():
    assert assess(_metrics(60.0), K).status == HEALTHY  # no logits, no history
    assert assess(_metrics(10.0), None).status == HEALTHY  # no class count: chance unknown


# ---------------------------------------------------------------- precedence
def test_precedence_diverged_then_single_class_then_chance_then_not_converged():
    assert STATUSES == (DIVERGED, SINGLE_CLASS, CHANCE_LEVEL, NOT_CONVERGED, HEALTHY)
    diverged = {"status": "diverged", "last": None}
    assert assess(diverged, K, predictions=_single(1.0), history_top1=[10.0, 60.0]).status == DIVERGED
    # at chance and one class: the more specific diagnosis
    assert assess(_metrics(10.0), K, predictions=_single(1.0)).status == SINGLE_CLASS
    # within 3 SE of chance and its last epoch made most of its (tiny) rise: still a run at chance
    assert last_epoch_share([10.0, 10.1, 10.5], 10.0) > NOT_CONVERGED_SHARE
    assert assess(_metrics(10.5), K, predictions=BALANCED, history_top1=[10.0, 10.1, 10.5]).status == CHANCE_LEVEL
    # single-class and climbing steeply
    assert assess(_metrics(19.0), K, predictions=_single(0.95), history_top1=[10.0, 19.0]).status == SINGLE_CLASS


# ---------------------------------------------------------------- run folders and runs.csv
def _run(root: Path, name: str, *, top1: float, predictions: np.ndarray | None, history: list[float] | None,
         diverged: bool = False, seed: int = 0) -> Path:
    d = root / name
    d.mkdir(parents=True)
    labels = {"role": "baseline", "dataset": "fashion_mnist", "student": "cnn", "method": "ce", "seed": seed}
    write_json(d / "spec.json", {"spec": {"model": "cnn", "data": {"name": "fashion_mnist"}, "method": "ce",
                                          "hparams": {}, "seed": seed, "labels": labels},
                                 "resolved": {"num_classes": K, "hparams": {}}})
    write_json(d / "metrics.json", {"status": "diverged", "split": "test", "last": None, "best": None,
                                    "diverged": {"message": "non-finite loss"}} if diverged else _metrics(top1))
    write_json(d / "timing.json", {"wall_seconds": 1.0, "epochs": 4})
    if history is not None:
        pd.DataFrame({"epoch": range(1, len(history) + 1), "test_top1": history}).to_csv(d / "history.csv",
                                                                                          index=False)
    if predictions is not None:
        write_tensors(d / "test_logits.safetensors", {"logits": torch.eye(K)[torch.from_numpy(predictions)],
                                                      "targets": torch.arange(N) % K})
    return d


def test_each_status_from_run_folders_into_runs_csv(tmp_path):
    dirs = [
        _run(tmp_path, "ok", top1=71.0, predictions=BALANCED, history=CLIMBED, seed=0),
        _run(tmp_path, "single", top1=10.0, predictions=_single(1.0), history=[10.0, 10.0], seed=1),
        _run(tmp_path, "chance", top1=10.5, predictions=BALANCED, history=[10.2, 10.5], seed=2),
        _run(tmp_path, "climbing", top1=60.0, predictions=BALANCED, history=[12.0, 14.0, 20.0, 60.0], seed=3),
        _run(tmp_path, "diverged", top1=0.0, predictions=None, history=[30.0], diverged=True, seed=4),
    ]
    assert run_health(dirs[2], _metrics(10.5)).status == CHANCE_LEVEL
    runs = collect_runs(dirs).set_index("seed")
    assert list(runs["status"]) == [HEALTHY, SINGLE_CLASS, CHANCE_LEVEL, NOT_CONVERGED, DIVERGED]
    assert runs.loc[0, "majority_share"] == pytest.approx(0.1)
    assert runs.loc[1, "majority_share"] == 1.0 and "one class" in runs.loc[1, "health_note"]
    assert runs.loc[3, "last_epoch_share"] == pytest.approx(0.8)
    assert runs.loc[4, "health_note"] == "non-finite loss" and math.isnan(runs.loc[4, "last_top1"])
    assert list(healthy_mask(runs["status"])) == [True, False, False, False, False]


# ---------------------------------------------------------------- consumers and the report
def _distill(seed: int, status: str, top1: float, transform: str = "none", note: str = "") -> dict:
    return {"run_dir": f"/r/{transform}/{seed}", "role": "distill", "dataset": "fashion_mnist", "teacher": "big",
            "student": "small", "model": "small", "method": "kd", "transform": transform, "temperature": 4.0,
            "kd_weight": 0.9, "ce_weight": 0.1, "effective_temperature": 4.0, "seed": seed, "last_top1": top1,
            "best_top1": top1, "stage": "sweep", "split": "test", "status": status, "health_note": note}


@pytest.fixture()
def mixed_runs() -> pd.DataFrame:
    rows = [_distill(0, HEALTHY, 70.0), _distill(1, HEALTHY, 72.0),
            _distill(2, NOT_CONVERGED, 90.0, note="last epoch added 80% of the rise above chance"),
            _distill(0, HEALTHY, 73.0, "zscore"), _distill(1, HEALTHY, 71.0, "zscore"),
            _distill(2, SINGLE_CLASS, 10.0, "zscore", note="100.0% of predictions are one class (≥ 90%)"),
            _distill(3, SINGLE_CLASS, 10.0, "zscore", note="100.0% of predictions are one class (≥ 90%)")]
    return pd.DataFrame(rows).astype({"temperature": float, "kd_weight": float, "last_top1": float})


def test_unhealthy_runs_never_enter_the_selection_or_the_headline():
    rows = [_distill(0, HEALTHY, 70.0), _distill(1, HEALTHY, 72.0),
            {**_distill(0, HEALTHY, 90.0), "temperature": 2.0},  # the better mean, but its other seed was still
            {**_distill(1, NOT_CONVERGED, 95.0), "temperature": 2.0}]  # climbing steeply: never selected
    runs = pd.DataFrame(rows).astype({"temperature": float, "kd_weight": float, "last_top1": float})
    chosen = selected_runs(runs)
    assert set(chosen["temperature"]) == {4.0} and set(chosen["status"]) == {HEALTHY}
    head = headline_table(runs).iloc[0]
    assert head["temperature"] == 4.0 and head["last_top1_mean"] == pytest.approx(71.0)
    assert head["status"] == HEALTHY and head["n_unhealthy"] == 1


def test_report_counts_and_lists_the_excluded_runs(mixed_runs, tmp_path):
    baseline = {**_distill(9, CHANCE_LEVEL, 10.1), "role": "baseline", "method": "ce", "transform": None,
                "temperature": float("nan"), "kd_weight": float("nan"), "stage": None, "health_note": "at chance"}
    runs = pd.concat([mixed_runs, pd.DataFrame([baseline])], ignore_index=True)
    ctx = health_context(Results(tmp_path, {}, runs, {}), validation=False)
    assert ctx["total"] == 7 and ctx["excluded"] == 3 and ctx["references"] == 1
    assert [(c["status"], c["n"]) for c in ctx["counts"]] == [(SINGLE_CLASS, 2), (NOT_CONVERGED, 1)]
    lines = str(ctx["table"]).splitlines()
    assert lines[0].startswith("| pair | method | logits | setting | seed | stage | split | status |")
    assert len(lines) == 2 + 4  # header, rule, three distillation runs and the baseline
    assert "| big → small | KD | raw | T=4, w=0.9 | 2 | grid | test | not converged | 90.00 | last epoch added" in str(
        ctx["table"])
    assert "| CE baseline | test | chance-level | 10.10 | at chance |" in str(ctx["table"])
    clean = health_context(Results(tmp_path, {}, mixed_runs.assign(status=HEALTHY), {}), validation=False)
    assert clean["excluded"] == 0 and not clean["any"]
