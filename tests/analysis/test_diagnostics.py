"""Diagnostics: golden values on small constructed inputs (gap closed, temperature scaling, per-class change)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lskd.analysis import diagnostics as dg
from lskd.analysis.diagnostics import RunEval


def test_gap_closed_golden():
    assert dg.gap_closed(70.0, 60.0, 80.0) == pytest.approx(0.5)
    assert dg.gap_closed(55.0, 60.0, 80.0) == pytest.approx(-0.25)
    assert math.isnan(dg.gap_closed(70.0, 60.0, 60.0))


def test_temperature_scaling_recovers_a_known_temperature():
    # labels drawn from softmax(z / 2): the NLL-optimal temperature for logits z is 2 (up to sampling noise)
    rng = np.random.default_rng(0)
    z = rng.normal(scale=4.0, size=(20_000, 5))
    p = np.exp(z / 2 - (z / 2).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])
    assert dg.fit_temperature(z, y) == pytest.approx(2.0, rel=0.05)
    cal = dg.calibration(z, y)
    assert cal["ts_fit_split"] == "test-2fold" and cal["ece_ts"] < 2.0 < cal["ece"]
    assert cal["ts_temperature"] == pytest.approx(2.0, rel=0.05)
    half = slice(0, 10_000)
    assert dg.calibration(z, y, z[half], y[half])["ts_fit_split"] == "val"


def test_ece_of_a_constructed_case():
    # two samples, both predicted with confidence 0.8 (logit gap ln 4), one right: ECE = |0.5 - 0.8| = 30 %
    z = np.array([[math.log(4), 0.0], [math.log(4), 0.0]])
    assert dg.ece(z, np.array([0, 1])) == pytest.approx(30.0)


def test_per_class_accuracy_and_change():
    targets = np.array([0, 0, 1, 1])
    raw = np.eye(3)[[0, 1, 1, 1]] * 5  # class 0: 50 %, class 1: 100 %
    ls = np.eye(3)[[0, 0, 0, 1]] * 5  # class 0: 100 %, class 1: 50 %
    acc = dg.per_class_accuracy(raw, targets, 3)
    assert acc[:2].tolist() == [50.0, 100.0] and math.isnan(acc[2])
    evals = {"r": RunEval(raw, targets, None, None, 100), "z": RunEval(ls, targets, None, None, 100)}
    sel = pd.DataFrame({"dataset": "d", "teacher": "t", "student": "s", "method": "kd", "transform": ["none", "zscore"],
                        "seed": [0, 0], "run_dir": ["r", "z"]})
    table = dg.per_class_table(sel, load=evals.__getitem__)
    assert table["change_mean"].tolist()[:2] == [50.0, -50.0] and (table["n"] == 1).all()


def _runs() -> pd.DataFrame:
    base = {"dataset": "d", "teacher": "t", "student": "s", "stage": "sweep", "status": "ok", "epochs": 2}
    rows = [{**base, "role": "teacher", "seed": 0, "last_top1": 80.0, "wall_seconds": 9.0, "run_dir": "T"}]
    rows += [{**base, "role": "baseline", "method": "ce", "seed": s, "last_top1": acc, "wall_seconds": 1.0 + s,
              "run_dir": f"B{s}"} for s, acc in ((0, 60.0), (1, 62.0), (2, 58.0))]
    for s in (0, 1, 2):  # KD raw and z-score in one job per seed (same wall time), MLKD alone
        for transform, acc in (("none", 70.0 + s), ("zscore", 71.0 + s)):
            rows.append({**base, "role": "distill", "method": "kd", "transform": transform, "temperature": 1.0,
                         "kd_weight": 1.0, "seed": s, "last_top1": acc, "wall_seconds": 4.0,
                         "run_dir": f"kd-{transform}-{s}"})
        rows.append({**base, "role": "distill", "method": "mlkd", "transform": "none", "temperature": 1.0,
                     "kd_weight": 1.0, "seed": s, "last_top1": 65.0, "wall_seconds": 6.0, "run_dir": f"ml-{s}"})
    return pd.DataFrame(rows)


def test_diagnostics_table_gain_gap_and_cost():
    runs = _runs()
    z = np.eye(2)[[0, 1]] * 3.0
    load = lambda d: RunEval(z, np.array([0, 1]), None, None, 100)  # noqa: E731
    table = dg.diagnostics_table(runs, runs[runs["role"] == "distill"], protocol="paper", load=load)
    kd = table.set_index(["method", "transform"]).loc[("kd", "none")]
    # paired by seed: (70-60, 71-62, 72-58) = (10, 9, 14), mean 11; CE mean 60, teacher 80: gap 20
    assert kd["gain_pairing"] == dg.PAIRED and kd["gain_ce_mean"] == pytest.approx(11.0)
    assert kd["gap_closed_mean"] == pytest.approx(11.0 / 20.0) and kd["gain_ce_lo"] < 11.0 < kd["gain_ce_hi"]
    # KD: a 4 s job of 2 students = 2 s each, 100 images x 2 epochs / 2 s; MLKD 6 s alone: 3x KD
    assert kd["students_in_job"] == 2 and kd["seconds_per_student_mean"] == pytest.approx(2.0)
    assert kd["images_per_s_mean"] == pytest.approx(100.0) and kd["cost_vs_kd_raw"] == pytest.approx(1.0)
    assert table.set_index("method").loc["mlkd", "cost_vs_kd_raw"] == pytest.approx(3.0)
    assert (table["ts_fit_split"] == "test-2fold").all()


def test_gain_over_ce_unpaired_when_seeds_differ():
    ci, pairing = dg.gain_over_ce({10: 70.0, 11: 72.0}, {0: 60.0, 1: 62.0})
    assert pairing == dg.UNPAIRED and ci.mean == pytest.approx(10.0) and ci.n == 2


def test_cross_fitted_scaling_scores_each_half_with_the_other_halfs_temperature():
    rng = np.random.default_rng(1)
    z = rng.normal(scale=3.0, size=(2_000, 4))
    y = rng.integers(0, 4, size=2_000)
    even, odd = np.arange(2_000) % 2 == 0, np.arange(2_000) % 2 == 1
    t_even, t_odd = dg.fit_temperature(z[even], y[even]), dg.fit_temperature(z[odd], y[odd])
    scaled = z.copy()
    scaled[even], scaled[odd] = z[even] / t_odd, z[odd] / t_even
    cal = dg.calibration(z, y)
    assert cal["ece_ts"] == pytest.approx(dg.ece(scaled, y)) and cal["ts_temperature"] == pytest.approx((t_even + t_odd) / 2)
