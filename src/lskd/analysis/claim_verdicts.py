"""Verdicts of the claims audit: one rule for every claim, and the intervals it is applied to.

Every claim is reduced to one statistic ``θ`` (a paired difference, a rank correlation or a ratio), a
``threshold`` and the side of it the paper predicts (``"above"`` or ``"below"``). With a 95% interval
``[lo, hi]`` for ``θ``:

* **supported**: the whole interval lies on the predicted side (``lo > threshold`` for ``"above"``);
* **not supported**: the whole interval lies on the other side (``hi < threshold`` for ``"above"``);
* **inconclusive**: the interval contains the threshold, or no interval could be estimated (one value);
* **not applicable**: the config lacks the runs the claim needs (the row says why).

Intervals are percentile bootstraps: over seeds (:func:`lskd.analysis.stats.paired_bootstrap_ci`, the unit of
replication) when there are at least two, otherwise over test samples or students with
:func:`percentile_bootstrap`; each row's ``test`` column says which.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

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


def percentile_bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = LEVEL,
    batch: int = 100,
) -> BootstrapCI:
    """Percentile bootstrap interval of a statistic of ``n`` units resampled with replacement.

    ``statistic`` maps an integer index array of shape ``(B, n)`` (row ``b`` = the units of resample ``b``; the
    identity ``arange(n)`` for the estimate) to ``B`` values, so paired quantities are resampled together and
    any statistic (a mean, a rank correlation, a quantile ratio) is vectorised over resamples. ``mean`` of the
    result is the statistic on the original units; ``lo``/``hi`` the ``(1 ∓ level)/2`` quantiles over the
    resamples whose statistic is finite (a resample where, e.g., a correlation is undefined is dropped).
    Deterministic (``numpy.random.default_rng(seed)``); resamples are drawn ``batch`` at a time to bound memory.
    ``degenerate`` when ``n < 2`` or fewer than half the resamples give a finite value.
    """
    estimate = float(np.asarray(statistic(np.arange(n)[None, :]), dtype=np.float64).ravel()[0]) if n else math.nan
    if n < 2:
        return BootstrapCI(estimate, estimate, estimate, n, True)
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, n_boot, batch):
        idx = rng.integers(0, n, size=(min(batch, n_boot - start), n))
        values.append(np.asarray(statistic(idx), dtype=np.float64).ravel())
    boot = np.concatenate(values)
    boot = boot[np.isfinite(boot)]
    if boot.size < n_boot / 2:
        return BootstrapCI(estimate, math.nan, math.nan, n, True)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return BootstrapCI(estimate, float(lo), float(hi), n, False)


def mean_of(values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A :func:`percentile_bootstrap` statistic: the mean of ``values[idx]`` per resample (NaN entries skipped)."""
    values = np.asarray(values, dtype=np.float64)

    def stat(idx: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.nanmean(values[idx], axis=1)

    return stat


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


def fmt_interval(ci: BootstrapCI, digits: int = 3, signed: bool = True) -> str:
    """``"+0.120 [+0.080, +0.160]"`` (``signed=False``: ``"5.48 [4.34, 6.89]"``), or just the estimate when no
    interval exists."""
    f = f"{'+' if signed else ''}.{digits}f"
    if ci.degenerate or not (math.isfinite(ci.lo) and math.isfinite(ci.hi)):
        return f"{ci.mean:{f}} (no interval)"
    return f"{ci.mean:{f}} [{ci.lo:{f}}, {ci.hi:{f}}]"


__all__ = [
    "CLAIM_COLUMNS", "INCONCLUSIVE", "LEVEL", "NOT_APPLICABLE", "NOT_SUPPORTED", "SUPPORTED", "VERDICTS",
    "ClaimResult", "fmt_interval", "mean_of", "percentile_bootstrap", "verdict",
]
