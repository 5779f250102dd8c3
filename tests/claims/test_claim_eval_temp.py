"""Claims 4 (authentic evaluation) and 6 (effective temperature) on synthetic runs where each holds and where it
fails, with three seeds (tested) and one seed (descriptive)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from lskd.claims import CLAIMS, AuditConfig
from lskd.claims.authentic_eval import auc_correct, run_aucs
from lskd.claims.data import AuditData, StudentRun
from lskd.claims.effective_temp import log_temp_ratio
from lskd.claims.sample_stats import claim_sample_stats
from lskd.claims.verdicts import DESCRIPTIVE, NOT_APPLICABLE, NOT_SUPPORTED, SUPPORTED, holm_verdicts

N, K = 400, 10
CFG = AuditConfig(n_boot_samples=50)
PAIR = ("synthetic", "big_teacher", "small_student")
SEEDS = (0, 1, 2)


def _teacher(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 3.0 * np.exp(rng.normal(0.0, 0.3, (N, 1))) * rng.normal(size=(N, K)) + rng.normal(0.0, 2.0, (N, 1))


def _run(v: np.ndarray, z: np.ndarray, y: np.ndarray, *, transform: str, seed: int, method: str = "kd",
         tau: float = 2.0, selected: bool = True) -> StudentRun:
    key = {"dataset": PAIR[0], "teacher": PAIR[1], "student": PAIR[2], "method": method, "transform": transform,
           "temperature": tau, "kd_weight": 1.0, "seed": seed, "effective_temperature": tau, "selected": selected,
           "run_dir": f"{method}/{transform}/{seed}"}
    return StudentRun(key, claim_sample_stats(z, v, y))


def _holding_student(v: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Right and wrong predictions differ in relations (the student scrambles the classes where it is wrong), while
    a per-sample scale unrelated to correctness, which only the raw KL sees, blurs the raw KL."""
    rng = np.random.default_rng(100 + seed)
    y, rows = v.argmax(1), np.arange(N)
    wrong = rng.random(N) < 0.3
    sd = v.std(1, keepdims=True)
    rel = v + 0.1 * sd * rng.normal(size=v.shape)
    rel[wrong] = v[wrong] + 1.5 * sd[wrong] * rng.normal(size=(int(wrong.sum()), K))
    rel[rows, y] = np.where(wrong, rel.min(1) - 1.0, rel.max(1) + 1.0)
    return np.exp(rng.normal(0.0, 1.5, (N, 1))) * rel + rng.normal(0.0, 2.0, (N, 1)), y


def _failing_student(v: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The student keeps the teacher's relations everywhere and is wrong where the label disagrees with the teacher;
    there it is unconfident (small scale), which only the raw KL sees: the raw KL separates, the z-scored does not."""
    rng = np.random.default_rng(200 + seed)
    top, rows = v.argmax(1), np.arange(N)
    wrong = rng.random(N) < 0.3
    y = top.copy()
    y[wrong] = (top[wrong] + rng.integers(1, K, int(wrong.sum()))) % K
    rel = v + 0.3 * v.std(1, keepdims=True) * rng.normal(size=v.shape)
    rel[rows, top] = rel.max(1) + 1.0
    return np.where(wrong, 0.2, 1.0)[:, None] * rel, y


def _eval_data(make, seeds=SEEDS, transforms=("none", "zscore")) -> AuditData:
    v = _teacher()
    runs = []
    for s in seeds:
        for i, t in enumerate(transforms):
            z, y = make(v, 10 * s + i)
            runs.append(_run(v, z, y, transform=t, seed=s))
    # a student of another setting (not reported) that would flip the verdict if it were mixed in
    z, y = _failing_student(v, 99) if make is _holding_student else _holding_student(v, 99)
    runs.append(_run(v, z, y, transform="zscore", seed=0, selected=False))
    return AuditData(students=runs)


def _only(rows):
    assert len(rows) == 1, rows
    return rows[0]


def _audited(row):
    """The row's verdict after the report's Holm step (one row: Holm changes nothing but runs the real path)."""
    import pandas as pd

    return holm_verdicts(pd.DataFrame([row.as_row()])).iloc[0]["verdict"]


# ------------------------------------------------------------------ claim 4: authentic evaluation
def test_auc_is_the_mann_whitney_statistic():
    rng = np.random.default_rng(0)
    score = np.round(rng.normal(size=200), 1)  # ties
    correct = rng.random(200) < 0.6
    u = sps.mannwhitneyu(score[correct], score[~correct]).statistic
    assert auc_correct(score, correct) == pytest.approx(u / (correct.sum() * (~correct).sum()))
    assert auc_correct(np.arange(4.0), np.array([False, False, True, True])) == 1.0
    assert np.isnan(auc_correct(score, np.ones(200, bool)))
    assert auc_correct(np.array([1.0, np.nan, 0.0]), np.array([True, False, False])) == 1.0


def test_authentic_evaluation_holds():
    row = _only(CLAIMS["authentic_eval"].check(_eval_data(_holding_student), CFG))
    assert row.method == "kd" and row.n == 3 and row.unit == "seeds" and row.threshold == 0.0
    assert row.value > row.reference and row.lo > 0
    assert row.verdict == SUPPORTED and _audited(row) == SUPPORTED
    assert "raw-logit students +" in row.evidence and "z-score students +" in row.evidence


def test_authentic_evaluation_fails():
    row = _only(CLAIMS["authentic_eval"].check(_eval_data(_failing_student), CFG))
    assert row.value < row.reference and row.hi < 0
    assert row.verdict == NOT_SUPPORTED and _audited(row) == NOT_SUPPORTED


def test_authentic_evaluation_is_per_run_and_averages_the_two_arms():
    data = _eval_data(_holding_student)
    row = _only(CLAIMS["authentic_eval"].check(data, CFG))
    per_seed = {}
    for s in data.students:
        if s.key["selected"]:
            a_raw, a_z = run_aucs(s.samples)
            per_seed.setdefault(s.key["seed"], []).append(a_z - a_raw)
    assert row.estimate == pytest.approx(np.mean([np.mean(d) for d in per_seed.values()]))


def test_authentic_evaluation_one_seed_is_descriptive_and_needs_both_arms():
    one = _only(CLAIMS["authentic_eval"].check(_eval_data(_holding_student, seeds=(0,)), CFG))
    assert one.verdict == DESCRIPTIVE and one.n == 1 and _audited(one) == DESCRIPTIVE
    raw_only = _only(CLAIMS["authentic_eval"].check(_eval_data(_holding_student, transforms=("none",)), CFG))
    assert raw_only.verdict == NOT_APPLICABLE and "z-score" in raw_only.evidence


# ------------------------------------------------------------------ claim 6: effective temperature
def _temp_data(scale: float, seeds=SEEDS, with_ls: bool = True) -> AuditData:
    """z-score students z = a·v + b (a ≈ ``scale``, per sample ±10%) and raw students with the teacher's scale."""
    v = _teacher()
    y = v.argmax(1)
    runs = []
    for s in seeds:
        rng = np.random.default_rng(300 + s)
        a = scale * np.exp(rng.normal(0.05 * s, 0.1, (N, 1)))
        if with_ls:
            runs.append(_run(v, a * v + rng.normal(0.0, 1.0, (N, 1)), y, transform="zscore", seed=s))
        runs.append(_run(v, v + rng.normal(0.0, 1.0, (N, 1)) + 0.05 * rng.normal(size=v.shape), y,
                         transform="none", seed=s))
    return AuditData(students=runs)


def test_effective_temperature_holds_when_the_teacher_is_hotter():
    row = _only(CLAIMS["effective_temp"].check(_temp_data(0.3), CFG))
    assert row.threshold == 0.0 and row.direction == "above" and row.n == 3 and row.unit == "seeds"
    assert row.estimate == pytest.approx(-np.log(0.3) - 0.05, abs=0.05) and row.lo > 0
    assert row.value > row.reference  # teacher's effective temperature above the student's
    assert row.verdict == SUPPORTED and _audited(row) == SUPPORTED
    assert "raw-logit students' log(σ(v)/σ(z))" in row.evidence and "grid" not in row.evidence


def test_effective_temperature_fails_when_the_student_is_hotter():
    row = _only(CLAIMS["effective_temp"].check(_temp_data(2.5), CFG))
    assert row.hi < 0 and row.value < row.reference
    assert row.verdict == NOT_SUPPORTED and _audited(row) == NOT_SUPPORTED


def test_effective_temperature_one_seed_is_descriptive_and_needs_ls_students():
    one = _only(CLAIMS["effective_temp"].check(_temp_data(0.3, seeds=(0,)), CFG))
    assert one.verdict == DESCRIPTIVE and one.n == 1
    none = _only(CLAIMS["effective_temp"].check(_temp_data(0.3, with_ls=False), CFG))
    assert none.verdict == NOT_APPLICABLE and "z-score" in none.evidence


def test_log_temp_ratio():
    out = log_temp_ratio(np.array([2.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0]))
    assert out[:2] == pytest.approx([np.log(2.0), 0.0]) and np.isnan(out[2])
