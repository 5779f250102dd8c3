"""Small statistics for result tables and the claims audit: mean ± std over seeds and the one bootstrap.

Conventions (DESIGN.md, "Reporting rules"): every number over seeds is reported as mean ± std with ``n``; every
LS-vs-raw comparison is a paired difference (paired by seed) with a bootstrap 95% interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
from scipy import stats as sps

from lskd.analysis.formatting import fmt_ci, fmt_mean_std


class BootstrapCI(NamedTuple):
    """Result of :func:`bootstrap_ci` and :func:`paired_bootstrap_ci`.

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


def bootstrap_ci(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    n_boot: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
    batch: int | None = None,
) -> BootstrapCI:
    """Percentile bootstrap interval of a statistic of ``n`` units resampled with replacement: the one bootstrap
    of lskd (:func:`scipy.stats.bootstrap`, ``method="percentile"``, resampling the units' indices).

    ``statistic`` maps an integer index array of shape ``(B, n)`` (row ``b`` = the units of resample ``b``; the
    identity ``arange(n)`` for the estimate) to ``B`` values, so paired quantities are resampled together and
    any statistic (a mean, a rank correlation, a quantile ratio) is vectorised over resamples. ``mean`` of the
    result is the statistic on the original units; ``lo``/``hi`` the ``(1 ∓ level)/2`` quantiles over the
    resamples whose statistic is finite (a resample where, e.g., a correlation is undefined is dropped).
    Deterministic (generator ``numpy.random.default_rng(seed)``); ``batch`` resamples are drawn at a time (all at
    once when ``None``) to bound memory, and the draws depend on it. ``degenerate`` when ``n < 2`` or fewer than
    half the resamples give a finite value.
    """
    estimate = float(np.asarray(statistic(np.arange(n)[None, :]), dtype=np.float64).ravel()[0]) if n else math.nan
    if n < 2:
        return BootstrapCI(estimate, estimate, estimate, n, True)
    with warnings.catch_warnings():  # NaN resamples are dropped below rather than reported by scipy
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        res = sps.bootstrap((np.arange(n),), lambda idx, axis=-1: statistic(idx), n_resamples=int(n_boot),
                            batch=batch, confidence_level=level, method="percentile", vectorized=True,
                            rng=np.random.default_rng(seed))
    boot = np.asarray(res.bootstrap_distribution, dtype=np.float64).ravel()
    finite = boot[np.isfinite(boot)]
    if finite.size < n_boot / 2:
        return BootstrapCI(estimate, math.nan, math.nan, n, True)
    if finite.size == boot.size:
        lo, hi = res.confidence_interval.low, res.confidence_interval.high
    else:
        lo, hi = sps.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return BootstrapCI(estimate, float(lo), float(hi), n, False)


def mean_of(values: Iterable[float]) -> Callable[[np.ndarray], np.ndarray]:
    """A :func:`bootstrap_ci` statistic: the mean of ``values[idx]`` per resample (NaN entries skipped)."""
    values = np.asarray(values, dtype=np.float64)

    def stat(idx: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.nanmean(values[idx], axis=1)

    return stat


def paired_bootstrap_ci(
    diffs: Iterable[float],
    n_boot: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap interval of the mean of paired differences ``d_i = a_i − b_i`` (paired by seed).

    :func:`bootstrap_ci` of the mean, all ``n_boot`` resamples drawn at once: the ``(1 − level)/2`` and
    ``(1 + level)/2`` quantiles of the resampled means (deterministic for a ``seed``). With ``n = 1`` there
    is nothing to resample: ``lo = hi = mean`` and ``degenerate=True``. With very few pairs (``n ≤ 3``) the
    interval is coarse (at most ``n^n`` distinct resamples); report ``n`` next to it.
    """
    arr = _finite_array(diffs, "paired_bootstrap_ci")
    mean = float(arr.mean())
    if arr.size == 1 or np.all(arr == arr[0]):
        return BootstrapCI(mean, mean, mean, int(arr.size), arr.size == 1)
    ci = bootstrap_ci(lambda idx: arr[idx].mean(axis=-1), int(arr.size), n_boot=n_boot, seed=seed, level=level)
    return ci._replace(mean=mean)


__all__ = ["BootstrapCI", "bootstrap_ci", "fmt_ci", "fmt_mean_std", "mean_of", "mean_std_n", "paired_bootstrap_ci"]
