"""Inference for the headline's paired comparisons: honest for a handful of seeds.

A comparison is one transform against raw logits (``none``) in one arm, paired by seed: the per-seed differences
:math:`d_1, …, d_n` of last-epoch test top-1 (points). With :math:`\\bar d` their mean, :math:`s` their standard
deviation (ddof = 1) and :math:`SE = s/\\sqrt n`:

* **Interval** (:func:`t_interval`): :math:`\\bar d ± t_{1-α/2,\\,n-1}\\,SE`, Student t with n − 1 degrees of
  freedom, valid for small n when the seed-to-seed differences are roughly normal (a percentile bootstrap over two
  or three seeds only spans the observed differences and covers far less than its nominal level). n = 1: no
  interval.
* **Tests** (one-sample t on the differences, n − 1 df, :math:`T` a t variable):

  - no difference (:func:`paired_t_p`), :math:`H_0: μ = 0`: :math:`p = 2\\,P(T ≥ |\\bar d|/SE)`, shown for
    reference only;
  - minimum effect (:func:`min_effect_p`), :math:`H_0: |μ| ≤ δ`:
    :math:`p = \\min(1,\\ 2\\min(P(T ≥ (\\bar d-δ)/SE),\\ P(T ≤ (\\bar d+δ)/SE)))`;
  - equivalence (:func:`equivalence_p`, two one-sided tests), :math:`H_0: |μ| ≥ δ`:
    :math:`p = \\max(P(T ≥ (\\bar d+δ)/SE),\\ P(T ≤ (\\bar d-δ)/SE))`.

  δ > 0 is the smallest effect of interest (config ``analysis.smallest_effect``, points of top-1).
* **Family and multiplicity** (:func:`holm`): one family per report, namely every comparison of its headline with
  at least :data:`MIN_SEEDS` seeds, each contributing its minimum-effect and its equivalence test (2k hypotheses
  for k comparisons). Holm's step-down adjustment controls the probability of any false verdict in the report at
  α whatever the dependence between tests.
* **Verdict** (:func:`verdict`), at :data:`FAMILY_ALPHA` = 0.025 on the Holm-adjusted p-values (the report's
  α = 0.05 split over its two families, the headline and the claims, so no verdict of the report is false with
  probability above 0.05): *better* / *worse* when the
  minimum-effect test rejects (the difference is shown to exceed δ in that direction); *equivalent* when the
  equivalence test rejects (shown to lie within ±δ); *inconclusive* otherwise. The two rejections exclude each
  other (the first needs :math:`|\\bar d| > δ`, the second :math:`|\\bar d| < δ`). Below :data:`MIN_SEEDS` seeds the
  verdict is *descriptive*: the comparison is tested by nothing and joins no family.
* **Per-seed McNemar** (:func:`mcnemar_exact`): within one seed, the two students' per-sample correctness on the
  same test images; b = samples only the first gets right, c = only the second; exact two-sided binomial test of
  b ~ Bin(b + c, 1/2). It measures test-sample noise within a seed (not seed-to-seed variation), so it is shown
  beside the verdict, unadjusted, and does not enter it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import stats as sps

#: Level of the intervals (1 − ALPHA), and the report's error budget: the probability of any false verdict in one
#: report (headline and claims together) is at most ALPHA.
ALPHA = 0.05
#: The report's two families of verdicts, each Holm-adjusted within itself at :data:`FAMILY_ALPHA`.
FAMILIES: tuple[str, ...] = ("headline", "claims")
#: ALPHA split evenly over :data:`FAMILIES` (Bonferroni across the families, Holm within each).
FAMILY_ALPHA = ALPHA / len(FAMILIES)
#: Fewest seeds a comparison needs for a verdict other than ``descriptive``.
MIN_SEEDS = 3
#: Smallest effect of interest (points of top-1) when the config gives none: about the smallest gain the paper
#: reports as an improvement on CIFAR-100 and about twice a CIFAR-100 student's seed-to-seed std.
DEFAULT_SMALLEST_EFFECT = 0.5
VERDICTS = ("better", "worse", "equivalent", "inconclusive", "descriptive")
DESCRIPTIVE = "descriptive"


class TInterval(NamedTuple):
    """Mean of the differences, its interval (NaN for n = 1), n and the standard error (NaN for n = 1)."""

    mean: float
    lo: float
    hi: float
    n: int
    se: float


class McNemar(NamedTuple):
    """Discordant counts of one seed (b: only the first run right, c: only the second) and the exact p."""

    b: int
    c: int
    p: float


def _diffs(diffs: Iterable[float]) -> np.ndarray:
    d = np.asarray(list(diffs), dtype=float)
    if d.size == 0 or not np.isfinite(d).all():
        raise ValueError(f"need at least one finite difference, got {d.tolist()}")
    return d


def t_interval(diffs: Iterable[float], level: float = 1 - ALPHA) -> TInterval:
    """Student-t interval of the mean paired difference: :math:`\\bar d ± t_{(1+level)/2,\\,n-1}\\,s/\\sqrt n`.

    n = 1 has no interval (``lo``, ``hi`` and ``se`` are NaN); equal differences give a zero-width interval.
    """
    d = _diffs(diffs)
    n, mean = d.size, float(d.mean())
    if n == 1:
        return TInterval(mean, math.nan, math.nan, 1, math.nan)
    se = 0.0 if np.ptp(d) == 0 else float(d.std(ddof=1)) / math.sqrt(n)  # equal values: no rounding residue
    half = float(sps.t.ppf((1 + level) / 2, n - 1)) * se
    return TInterval(mean, mean - half, mean + half, n, se)


def _upper(x: float, df: int) -> float:
    """:math:`P(T ≥ x)` for a t variable with ``df`` degrees of freedom; ``x = ±inf`` (zero spread) allowed."""
    return float(sps.t.sf(x, df))


def _standardized(diffs: Iterable[float], shift: float) -> tuple[float, int]:
    """:math:`(\\bar d - shift)/SE` and n − 1; with zero spread ±inf by the sign (0 when :math:`\\bar d = shift`)."""
    ci = t_interval(diffs)
    if ci.n < 2:
        raise ValueError("a t-test needs at least 2 differences")
    z = ci.mean - shift
    if ci.se == 0:
        return (math.copysign(math.inf, z) if z else 0.0), ci.n - 1
    return z / ci.se, ci.n - 1


def paired_t_p(diffs: Iterable[float]) -> float:
    """Two-sided paired t-test of no difference, :math:`H_0: μ = 0`: :math:`2\\,P(T ≥ |\\bar d|/SE)`."""
    t, df = _standardized(diffs, 0.0)
    return min(1.0, 2 * _upper(abs(t), df))


def min_effect_p(diffs: Iterable[float], delta: float) -> float:
    """Minimum-effect test of :math:`H_0: |μ| ≤ δ` (two-sided, α/2 per side):
    :math:`\\min(1, 2\\min(P(T ≥ (\\bar d-δ)/SE), P(T ≤ (\\bar d+δ)/SE)))`."""
    d = list(diffs)
    hi, df = _standardized(d, delta)
    lo, _ = _standardized(d, -delta)
    return min(1.0, 2 * min(_upper(hi, df), _upper(-lo, df)))


def equivalence_p(diffs: Iterable[float], delta: float) -> float:
    """Equivalence test (TOST) of :math:`H_0: |μ| ≥ δ`: :math:`\\max(P(T ≥ (\\bar d+δ)/SE), P(T ≤ (\\bar d-δ)/SE))`.

    It rejects at α exactly when the :math:`1-2α` t interval lies inside (−δ, δ)."""
    d = list(diffs)
    lo, df = _standardized(d, -delta)
    hi, _ = _standardized(d, delta)
    return max(_upper(lo, df), _upper(-hi, df))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: sorted :math:`p_{(1)} ≤ … ≤ p_{(m)}`,
    :math:`\\tilde p_{(i)} = \\max_{j ≤ i} \\min(1, (m-j+1)\\,p_{(j)})`. NaN entries stay NaN and do not count in m."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def verdict(n: int, mean: float, p_min_effect_holm: float, p_equivalence_holm: float,
            alpha: float = FAMILY_ALPHA) -> str:
    """``descriptive`` below :data:`MIN_SEEDS` seeds; else ``better``/``worse`` (minimum-effect test rejects, sign
    of the estimate), ``equivalent`` (equivalence test rejects) or ``inconclusive``, on Holm-adjusted p-values."""
    if n < MIN_SEEDS:
        return DESCRIPTIVE
    if p_min_effect_holm < alpha:
        return "better" if mean > 0 else "worse"
    if p_equivalence_holm < alpha:
        return "equivalent"
    return "inconclusive"


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """Exact McNemar test of two runs on the same test samples (boolean per-sample correctness, same order):
    b = a right and b wrong, c = a wrong and b right, :math:`p` = two-sided exact binomial test of
    :math:`b \\sim \\mathrm{Bin}(b+c, 1/2)` (1 when b + c = 0)."""
    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"runs scored on different samples: {a.shape} vs {b_.shape}")
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    p = 1.0 if b + c == 0 else float(sps.binomtest(b, b + c, 0.5).pvalue)
    return McNemar(b, c, p)


def mcnemar_summary(results: Sequence[McNemar], alpha: float = ALPHA) -> str:
    """``"3/3 seeds p<0.05 (max p 0.012)"``; empty when there is no seed."""
    if not results:
        return ""
    sig = sum(r.p < alpha for r in results)
    return f"{sig}/{len(results)} seeds p<{alpha:g} (max p {fmt_p(max(r.p for r in results))})"


def fmt_p(p: float) -> str:
    """A p-value in 2 significant digits (``"0.012"``, ``"<0.0001"``); empty when missing."""
    if p is None or math.isnan(p):
        return ""
    return "<0.0001" if p < 1e-4 else f"{p:.2g}" if p < 0.01 else f"{p:.2f}"


def read_correct(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample correctness (argmax of the logits equals the target) and the targets of a finished run's
    evaluation (``lskd.layout.logits_path``: the split it was evaluated on)."""
    from lskd.engine.io import read_tensors
    from lskd.layout import logits_path

    tensors = read_tensors(logits_path(run_dir))
    targets = tensors["targets"].numpy()
    return tensors["logits"].argmax(dim=1).numpy() == targets, targets


def verdict_sentence(method: str, protocol: str, n: int, delta: float, mean: float, lo: float, hi: float,
                     label: str, p_holm: float = math.nan, *, versus: str = "raw logits") -> str:
    """One line for the report's opening, e.g. ``"KD + LS vs raw logits (validation protocol, n = 3 seeds,
    δ = 0.50 points): −0.12 [−0.80, +0.56] points, equivalent within ±0.50 (Holm p 0.030)."``"""
    if n < 2 or math.isnan(lo):
        estimate = f"{mean:+.2f} points (n = {n}: no interval)"
    else:
        estimate = f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}] points"
    estimate = estimate.replace("-", "−")
    what = {"better": f"better by more than {delta:.2f}", "worse": f"worse by more than {delta:.2f}",
            "equivalent": f"equivalent within ±{delta:.2f}",
            "inconclusive": f"inconclusive at δ = {delta:.2f}",
            DESCRIPTIVE: f"descriptive (fewer than {MIN_SEEDS} seeds: no test)"}.get(label, label)
    p = f" (Holm p {fmt_p(p_holm)})" if label in ("better", "worse", "equivalent", "inconclusive") and \
        not math.isnan(p_holm) else ""
    seeds = "seed" if n == 1 else "seeds"
    return (f"{method} vs {versus} ({protocol} protocol, n = {n} {seeds}, δ = {delta:.2f} points): "
            f"{estimate}, {what}{p}.")
