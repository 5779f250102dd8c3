"""Verdicts of the claims audit: one rule for every claim, tested on the unit of replication.

Every claim is reduced to one statistic ``θ`` (a paired difference, a rank correlation, a log ratio), computed once
per independent unit (a seed; for claims across teachers, a teacher), a ``threshold`` and the side of it the paper
predicts (``"above"`` or ``"below"``). With the ``n`` per-unit values:

* the interval is Student t, ``θ̄ ± t_{0.975, n−1} · s/√n`` (:func:`lskd.analysis.inference.t_interval`);
* two one-sided t-tests against the threshold: ``p_supported`` of H0 "θ is not on the predicted side"
  (``P(T ≥ (θ̄ − threshold)/SE)`` for ``"above"``) and ``p_refuted`` of H0 "θ is not on the other side";
* both join one family per report, every claim row with ``n ≥ 3``, Holm-adjusted (:func:`holm_verdicts`;
  :func:`lskd.analysis.inference.holm`), at α = 0.025 (the report's 0.05 split over its two families, the
  headline and the claims: :data:`lskd.analysis.inference.FAMILY_ALPHA`):

  - **supported**: the adjusted ``p_supported`` is below α;
  - **not supported**: the adjusted ``p_refuted`` is below α;
  - **inconclusive**: neither;
  - **descriptive**: fewer than :data:`lskd.analysis.inference.MIN_SEEDS` units: the numbers are shown and
    tested by nothing (never "supported");
  - **not applicable**: the config lacks the runs the claim needs (the row says why).

Per-sample quantities are averaged within a run first: test samples of one run are not independent replications of
the training, so they never form the interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps

from lskd.analysis.formatting import fmt_interval
from lskd.analysis.inference import FAMILY_ALPHA, MIN_SEEDS, holm, t_interval
from lskd.analysis.stats import BootstrapCI

#: The verdicts, in the order the report tallies them.
VERDICTS: tuple[str, ...] = ("supported", "not supported", "inconclusive", "descriptive", "not applicable")
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, DESCRIPTIVE, NOT_APPLICABLE = VERDICTS
LEVEL = 0.95

Direction = Literal["above", "below"]


class Tested(NamedTuple):
    """The per-unit values of a claim's statistic, summarised: mean, t interval (NaN below 2 units), ``n`` and the
    two one-sided p-values against the threshold (NaN below :data:`MIN_SEEDS` units)."""

    mean: float
    lo: float
    hi: float
    n: int
    p_supported: float
    p_refuted: float


def test_values(values: Sequence[float], threshold: float, direction: Direction) -> Tested:
    """:class:`Tested` for the per-unit values of ``θ`` the paper predicts to lie ``direction`` of ``threshold``."""
    if direction not in ("above", "below"):
        raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
    ci = t_interval(values)
    if ci.n < MIN_SEEDS:
        return Tested(ci.mean, ci.lo, ci.hi, ci.n, math.nan, math.nan)
    sign = 1.0 if direction == "above" else -1.0
    if ci.se == 0:
        gap = sign * (ci.mean - threshold)
        p_sup, p_ref = (0.0, 1.0) if gap > 0 else (1.0, 0.0) if gap < 0 else (1.0, 1.0)
    else:
        t = sign * (ci.mean - threshold) / ci.se
        p_sup, p_ref = float(sps.t.sf(t, ci.n - 1)), float(sps.t.cdf(t, ci.n - 1))
    return Tested(ci.mean, ci.lo, ci.hi, ci.n, p_sup, p_ref)


def verdict_of(n: int, p_supported: float, p_refuted: float, alpha: float = FAMILY_ALPHA) -> str:
    """The audit's verdict from (Holm-adjusted) one-sided p-values; ``descriptive`` below :data:`MIN_SEEDS`."""
    if n < MIN_SEEDS or math.isnan(p_supported):
        return DESCRIPTIVE
    if p_supported < alpha:
        return SUPPORTED
    if p_refuted < alpha:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def holm_verdicts(df: pd.DataFrame) -> pd.DataFrame:
    """The audit table with ``p_supported_holm``/``p_refuted_holm`` (Holm over both tests of every tested row: one
    family per report) and each tested row's verdict from them; not-applicable and descriptive rows are kept."""
    out = df.copy()
    tested = out["verdict"].isin([SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE]) & out["p_supported"].notna()
    p = np.concatenate([out.loc[tested, "p_supported"].to_numpy(float), out.loc[tested, "p_refuted"].to_numpy(float)])
    adjusted = holm(p)
    k = int(tested.sum())
    out["p_supported_holm"] = np.nan
    out["p_refuted_holm"] = np.nan
    out.loc[tested, "p_supported_holm"] = adjusted[:k]
    out.loc[tested, "p_refuted_holm"] = adjusted[k:]
    out.loc[tested, "verdict"] = [verdict_of(int(n), a, b) for n, a, b in
                                  zip(out.loc[tested, "n"], adjusted[:k], adjusted[k:])]
    return out


def verdict(ci: BootstrapCI, threshold: float, direction: Direction) -> str:
    """The verdict of a bare interval (no per-unit values): ``descriptive`` below :data:`MIN_SEEDS` units, else
    supported / not supported when the whole interval lies on one side of ``threshold``, else inconclusive. The
    audit's rows use :func:`test_values` and :func:`holm_verdicts` instead."""
    if direction not in ("above", "below"):
        raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
    if ci.n < MIN_SEEDS or ci.degenerate or not (math.isfinite(ci.lo) and math.isfinite(ci.hi)):
        return DESCRIPTIVE
    lo, hi = (ci.lo, ci.hi) if direction == "above" else (-ci.hi, -ci.lo)
    t = threshold if direction == "above" else -threshold
    if lo > t:
        return SUPPORTED
    if hi < t:
        return NOT_SUPPORTED
    return INCONCLUSIVE


@dataclass(frozen=True)
class ClaimResult:
    """One row of ``claims.csv``: a claim checked on one scope (a pair and method, a pair, or a dataset).

    ``estimate``/``lo``/``hi``: the statistic and its 95% interval; ``threshold`` and ``direction``: what the
    paper predicts; ``reference``/``value``: the two quantities compared (e.g. raw and z-score students, means
    over seeds); ``n`` and ``unit``: what the interval resamples (seeds, test samples, students); ``test``: the
    procedure in words; ``evidence``: one sentence with the numbers; for ``not applicable``, why.
    """

    claim: str
    title: str
    paper: str
    dataset: str
    teacher: str
    student: str
    method: str
    statistic: str
    comparison: str
    reference: float
    value: float
    estimate: float
    lo: float
    hi: float
    threshold: float
    direction: str
    n: int
    unit: str
    test: str
    verdict: str
    evidence: str
    p_supported: float = math.nan
    p_refuted: float = math.nan
    p_supported_holm: float = math.nan
    p_refuted_holm: float = math.nan

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


CLAIM_COLUMNS: tuple[str, ...] = tuple(ClaimResult.__dataclass_fields__)


def interval_text(ci: BootstrapCI, digits: int = 3, signed: bool = True) -> str:
    """:func:`lskd.analysis.formatting.fmt_interval` of ``ci``: ``"+0.120 [+0.080, +0.160]"``, or just the estimate
    when no interval exists (a degenerate one)."""
    lo, hi = (math.nan, math.nan) if ci.degenerate else (ci.lo, ci.hi)
    return fmt_interval(ci.mean, lo, hi, digits, signed=signed)


__all__ = [
    "CLAIM_COLUMNS", "DESCRIPTIVE", "INCONCLUSIVE", "LEVEL", "NOT_APPLICABLE", "NOT_SUPPORTED", "SUPPORTED",
    "VERDICTS", "ClaimResult", "Direction", "Tested", "holm_verdicts", "interval_text", "test_values", "verdict",
    "verdict_of",
]
