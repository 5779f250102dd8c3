"""Verdicts of the claims audit: one rule for every claim, and the intervals it is applied to.

Every claim is reduced to one statistic ``θ`` (a paired difference, a rank correlation or a ratio), a
``threshold`` and the side of it the paper predicts (``"above"`` or ``"below"``). With a 95% interval
``[lo, hi]`` for ``θ``:

* **supported**: the whole interval lies on the predicted side (``lo > threshold`` for ``"above"``);
* **not supported**: the whole interval lies on the other side (``hi < threshold`` for ``"above"``);
* **inconclusive**: the interval contains the threshold, or no interval could be estimated (one value);
* **not applicable**: the config lacks the runs the claim needs (the row says why).

Intervals are percentile bootstraps (:func:`lskd.analysis.stats.bootstrap_ci`): over seeds (the unit of
replication) when there are at least two, otherwise over test samples or students; each row's ``test`` column
says which.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lskd.analysis.formatting import fmt_interval
from lskd.analysis.stats import BootstrapCI

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
NOT_APPLICABLE = "not applicable"
VERDICTS: tuple[str, ...] = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_APPLICABLE)
LEVEL = 0.95

Direction = Literal["above", "below"]


def verdict(ci: BootstrapCI, threshold: float, direction: Direction) -> str:
    """The audit's verdict for the interval ``ci`` of a statistic the paper predicts to lie ``direction`` of
    ``threshold`` (rule in the module docstring). A degenerate interval (one value) is inconclusive."""
    if direction not in ("above", "below"):
        raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
    if ci.degenerate or not (math.isfinite(ci.lo) and math.isfinite(ci.hi)):
        return INCONCLUSIVE
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

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


CLAIM_COLUMNS: tuple[str, ...] = tuple(ClaimResult.__dataclass_fields__)


def interval_text(ci: BootstrapCI, digits: int = 3, signed: bool = True) -> str:
    """:func:`lskd.analysis.formatting.fmt_interval` of ``ci``: ``"+0.120 [+0.080, +0.160]"``, or just the estimate
    when no interval exists (a degenerate one)."""
    lo, hi = (math.nan, math.nan) if ci.degenerate else (ci.lo, ci.hi)
    return fmt_interval(ci.mean, lo, hi, digits, signed=signed)


__all__ = [
    "CLAIM_COLUMNS", "INCONCLUSIVE", "LEVEL", "NOT_APPLICABLE", "NOT_SUPPORTED", "SUPPORTED", "VERDICTS",
    "ClaimResult", "Direction", "interval_text", "verdict",
]
