"""Small statistics for result tables: mean ± std over seeds and paired bootstrap intervals.

Conventions (DESIGN.md, "Reporting rules"): every number over seeds is reported as mean ± std with ``n``; every
LS-vs-raw comparison is a paired difference (paired by seed) with a bootstrap 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from scipy import stats as sps


class BootstrapCI(NamedTuple):
    """Result of :func:`paired_bootstrap_ci`.

    ``mean``, ``lo``, ``hi``: mean of the paired differences and its percentile interval; ``n``: number of pairs;
    ``degenerate``: ``True`` when no interval could be estimated (``n == 1``: ``lo == hi == mean``).
    """

    mean: float
    lo: float
    hi: float
    n: int
    degenerate: bool


def _finite_array(values: Iterable[float], what: str) -> np.ndarray:
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{what}: no values")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: non-finite values {arr[~np.isfinite(arr)].tolist()}")
    return arr


def mean_std_n(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation and count of ``values``.

    ``std = sqrt(Σ (x_i − x̄)² / (n − 1))`` (``ddof=1``). For ``n = 1`` the std is reported as ``0.0`` (not NaN, so
    no NaN reaches a table); :func:`fmt_mean_std` then omits the ``±`` part, and ``n`` is always carried along.
    Empty or non-finite input raises ``ValueError``.
    """
    arr = _finite_array(values, "mean_std_n")
    n = int(arr.size)
    std = float(np.std(arr, ddof=1)) if n > 1 else 0.0
    return float(np.mean(arr)), std, n


def paired_bootstrap_ci(
    diffs: Iterable[float],
    n_boot: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap interval of the mean of paired differences ``d_i = a_i − b_i`` (paired by seed).

    Resamples the ``n`` differences with replacement ``n_boot`` times (``scipy.stats.bootstrap``,
    ``method="percentile"``, generator ``numpy.random.default_rng(seed)``, so the result is deterministic) and
    returns the ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the resampled means. With ``n = 1`` there
    is nothing to resample: ``lo = hi = mean`` and ``degenerate=True``. With very few pairs (``n ≤ 3``) the
    interval is coarse (at most ``n^n`` distinct resamples); report ``n`` next to it.
    """
    arr = _finite_array(diffs, "paired_bootstrap_ci")
    mean = float(arr.mean())
    if arr.size == 1 or np.all(arr == arr[0]):
        return BootstrapCI(mean, mean, mean, int(arr.size), arr.size == 1)
    res = sps.bootstrap(
        (arr,), np.mean, n_resamples=int(n_boot), confidence_level=level, method="percentile",
        vectorized=True, rng=np.random.default_rng(seed),
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return BootstrapCI(mean, lo, hi, int(arr.size), False)


def fmt_mean_std(mean: float, std: float, n: int, digits: int = 2) -> str:
    """``"76.62 ± 0.21 (n=4)"``; for ``n == 1`` just ``"76.62 (n=1)"`` (no spread to show)."""
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise ValueError(f"fmt_mean_std: non-finite mean/std {mean!r}/{std!r}")
    if n <= 1:
        return f"{mean:.{digits}f} (n={n})"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={n})"


def fmt_ci(mean: float, lo: float, hi: float, digits: int = 2) -> str:
    """``"+3.29 [+2.90, +3.61]"``: a signed difference with its interval."""
    return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"
