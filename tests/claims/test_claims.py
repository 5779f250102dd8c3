"""Claims audit: per-sample statistics against their formulas, the verdict rule, and for each claim synthetic
logits where it is known to hold and known to fail (the verdict must flip), plus "not applicable" rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special
from scipy import stats as sps

from lskd.analysis.stats import BootstrapCI, bootstrap_ci, mean_of, paired_bootstrap_ci
from lskd.claims import CLAIMS, AuditConfig, audit_claims
from lskd.claims.data import AuditData, StudentRun, TeacherRun, run_claims_table, targets_digest
from lskd.claims.effective_temp import grid_step
from lskd.claims.relations import kendall_margin
from lskd.claims.sample_stats import (
    claim_sample_stats,
    effective_temperature_gap,
    residual_spread,
    teacher_sample_stats,
    topk_overlap,
)
from lskd.claims.verdicts import INCONCLUSIVE, NOT_APPLICABLE, NOT_SUPPORTED, SUPPORTED, verdict

claim_logit_shift = CLAIMS["logit_shift"].check
claim_variance_match = CLAIMS["variance_match"].check
claim_relations = CLAIMS["relations"].check
claim_authentic_eval = CLAIMS["authentic_eval"].check
claim_teacher_size = CLAIMS["teacher_size"].check
claim_effective_temp = CLAIMS["effective_temp"].check

N, K = 300, 10
CFG = AuditConfig(n_boot=2000, n_boot_samples=400)
PAIR = ("synthetic", "big_teacher", "small_student")


# ------------------------------------------------------------------ synthetic runs
def _teacher(seed: int = 0, spread: float = 0.5, n: int = N) -> np.ndarray:
    """Teacher logits with per-sample scale exp(N(0, spread)) and a per-sample mean offset."""
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0.0, spread, size=(n, 1)))
    return 3.0 * scale * rng.normal(size=(n, K)) + rng.normal(0.0, 2.0, size=(n, 1))


def _targets(v: np.ndarray, seed: int = 0, flip: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    y = v.argmax(1)
    wrong = rng.random(len(y)) < flip
    y[wrong] = rng.integers(0, K, size=wrong.sum())
    return y


def _student(v: np.ndarray, y: np.ndarray, z: np.ndarray, *, method: str = "kd", transform: str, seed: int,
             temperature: float | None = 2.0, selected: bool = True, kd_weight: float = 1.0) -> StudentRun:
    key = {"dataset": PAIR[0], "teacher": PAIR[1], "student": PAIR[2], "method": method, "transform": transform,
           "temperature": temperature, "kd_weight": kd_weight, "seed": seed,
           "effective_temperature": temperature or 1.0, "selected": selected, "run_dir": f"{method}/{transform}/{seed}"}
    return StudentRun(key, claim_sample_stats(z, v, y))


def _shift_student(v: np.ndarray, seed: int, noise: float = 0.1) -> np.ndarray:
    """z = v + c(x) + small noise: what a shared temperature drives a student to (Eq. 11)."""
    rng = np.random.default_rng(1000 + seed)
    sd = v.std(1, ddof=1, keepdims=True)
    return v + rng.normal(0, 3, size=(len(v), 1)) + noise * sd * rng.normal(size=v.shape)


def _scaled_student(v: np.ndarray, seed: int, a: float = 0.3, noise: float = 0.1) -> np.ndarray:
    """z = a·v + b + small noise: same relations as the teacher, its own scale."""
    rng = np.random.default_rng(2000 + seed)
    sd = v.std(1, ddof=1, keepdims=True)
    return a * v - 1.0 + a * noise * sd * rng.normal(size=v.shape)


def _raw_vs_ls(raw_fn, ls_fn, seeds=(0, 1, 2)) -> AuditData:
    v = _teacher()
    y = _targets(v)
    students = []
    for s in seeds:
        students.append(_student(v, y, raw_fn(v, s), transform="none", seed=s))
        students.append(_student(v, y, ls_fn(v, s), transform="zscore", seed=s))
    return AuditData(students=students)


def _only(rows):
    assert len(rows) == 1, rows
    return rows[0]


# ------------------------------------------------------------------ per-sample statistics and the rule
def test_sample_statistics_match_their_formulas():
    v = _teacher(n=40)
    y = _targets(v)
    rng = np.random.default_rng(5)
    z = 0.5 * v + 2.0 + rng.normal(size=v.shape)
    df = claim_sample_stats(z, v, y)
    np.testing.assert_allclose(df["residual_spread"], (z - v).std(1, ddof=1) / v.std(1, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(df["abs_log_std_ratio"], np.abs(np.log(z.std(1, ddof=1) / v.std(1, ddof=1))), rtol=1e-5)
    p, q = special.softmax(v, 1), special.softmax(z, 1)
    np.testing.assert_allclose(df["kl_t1"], (p * np.log(p / q)).sum(1), rtol=1e-4, atol=1e-6)
    def zs(x):
        return (x - x.mean(1, keepdims=True)) / (x.std(1, ddof=1, keepdims=True) + 1e-7)
    p, q = special.softmax(zs(v), 1), special.softmax(zs(z), 1)
    np.testing.assert_allclose(df["kl_t1_zscore"], (p * np.log(p / q)).sum(1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(df["kendall"], [sps.kendalltau(z[i], v[i]).statistic for i in range(40)], atol=1e-6)
    expected = [len(set(np.argsort(-z[i])[:5]) & set(np.argsort(-v[i])[:5])) / 5 for i in range(40)]
    np.testing.assert_allclose(df["topk_overlap"], expected)
    assert df.attrs == {"top_k": 5, "num_classes": K}
    # an affine student: residual |a - 1|, rank agreement 1, z-scored KL 0
    aff = claim_sample_stats(0.5 * v + 3, v, y)
    np.testing.assert_allclose(aff["residual_spread"], 0.5, rtol=1e-5)
    np.testing.assert_allclose(aff["abs_log_std_ratio"], math.log(2), rtol=1e-5)
    np.testing.assert_allclose(aff[["kendall", "spearman", "topk_overlap"]], 1.0, atol=1e-6)
    np.testing.assert_allclose(aff["kl_t1_zscore"], 0.0, atol=1e-6)
    np.testing.assert_allclose(residual_spread(v + 7.0, v), 0.0, atol=1e-6)
    assert topk_overlap(np.array([[3.0, 2, 1, 0]]), np.array([[0.0, 1, 2, 3]]), 2)[0] == 0.0
    t = teacher_sample_stats(v)
    np.testing.assert_allclose(t["teacher_abs_mean"], np.abs(v.mean(1)), rtol=1e-5)
    assert effective_temperature_gap(v, 2.0) < 1e-6  # z-score IS softmax at the per-sample temperature σ(v)·τ


@pytest.mark.parametrize("lo,hi,threshold,direction,expected", [
    (0.1, 0.3, 0.0, "above", SUPPORTED), (-0.3, -0.1, 0.0, "above", NOT_SUPPORTED),
    (-0.1, 0.3, 0.0, "above", INCONCLUSIVE), (-0.3, -0.1, 0.0, "below", SUPPORTED),
    (0.1, 0.3, 0.0, "below", NOT_SUPPORTED), (2.5, 3.0, 2.0, "above", SUPPORTED), (1.5, 1.9, 2.0, "above", NOT_SUPPORTED),
])
def test_verdict_rule(lo, hi, threshold, direction, expected):
    assert verdict(BootstrapCI((lo + hi) / 2, lo, hi, 4, False), threshold, direction) == expected
    assert verdict(BootstrapCI(lo, lo, lo, 1, True), threshold, direction) == INCONCLUSIVE


def test_one_bootstrap_is_scipys_percentile_bootstrap():
    x = np.random.default_rng(3).normal(1.0, 2.0, size=200)
    ci = bootstrap_ci(mean_of(x), len(x), n_boot=4000, seed=1)
    ref = sps.bootstrap((x,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(1))
    assert ci.mean == pytest.approx(x.mean()) and not ci.degenerate
    assert ci.lo == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert ci.hi == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    assert paired_bootstrap_ci(x, n_boot=4000, seed=1)[1:] == pytest.approx(tuple(ci)[1:])  # the same function
    assert bootstrap_ci(mean_of(x[:1]), 1).degenerate
    undefined = bootstrap_ci(lambda idx: np.full(len(idx), np.nan), len(x), n_boot=100)
    assert undefined.degenerate and math.isnan(undefined.lo)  # no finite resample: no interval


# ------------------------------------------------------------------ claims 1-3: raw vs z-score students
@pytest.mark.parametrize("check", [claim_logit_shift, claim_variance_match])
def test_shift_and_variance_claims_flip(check):
    holds = _only(check(_raw_vs_ls(_shift_student, _scaled_student), CFG))
    fails = _only(check(_raw_vs_ls(_scaled_student, _shift_student), CFG))
    assert holds.verdict == SUPPORTED and holds.lo > 0 and holds.n == 3 and holds.unit == "seeds"
    assert fails.verdict == NOT_SUPPORTED and fails.hi < 0
    assert "paired bootstrap 95% CI over 3 seeds" in holds.test
    assert holds.reference < holds.value and f"{holds.reference:.3f}" in holds.evidence


def test_relations_claim_flips_and_uses_the_one_pair_margin():
    def noisy(noise):
        return lambda v, s: _scaled_student(v, s, a=0.5, noise=noise)

    holds = _only(claim_relations(_raw_vs_ls(noisy(0.6), noisy(0.05)), CFG))
    fails = _only(claim_relations(_raw_vs_ls(noisy(0.05), noisy(0.6)), CFG))
    assert holds.verdict == SUPPORTED and fails.verdict == NOT_SUPPORTED
    assert holds.threshold == pytest.approx(-kendall_margin(K)) == pytest.approx(-4 / 90)
    assert "Spearman raw" in holds.evidence and "top-k overlap" in holds.evidence
    same = _only(claim_relations(_raw_vs_ls(noisy(0.3), lambda v, s: noisy(0.3)(v, s + 50)), CFG))
    assert same.verdict == SUPPORTED  # equally good rankings: non-inferior within one swapped pair


def test_one_seed_falls_back_to_a_per_sample_bootstrap():
    row = _only(claim_logit_shift(_raw_vs_ls(_shift_student, _scaled_student, seeds=(0,)), CFG))
    assert row.verdict == SUPPORTED and row.n == N and row.unit == "test samples"
    assert row.test.startswith("one seed:") and "seed-to-seed variation is not captured" in row.test


def test_missing_zscore_runs_are_not_applicable():
    data = _raw_vs_ls(_shift_student, _scaled_student)
    data.students = [s for s in data.students if s.key["transform"] == "none"]
    for check in (claim_logit_shift, claim_variance_match, claim_relations):
        row = _only(check(data, CFG))
        assert row.verdict == NOT_APPLICABLE and row.evidence == ("not applicable: no healthy z-score KD student "
                                                                     "(unhealthy runs are left out of the audit: see Run health)")


# ------------------------------------------------------------------ claim 4: authentic evaluation
def _eval_population(holds: bool, seeds=(0, 1, 2)) -> AuditData:
    """Students of varied quality. holds: accuracy follows the relations (z-scored KL) while the scale, which the
    raw KL sees, is anti-correlated with quality. fails: the better students scramble the non-top classes (high
    z-scored KL) while matching a sharp teacher's top class (low raw KL)."""
    v = 2.5 * _teacher(spread=0.0)
    y = v.argmax(1)
    students = []
    for s in seeds:
        rng = np.random.default_rng(10 + s)
        for j, q in enumerate(np.linspace(0.0, 1.0, 6)):
            if holds:
                z = (0.05 + 2.5 * (1 - q)) * (v + (0.2 + 3.0 * q) * v.std() * rng.normal(size=v.shape))
            else:
                z = v.copy()
                top = v.argmax(1)
                others = rng.normal(size=v.shape) * v.std() * 2 * (1 - q)
                others[np.arange(len(v)), top] = 0.0
                z = v.mean(1, keepdims=True) + others
                keep = rng.random(len(v)) < 0.5 + 0.5 * (1 - q)
                z[np.arange(len(v)), top] = np.where(keep, v.max(1) + 5, z[np.arange(len(v)), top])
            students.append(_student(v, y, z, transform="none" if j % 2 else "zscore", seed=s,
                                     temperature=float(j + 1), selected=j < 2))
    return AuditData(students=students)


def test_authentic_evaluation_claim_flips():
    holds = _only(claim_authentic_eval(_eval_population(True), CFG))
    fails = _only(claim_authentic_eval(_eval_population(False), CFG))
    assert holds.verdict == SUPPORTED and holds.value > holds.reference and holds.unit == "seeds"
    assert fails.verdict == NOT_SUPPORTED and fails.value < fails.reference
    one = _only(claim_authentic_eval(_eval_population(True, seeds=(0,)), CFG))
    assert one.unit == "students" and one.test.startswith("one seed") and one.verdict in (SUPPORTED, INCONCLUSIVE)


def test_authentic_evaluation_needs_three_students():
    data = _eval_population(True)
    data.students = data.students[:2]
    assert _only(claim_authentic_eval(data, CFG)).verdict == NOT_APPLICABLE


# ------------------------------------------------------------------ claim 5: teacher size
def _teachers(sigmas: list[float], means: list[float], spread: float = 0.3) -> AuditData:
    rng = np.random.default_rng(0)
    y = rng.integers(0, K, size=N)
    teachers = []
    for i, (sd, m) in enumerate(zip(sigmas, means)):
        v = sd * np.exp(rng.normal(0, spread, size=(N, 1))) * rng.normal(size=(N, K)) + m + rng.normal(0, 0.3, (N, 1))
        teachers.append(TeacherRun("synthetic", f"t{i}", f"net{i}", float(10 ** (5 + i)), 70.0 + i,
                                   teacher_sample_stats(v), targets_digest(y)))
    return AuditData(teachers=teachers)


def test_teacher_size_claim_flips_and_needs_two_teachers():
    holds = _only(claim_teacher_size(_teachers([6.0, 4.0, 2.5], [3.0, 1.5, 0.5]), CFG))
    fails = _only(claim_teacher_size(_teachers([2.5, 4.0, 6.0], [0.5, 1.5, 3.0]), CFG))
    mixed = _only(claim_teacher_size(_teachers([6.0, 4.0, 2.5], [0.5, 1.5, 3.0]), CFG))
    assert holds.verdict == SUPPORTED and holds.hi < 0 and holds.direction == "below"
    assert fails.verdict == NOT_SUPPORTED and fails.lo > 0
    assert mixed.verdict == NOT_SUPPORTED  # smaller std but a mean further from 0: the claim is about both
    assert "3 teachers, one run each" in holds.test and "t0 (100,000 params" in holds.evidence
    one = _only(claim_teacher_size(_teachers([4.0], [1.0]), CFG))
    assert one.verdict == NOT_APPLICABLE and "the config has one teacher (t0)" in one.evidence


# ------------------------------------------------------------------ claim 6: effective temperature
def _temperature_data(spread: float, temperatures=(1.0, 2.0, 4.0)) -> AuditData:
    v = _teacher(spread=spread)
    y = _targets(v)
    students = [_student(v, y, _scaled_student(v, 0), transform=t, seed=0, temperature=temp, selected=temp == 2.0)
                for t in ("none", "zscore") for temp in temperatures]
    return AuditData(students=students)


def test_effective_temperature_claim_flips_and_needs_two_temperatures():
    assert grid_step([1, 2, 4]) == 2.0 and grid_step([2, 3, 4]) == pytest.approx(4 / 3) and math.isnan(grid_step([2]))
    holds = _only(claim_effective_temp(_temperature_data(spread=1.2), CFG))
    fails = _only(claim_effective_temp(_temperature_data(spread=0.05), CFG))
    assert holds.verdict == SUPPORTED and holds.lo > 2.0 and holds.threshold == 2.0
    assert fails.verdict == NOT_SUPPORTED and fails.hi < 2.0
    assert "temperatures 1, 2, 4" in holds.evidence and "z-score students' σ(z)" in holds.evidence
    single = _only(claim_effective_temp(_temperature_data(spread=1.2, temperatures=(4.0,)), CFG))
    assert single.verdict == NOT_APPLICABLE and "1 fixed temperature" in single.evidence


# ------------------------------------------------------------------ the audit
def test_audit_has_a_row_for_every_claim_even_without_data():
    empty = audit_claims(AuditData(), CFG)
    assert list(empty["claim"]) == list(CLAIMS) and set(empty["verdict"]) == {NOT_APPLICABLE}
    data = _raw_vs_ls(_shift_student, _scaled_student)
    table = audit_claims(data, CFG)
    assert list(dict.fromkeys(table["claim"])) == list(CLAIMS)
    assert table.set_index("claim").loc["teacher_size", "verdict"] == NOT_APPLICABLE
    per_run = run_claims_table(data)
    assert len(per_run) == 6 and per_run["selected"].all()
    assert per_run.groupby("transform")["residual_spread"].mean().idxmin() == "none"
    assert isinstance(per_run, pd.DataFrame) and (per_run["top_k"] == 5).all()
