"""Claims audit: does the paper's explanation of *why* logit standardization helps hold on this run's data?

Sun et al., *Logit Standardization in Knowledge Distillation* (CVPR 2024), argue through the mechanism, not only
through accuracy. Each claim below is reduced to a statistic, a comparison and a verdict with its uncertainty
(rule: :mod:`lskd.analysis.claim_verdicts`); per-sample quantities are those of :mod:`lskd.analysis.claim_stats`.
"raw" students use transform ``none``, "LS" students ``zscore``; both at the setting the headline reports
(:func:`lskd.analysis.selected_runs`), paired by seed.

==================  ================================================================================================
claim               statistic → verdict
==================  ================================================================================================
logit_shift         Eq. 11: with a shared temperature the optimum is ``z = v + c(x)``. Per run, the mean over test
                    samples of ``σ(z − v)/σ(v)``; ``θ`` = LS − raw, paired by seed; predicted ``θ > 0`` (raw
                    students are closer to a pure per-sample shift of the teacher)
variance_match      Eq. 12: KD drives ``σ(z)/σ(v)`` to 1, z-score leaves it free. Mean of ``|log σ(z)/σ(v)|``;
                    ``θ`` = LS − raw, predicted ``θ > 0``
relations           LS students keep the teacher's class ranking at least as well: mean Kendall tau-b of ``z`` with
                    ``v``; ``θ`` = LS − raw, predicted ``θ > −δ`` with the non-inferiority margin
                    ``δ = 4 / (K(K − 1))``, the change of tau-b from swapping one class pair per sample
authentic_eval      §4.3.1 (toy case): across all students of a pair, the z-scored KL ranks them by accuracy better
                    than the shared-temperature KL. Per seed, Spearman ρ(−KL, accuracy) among that seed's
                    students with z-scored and with raw KL (both at T = 1); ``θ`` = ρ_z − ρ_raw, predicted ``θ > 0``
teacher_size        Fig. 5a: larger teachers have smaller logit std and a mean closer to 0. Across the dataset's
                    teachers, Spearman ρ(parameters, mean σ(v)) and ρ(parameters, mean |m(v)|); ``θ`` = the larger
                    of the two, predicted ``θ < 0``; needs two or more teachers
effective_temp      z-score is a per-sample temperature ``σ(v)·τ``; it varies across samples by more than one step
                    of the grid's temperatures: ``θ`` = Q3/Q1 of σ(v) over test samples, predicted
                    ``θ > min ratio of adjacent grid temperatures``; needs two or more fixed temperatures
==================  ================================================================================================

Intervals: percentile bootstrap 95% over seeds when a comparison has two or more paired seeds; with one seed,
over test samples (claims 1–3, paired per sample) or students (claim 4), which captures sample-to-sample noise
but not seed-to-seed variation (the ``test`` column says so). Claims 5 and 6 have one run per teacher, so their
interval is over test samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lskd.analysis.claim_data import (
    AuditData,
    StudentRun,
    load_audit_data,
    run_claims_table,
)
from lskd.analysis.claim_verdicts import (
    CLAIM_COLUMNS,
    NOT_APPLICABLE,
    VERDICTS,
    ClaimResult,
    Direction,
    fmt_interval,
    mean_of,
    percentile_bootstrap,
    verdict,
)
from lskd.analysis.logit_stats import rowwise_spearman
from lskd.analysis.stats import BootstrapCI, paired_bootstrap_ci

RAW, LS = "none", "zscore"


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: ``id`` (stable, used in file names), ``title``, where the paper makes it, and the
    statement being tested in one sentence."""

    id: str
    title: str
    paper: str
    statement: str


CLAIMS: dict[str, Claim] = {c.id: c for c in (
    Claim("logit_shift", "Logit shift", "Eq. 11",
          "With a shared temperature, a distilled student's logits approach the teacher's up to a per-sample "
          "constant shift; a z-scored student is not held to that."),
    Claim("variance_match", "Variance match", "Eq. 12",
          "Vanilla KD pushes the student/teacher logit std ratio σ(z)/σ(v) toward 1; with z-score the ratio is free."),
    Claim("relations", "Relations preserved", "Sec. 4",
          "Z-scored students keep the teacher's ranking of the classes at least as well as raw-logit students."),
    Claim("authentic_eval", "Authentic evaluation", "Sec. 4.3.1",
          "The KL under a shared temperature can disagree with accuracy across students; the z-scored KL agrees "
          "better."),
    Claim("teacher_size", "Teacher size", "Fig. 5a",
          "Larger teachers produce logits with a smaller standard deviation and a mean closer to 0."),
    Claim("effective_temp", "Effective temperature", "Sec. 4, Algorithm 1",
          "Z-score is a per-sample temperature σ(v)·τ, and these temperatures vary across samples by more than the "
          "grid's fixed temperatures do from one step to the next."),
)}


@dataclass(frozen=True)
class AuditConfig:
    """Bootstrap settings: resamples over seeds (``n_boot``, cheap) and over samples/students
    (``n_boot_samples``, each resample touches every test sample), and the generator seed."""

    n_boot: int = 10_000
    n_boot_samples: int = 2_000
    seed: int = 0


# ---------------------------------------------------------------------------------------------- helpers
def _row(claim: str, scope: dict[str, str], *, statistic: str, comparison: str, reference: float, value: float,
         ci: BootstrapCI, threshold: float, direction: Direction, unit: str, test: str, evidence: str) -> ClaimResult:
    c = CLAIMS[claim]
    return ClaimResult(claim=c.id, title=c.title, paper=c.paper, dataset=scope.get("dataset", ""),
                       teacher=scope.get("teacher", ""), student=scope.get("student", ""),
                       method=scope.get("method", ""), statistic=statistic, comparison=comparison,
                       reference=reference, value=value, estimate=ci.mean, lo=ci.lo, hi=ci.hi, threshold=threshold,
                       direction=direction, n=ci.n, unit=unit, test=test, verdict=verdict(ci, threshold, direction),
                       evidence=evidence)


def not_applicable(claim: str, scope: dict[str, str], why: str, statistic: str = "") -> ClaimResult:
    """A row for a claim the config cannot test, saying why."""
    c = CLAIMS[claim]
    nan = math.nan
    return ClaimResult(claim=c.id, title=c.title, paper=c.paper, dataset=scope.get("dataset", ""),
                       teacher=scope.get("teacher", ""), student=scope.get("student", ""),
                       method=scope.get("method", ""), statistic=statistic, comparison="", reference=nan, value=nan,
                       estimate=nan, lo=nan, hi=nan, threshold=nan, direction="", n=0, unit="", test="",
                       verdict=NOT_APPLICABLE, evidence=f"not applicable: {why}")


def _pair_scope(pair: tuple[str, str, str], method: str = "") -> dict[str, str]:
    return {"dataset": pair[0], "teacher": pair[1], "student": pair[2], "method": method}


def _nanmean(x: pd.Series | np.ndarray) -> float:
    arr = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else math.nan


def _seed_test(n: int, n_boot: int) -> str:
    return f"paired bootstrap 95% CI over {n} seeds ({n_boot:,} resamples of the per-seed differences)"


def _sample_test(n: int, n_boot: int, what: str = "test samples") -> str:
    return (f"one seed: paired bootstrap 95% CI over the {n:,} {what} ({n_boot:,} resamples); sample-to-sample "
            "noise only, seed-to-seed variation is not captured")


# ---------------------------------------------------------------------------------------------- claims 1-3
@dataclass(frozen=True)
class _PairedSpec:
    claim: str
    column: str
    statistic: str
    digits: int = 3


def _by_seed(runs: Iterable[StudentRun]) -> dict[int, StudentRun]:
    return {int(r.key["seed"]): r for r in runs}


def _paired_transform(spec: _PairedSpec, raw: list[StudentRun], ls: list[StudentRun], scope: dict[str, str],
                      cfg: AuditConfig, threshold: float, direction: Direction, extra: str = "") -> ClaimResult:
    """LS − raw of ``spec.column`` (per-run mean over samples), paired by seed; one seed → paired per sample."""
    r, z = _by_seed(raw), _by_seed(ls)
    seeds = sorted(set(r) & set(z))
    if not seeds:
        return not_applicable(spec.claim, scope, "the raw and z-score students share no seed", spec.statistic)
    ref = [_nanmean(r[s].samples[spec.column]) for s in seeds]
    val = [_nanmean(z[s].samples[spec.column]) for s in seeds]
    if len(seeds) >= 2:
        ci = paired_bootstrap_ci(np.subtract(val, ref), n_boot=cfg.n_boot, seed=cfg.seed)
        unit, test = "seeds", _seed_test(len(seeds), cfg.n_boot)
    else:
        d = z[seeds[0]].samples[spec.column].to_numpy(np.float64) - r[seeds[0]].samples[spec.column].to_numpy(np.float64)
        d = d[np.isfinite(d)]
        ci = percentile_bootstrap(mean_of(d), len(d), n_boot=cfg.n_boot_samples, seed=cfg.seed)
        unit, test = "test samples", _sample_test(len(d), cfg.n_boot_samples)
    m_ref, m_val, dg = float(np.mean(ref)), float(np.mean(val)), spec.digits
    evidence = (f"mean {spec.statistic}: raw {m_ref:.{dg}f}, z-score {m_val:.{dg}f}; z-score − raw = "
                f"{fmt_interval(ci, dg)} (n={ci.n} {unit}){extra}.")
    return _row(spec.claim, scope, statistic=spec.statistic, comparison="z-score − raw students, paired by seed",
                reference=m_ref, value=m_val, ci=ci, threshold=threshold, direction=direction, unit=unit, test=test,
                evidence=evidence)


def _method_groups(data: AuditData) -> list[tuple[tuple[str, str, str], str, list[StudentRun], list[StudentRun]]]:
    out = []
    for pair in data.pairs():
        runs = [s for s in data.of_pair(pair) if s.key["selected"]]
        for method in sorted({str(s.key["method"]) for s in runs}, key=lambda m: (m != "kd", m)):
            of = [s for s in runs if s.key["method"] == method]
            out.append((pair, method, [s for s in of if s.key["transform"] == RAW],
                        [s for s in of if s.key["transform"] == LS]))
    return out


def _transform_claim(data: AuditData, cfg: AuditConfig, spec: _PairedSpec, direction: Direction,
                     margin: Any = None) -> list[ClaimResult]:
    rows = []
    for pair, method, raw, ls in _method_groups(data):
        scope = _pair_scope(pair, method)
        if not raw or not ls:
            missing = "raw-logit" if not raw else "z-score"
            rows.append(not_applicable(spec.claim, scope, f"no healthy {missing} {method.upper()} student (collapsed "
                                       "and diverged runs are left out of the audit)",
                                       spec.statistic))
            continue
        threshold, extra = 0.0, ""
        if margin is not None:
            threshold, extra = margin(raw[0].samples)
        rows.append(_paired_transform(spec, raw, ls, scope, cfg, threshold, direction, extra))
    if not rows:
        rows.append(not_applicable(spec.claim, {}, "no distilled student in this results folder", spec.statistic))
    return rows


def claim_logit_shift(data: AuditData, cfg: AuditConfig = AuditConfig()) -> list[ClaimResult]:
    """Claim 1 (Eq. 11): raw students are closer to a per-sample shift of the teacher (module docstring)."""
    spec = _PairedSpec("logit_shift", "residual_spread", "σ(z − v)/σ(v) (0 = a pure per-sample shift)")
    return _transform_claim(data, cfg, spec, "above")


def claim_variance_match(data: AuditData, cfg: AuditConfig = AuditConfig()) -> list[ClaimResult]:
    """Claim 2 (Eq. 12): raw students' std ratio is closer to 1 than z-score students'."""
    spec = _PairedSpec("variance_match", "abs_log_std_ratio", "|log σ(z)/σ(v)| (0 = equal std)")
    return _transform_claim(data, cfg, spec, "above")


def kendall_margin(num_classes: int) -> float:
    """``4 / (K(K − 1))``: how much Kendall's tau-b (no ties) drops when one of the ``K(K−1)/2`` class pairs of a
    sample is swapped; the non-inferiority margin of claim 3."""
    return 4.0 / (num_classes * (num_classes - 1))


def claim_relations(data: AuditData, cfg: AuditConfig = AuditConfig()) -> list[ClaimResult]:
    """Claim 3: z-score students rank the classes at least as well as raw students (Kendall, non-inferiority);
    Spearman and top-k overlap differences are quoted in the evidence."""
    spec = _PairedSpec("relations", "kendall", "Kendall tau-b of z with v")

    def margin(samples: pd.DataFrame) -> tuple[float, str]:
        k = int(samples.attrs["num_classes"])
        return -kendall_margin(k), f"; margin δ = 4/(K(K−1)) = {kendall_margin(k):.4f} (one swapped class pair, K={k})"

    rows = _transform_claim(data, cfg, spec, "above", margin)
    return [_with_secondary(r, data) for r in rows]


def _with_secondary(row: ClaimResult, data: AuditData) -> ClaimResult:
    if row.verdict == NOT_APPLICABLE:
        return row
    pair = (row.dataset, row.teacher, row.student)
    runs = [s for s in data.of_pair(pair) if s.key["selected"] and s.key["method"] == row.method]
    parts = []
    for col, label in (("spearman", "Spearman"), ("topk_overlap", "top-k overlap")):
        means = {t: np.mean([_nanmean(s.samples[col]) for s in runs if s.key["transform"] == t]) for t in (RAW, LS)}
        parts.append(f"{label} raw {means[RAW]:.3f} vs z-score {means[LS]:.3f}")
    k = runs[0].samples.attrs.get("top_k", "") if runs else ""
    evidence = row.evidence.rstrip(".") + f"; {'; '.join(parts)} (k={k})."
    return ClaimResult(**{**row.as_row(), "evidence": evidence})


# ---------------------------------------------------------------------------------------------- claim 4
def _agreement(kl: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Spearman ρ(−KL, accuracy) per row of ``(B, n)`` arrays (1 = the KL ranks the students by accuracy)."""
    return rowwise_spearman(-kl, acc)


def _agreement_gain(kl: np.ndarray, kl_z: np.ndarray, acc: np.ndarray) -> Any:
    """Bootstrap statistic over students: ``ρ(−KL_z, acc) − ρ(−KL, acc)`` of the resampled students."""
    return lambda idx: _agreement(kl_z[idx], acc[idx]) - _agreement(kl[idx], acc[idx])


def claim_authentic_eval(data: AuditData, cfg: AuditConfig = AuditConfig()) -> list[ClaimResult]:
    """Claim 4 (§4.3.1): z-scored KL agrees better with accuracy than the shared-temperature KL (module docstring)."""
    rows = []
    stat = "Spearman ρ(−KL, accuracy) over the students, z-scored minus shared-temperature KL (T = 1)"
    table = run_claims_table(data)
    for pair in data.pairs():
        scope = _pair_scope(pair, "all")
        sub = table[(table["dataset"] == pair[0]) & (table["teacher"] == pair[1]) & (table["student"] == pair[2])]
        per_seed = {}
        for seed, g in sub.groupby("seed", sort=True):
            if len(g) >= 3 and g["accuracy"].nunique() > 1:
                a_raw = float(_agreement(g["kl_t1"].to_numpy()[None], g["accuracy"].to_numpy()[None])[0])
                a_z = float(_agreement(g["kl_t1_zscore"].to_numpy()[None], g["accuracy"].to_numpy()[None])[0])
                if math.isfinite(a_raw) and math.isfinite(a_z):
                    per_seed[int(seed)] = (a_raw, a_z, g)
        if not per_seed:
            rows.append(not_applicable("authentic_eval", scope, "fewer than 3 students with different accuracies "
                                       "per seed: no rank correlation to compare", stat))
            continue
        a_raw = float(np.mean([v[0] for v in per_seed.values()]))
        a_z = float(np.mean([v[1] for v in per_seed.values()]))
        size = int(np.mean([len(v[2]) for v in per_seed.values()]))
        if len(per_seed) >= 2:
            ci = paired_bootstrap_ci([v[1] - v[0] for v in per_seed.values()], n_boot=cfg.n_boot, seed=cfg.seed)
            unit, test = "seeds", _seed_test(len(per_seed), cfg.n_boot)
        else:
            g = next(iter(per_seed.values()))[2]
            kl, klz, acc = (g[c].to_numpy(np.float64) for c in ("kl_t1", "kl_t1_zscore", "accuracy"))
            ci = percentile_bootstrap(_agreement_gain(kl, klz, acc), len(g), n_boot=cfg.n_boot_samples,
                                      seed=cfg.seed)
            unit, test = "students", _sample_test(len(g), cfg.n_boot_samples, "students of the seed")
        evidence = (f"ρ(−KL, accuracy) over ~{size} students per seed: shared-temperature KL {a_raw:+.2f}, "
                    f"z-scored KL {a_z:+.2f}; difference {fmt_interval(ci, 2)} (n={ci.n} {unit}).")
        rows.append(_row("authentic_eval", scope, statistic=stat, comparison="ρ with z-scored KL − ρ with raw KL",
                         reference=a_raw, value=a_z, ci=ci, threshold=0.0, direction="above", unit=unit, test=test,
                         evidence=evidence))
    if not rows:
        rows.append(not_applicable("authentic_eval", {}, "no distilled student in this results folder", stat))
    return rows


# ---------------------------------------------------------------------------------------------- claim 5
def _size_correlations(size: np.ndarray, sigma: np.ndarray, abs_mean: np.ndarray) -> Any:
    """Bootstrap statistic over test samples: ``(ρ(size, mean σ), ρ(size, mean |m|))`` across teachers, with
    ``sigma``/``abs_mean`` of shape ``(teachers, samples)``; every teacher sees the same resampled samples."""
    def rhos(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = np.stack([np.nanmean(row[idx], axis=1) for row in sigma], axis=1)
        m = np.stack([np.nanmean(row[idx], axis=1) for row in abs_mean], axis=1)
        sizes = np.broadcast_to(size, s.shape)
        return rowwise_spearman(sizes, s), rowwise_spearman(sizes, m)

    return rhos


def _larger_of(pair_stat: Any) -> Any:
    """The elementwise maximum of a statistic returning two arrays (both below 0 ⇔ the maximum is)."""
    return lambda idx: np.maximum(*pair_stat(idx))


def claim_teacher_size(data: AuditData, cfg: AuditConfig = AuditConfig()) -> list[ClaimResult]:
    """Claim 5 (Fig. 5a): across teachers, size vs mean logit std and mean |logit mean| (module docstring)."""
    stat = "max of Spearman ρ(parameters, mean σ(v)) and ρ(parameters, mean |m(v)|) across teachers"
    datasets = sorted({t.dataset for t in data.teachers} | {s.pair[0] for s in data.students})
    rows = []
    for dataset in datasets:
        teachers = [t for t in data.teachers if t.dataset == dataset]
        scope = {"dataset": dataset, "teacher": ", ".join(t.name for t in teachers), "student": "", "method": ""}
        if len({t.model for t in teachers}) < 2:
            names = ", ".join(sorted({t.name for t in teachers})) or "none collected"
            rows.append(not_applicable("teacher_size", scope, f"the config has one teacher ({names}); the claim "
                                       "compares teachers of different sizes", stat))
            continue
        if len({t.targets_digest for t in teachers}) > 1 or len({len(t.samples) for t in teachers}) > 1:
            rows.append(not_applicable("teacher_size", scope, "the teachers were evaluated on different test "
                                       "samples, so they cannot be compared sample by sample", stat))
            continue
        size = np.array([t.num_params for t in teachers], dtype=np.float64)
        if not np.isfinite(size).all() or np.unique(size).size < 2:
            rows.append(not_applicable("teacher_size", scope, "the teachers' parameter counts are unknown or equal",
                                       stat))
            continue
        sig = np.stack([t.samples["teacher_sigma"].to_numpy(np.float64) for t in teachers])
        avg = np.stack([t.samples["teacher_abs_mean"].to_numpy(np.float64) for t in teachers])

        rhos = _size_correlations(size, sig, avg)
        ci = percentile_bootstrap(_larger_of(rhos), sig.shape[1], n_boot=cfg.n_boot_samples, seed=cfg.seed)
        r_std, r_mean = (float(x[0]) for x in rhos(np.arange(sig.shape[1])[None]))
        acc = np.array([t.accuracy for t in teachers])
        r_acc = float(rowwise_spearman(size[None], acc[None])[0])
        listing = "; ".join(f"{t.name} ({t.num_params:,.0f} params, {t.accuracy:.1f}%): σ {np.nanmean(s):.2f}, "
                            f"|m| {np.nanmean(m):.2f}" for t, s, m in zip(teachers, sig, avg))
        evidence = (f"{listing}. ρ(parameters, σ) = {r_std:+.2f}, ρ(parameters, |m|) = {r_mean:+.2f}; the larger of the two "
                    f"{fmt_interval(ci, 2)}; size and accuracy rank the teachers with ρ = {r_acc:+.2f}.")
        test = (f"{len(teachers)} teachers, one run each: paired bootstrap 95% CI over the {sig.shape[1]:,} test "
                f"samples ({cfg.n_boot_samples:,} resamples); architecture-to-architecture variation is not captured")
        rows.append(_row("teacher_size", scope, statistic=stat, comparison="rank correlation with teacher size",
                         reference=r_std, value=r_mean, ci=ci, threshold=0.0, direction="below",
                         unit="test samples", test=test, evidence=evidence))
    if not rows:
        rows.append(not_applicable("teacher_size", {}, "no teacher run in this results folder", stat))
    return rows


# ---------------------------------------------------------------------------------------------- claim 6
def grid_step(temperatures: Iterable[float]) -> float:
    """The smallest ratio between adjacent distinct temperatures of the grid (NaN with fewer than two)."""
    t = np.unique([float(x) for x in temperatures if x is not None and math.isfinite(float(x)) and float(x) > 0])
    return float(np.min(t[1:] / t[:-1])) if t.size >= 2 else math.nan


def _iqr_ratio_rows(x: np.ndarray) -> np.ndarray:
    q1, q3 = np.nanquantile(x, [0.25, 0.75], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(q1 > 0, q3 / q1, np.nan)


def _iqr_ratio_of(values: np.ndarray) -> Any:
    """Bootstrap statistic over samples: Q3/Q1 of the resampled ``values``."""
    return lambda idx: _iqr_ratio_rows(values[idx])


def claim_effective_temp(data: AuditData, cfg: AuditConfig = AuditConfig()) -> list[ClaimResult]:
    """Claim 6: the per-sample temperature σ(v)·τ spreads (Q3/Q1) over more than one grid step."""
    stat = "Q3/Q1 of the teacher's per-sample effective temperature σ(v)·τ over the test samples"
    rows = []
    for pair in data.pairs():
        scope = _pair_scope(pair)
        students = data.of_pair(pair)
        temps = sorted({float(s.key["temperature"]) for s in students if s.key["temperature"] is not None})
        step = grid_step(temps)
        if not math.isfinite(step):
            rows.append(not_applicable("effective_temp", scope, f"the grid has {len(temps)} fixed temperature(s); "
                                       "there is no grid step to compare the per-sample spread with", stat))
            continue
        sigma = students[0].samples["teacher_sigma"].to_numpy(np.float64)
        sigma = sigma[np.isfinite(sigma)]
        ci = percentile_bootstrap(_iqr_ratio_of(sigma), len(sigma), n_boot=cfg.n_boot_samples, seed=cfg.seed)
        q1, q5, q3 = np.quantile(sigma, [0.25, 0.5, 0.75])
        ls = [s for s in students if s.key["transform"] == LS and s.key["selected"]]
        student_part = ""
        if ls:
            r = np.mean([_iqr_ratio_rows(s.samples["sigma"].to_numpy(np.float64)) for s in ls])
            student_part = f"; the selected z-score students' σ(z) has Q3/Q1 {r:.2f} (mean of {len(ls)} run(s))"
        teacher = data.teacher_of(pair)
        gap = (f"; z-score equals softmax at σ(v)·τ to {teacher.identity_gap:.1e} in probability"
               if teacher is not None and math.isfinite(teacher.identity_gap) else "")
        evidence = (f"teacher σ(v): Q1 {q1:.2f}, median {q5:.2f}, Q3 {q3:.2f}, so at τ = 1 the middle half of the "
                    f"samples is softened at T_eff ∈ [{q1:.2f}, {q3:.2f}]; Q3/Q1 = {fmt_interval(ci, 2, signed=False)} vs "
                    f"the grid step {step:.2f} (temperatures {', '.join(f'{t:g}' for t in temps)}){student_part}{gap}.")
        test = (f"one teacher: bootstrap 95% CI over its {len(sigma):,} test samples ({cfg.n_boot_samples:,} "
                "resamples); compared with the grid step, not with zero")
        rows.append(_row("effective_temp", scope, statistic=stat, comparison="spread vs the grid's temperature step",
                         reference=step, value=ci.mean, ci=ci, threshold=step, direction="above",
                         unit="test samples", test=test, evidence=evidence))
    if not rows:
        rows.append(not_applicable("effective_temp", {}, "no distilled student in this results folder", stat))
    return rows


# ---------------------------------------------------------------------------------------------- audit
CHECKS = {
    "logit_shift": claim_logit_shift,
    "variance_match": claim_variance_match,
    "relations": claim_relations,
    "authentic_eval": claim_authentic_eval,
    "teacher_size": claim_teacher_size,
    "effective_temp": claim_effective_temp,
}


def audit_claims(data: AuditData, cfg: AuditConfig = AuditConfig()) -> pd.DataFrame:
    """All six claims on ``data``: one row per claim and scope (columns :data:`CLAIM_COLUMNS`), in claim order."""
    rows = [r.as_row() for check in CHECKS.values() for r in check(data, cfg)]
    df = pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))
    bad = set(df["verdict"]) - set(VERDICTS)
    if bad:
        raise AssertionError(f"unknown verdicts {bad}")
    return df


def audit_runs(runs: pd.DataFrame, cfg: AuditConfig = AuditConfig()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(claims, claims_runs)`` for a run table of :func:`lskd.analysis.collect_runs` (files read from each
    ``run_dir``): the audit and the per-run statistics it is computed from."""
    data = load_audit_data(runs)
    return audit_claims(data, cfg), run_claims_table(data)


__all__ = [
    "CHECKS", "CLAIMS", "AuditConfig", "Claim", "audit_claims", "audit_runs", "claim_authentic_eval",
    "claim_effective_temp", "claim_logit_shift", "claim_relations", "claim_teacher_size", "claim_variance_match",
    "grid_step", "kendall_margin", "not_applicable",
]
