"""Run health: every finished run gets one status, and only ``ok`` runs are healthy (:func:`is_healthy`).

=================  ============================================================================================
status             rule (checked in this order; the first that applies wins)
=================  ============================================================================================
``diverged``       its loss or logits became non-finite (``metrics.json`` status ``diverged``): it has no accuracy
``single-class``   the most frequent class among its eval-set predictions takes at least
                   :data:`SINGLE_CLASS_SHARE` of them (read from the run's eval logits)
``chance-level``   its last-epoch top-1 is at most chance plus :data:`CHANCE_SE` binomial standard errors
``not converged``  its last epoch added more than :data:`NOT_CONVERGED_SHARE` of its whole rise above chance
                   beyond its best earlier epoch (per-epoch eval top-1 of ``history.csv``): its accuracy was
                   still climbing steeply
``ok``             none of the above
=================  ============================================================================================

The order goes from the most to the least specific diagnosis: a diverged run has nothing else to judge; a run
that predicts one class is also at (or near) chance on a class-balanced set, and "one class" says what went
wrong; a run at chance whose last epoch moved it a little is still a run at chance.

Chance: a classifier that ignores its input scores top-1 ``p = 1/K`` in expectation on a class-balanced set of
``n`` images, with binomial standard error ``sqrt(p(1-p)/n)`` (on Fashion-MNIST's 10,000 test images: 10% + 0.9
points at 3 SE).

Not converged: with per-epoch eval top-1 ``a_1 … a_L`` and chance ``c``, the statistic is the *last-epoch share*
``(a_L - max(a_1 … a_{L-1})) / (a_L - c)``: the part of everything the run learned (its rise above chance, the
accuracy of the untrained network) that its last epoch added beyond the best earlier epoch. A run that has
levelled off has a share near 0 (negative when its last epoch dipped); a run that only took off at the end has a
share near 1. Measuring from the best earlier epoch, not the previous one, keeps a run whose eval accuracy dipped
for an epoch and recovered from counting as a climb; measuring relative to the rise, not in points, lets one rule
fit a 4-epoch demo and a 240-epoch CIFAR run alike. A history of fewer than :data:`MIN_EPOCHS` evaluated epochs
has no trend to judge and is not tested. The threshold is the config's ``health.not_converged_share`` (null: the
check is off, as in the smoke config, whose runs train a few steps and are not meant to converge).

Unhealthy runs stay rows of ``runs.csv`` with their status and the statistic that flagged them
(``health_note``), and never enter a selection, the headline, the claims or the per-setting figures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: The unhealthy statuses in precedence order (a run gets the first that applies), then ``ok``.
STATUSES: tuple[str, ...] = ("diverged", "single-class", "chance-level", "not converged", "ok")
DIVERGED, SINGLE_CLASS, CHANCE_LEVEL, NOT_CONVERGED, HEALTHY = STATUSES
#: What each unhealthy status means, in a few words (the report's run-health part).
MEANINGS: dict[str, str] = {
    DIVERGED: "a non-finite loss, no accuracy",
    SINGLE_CLASS: "nearly every eval prediction is one class",
    CHANCE_LEVEL: "last-epoch top-1 at chance",
    NOT_CONVERGED: "accuracy still climbing steeply at the last epoch",
}

#: Standard errors above chance that still count as chance (one-sided, about 1 in 740 for a run at chance).
CHANCE_SE = 3.0
#: Share of the eval predictions the most frequent class must take for a run to be ``single-class``. On a
#: class-balanced set of K classes such a run scores at most 1/K + 10 points: it has learned next to nothing,
#: while a healthy run's most frequent class takes about 1/K (below 20% on the 10-class default run).
SINGLE_CLASS_SHARE = 0.9
#: Largest share of a run's rise above chance its last epoch may add beyond the best earlier epoch: above it,
#: more than half of what the run learned came in its last epoch, so another epoch would likely change its
#: accuracy again. On the default 4-epoch Fashion-MNIST run (72 healthy runs of 76) the shares have median 0.07
#: and stay at or below 0.46; all but one (an eval accuracy of 39, 28, 16, then 64%) are below 0.3.
NOT_CONVERGED_SHARE = 0.5
#: Fewest evaluated epochs for the not-converged test: the first epoch is the network's initial climb from
#: chance, which dominates any two-epoch history, so a trend needs two epochs after it.
MIN_EPOCHS = 3


@dataclass(frozen=True)
class Health:
    """A run's status, the statistic that flagged it (``note``, empty when ``ok``) and the two measured
    statistics (NaN when not measured)."""

    status: str
    note: str = ""
    majority_share: float = math.nan
    last_epoch_share: float = math.nan


def is_healthy(status: Any) -> bool:
    """Whether one status is healthy (``ok``)."""
    return status == HEALTHY


def healthy_mask(statuses: pd.Series) -> pd.Series:
    """Whether each status of a column is healthy (``ok``)."""
    return statuses.eq(HEALTHY)


def chance_top1(num_classes: int) -> float:
    """Expected top-1 (%) of guessing on a class-balanced set of ``num_classes`` classes."""
    return 100.0 / num_classes


def chance_threshold(num_classes: int, n: int) -> float:
    """Top-1 (%) at or below which a run on ``n`` images of ``num_classes`` classes counts as chance-level."""
    p = 1.0 / num_classes
    return 100.0 * (p + CHANCE_SE * math.sqrt(p * (1 - p) / max(n, 1)))


def majority_share(predictions: Any) -> float:
    """Share of the predicted classes (a 1-D integer array) taken by the most frequent one; NaN when empty."""
    pred = np.asarray(predictions).reshape(-1)
    if pred.size == 0:
        return math.nan
    return float(np.unique(pred, return_counts=True)[1].max() / pred.size)


def last_epoch_share(top1: Sequence[float], chance: float) -> float:
    """``(a_L - max(a_1 … a_{L-1})) / (a_L - chance)`` of the per-epoch top-1 ``a`` (%); NaN with fewer than
    :data:`MIN_EPOCHS` epochs or a last epoch at or below chance (nothing learned to take a share of)."""
    a = _finite(top1)
    if len(a) < MIN_EPOCHS or a[-1] <= chance:
        return math.nan
    return (a[-1] - max(a[:-1])) / (a[-1] - chance)


def _finite(values: Sequence[float]) -> list[float]:
    return [float(x) for x in values if x is not None and math.isfinite(float(x))]


def assess(metrics: dict[str, Any], num_classes: int | None, *, predictions: Any = None,
           history_top1: Sequence[float] | None = None,
           not_converged_share: float | None = NOT_CONVERGED_SHARE) -> Health:
    """The :class:`Health` of one run from its ``metrics.json``, its eval-set ``predictions`` (predicted class
    per image) and its per-epoch eval top-1 ``history_top1``; a check whose input is missing is skipped, and
    ``not_converged_share=None`` switches the not-converged check off (the config's
    ``health.not_converged_share``)."""
    if metrics.get("status") == DIVERGED:
        message = str((metrics.get("diverged") or {}).get("message", "")).splitlines()
        return Health(DIVERGED, message[0][:120] if message and message[0] else "non-finite loss")
    share = majority_share(predictions) if predictions is not None else math.nan
    k = int(num_classes) if num_classes else 0
    chance = chance_top1(k) if k >= 2 else math.nan
    climb = last_epoch_share(history_top1, chance) if history_top1 is not None and k >= 2 else math.nan
    found = {"majority_share": share, "last_epoch_share": climb}
    if share >= SINGLE_CLASS_SHARE:
        return Health(SINGLE_CLASS, f"{100 * share:.1f}% of predictions are one class "
                                    f"(≥ {100 * SINGLE_CLASS_SHARE:.0f}%)", **found)
    top1 = float(metrics["last"]["top1"])
    n = metrics.get("num_eval", metrics.get("num_test"))
    if k >= 2 and n and top1 <= (limit := chance_threshold(k, int(n))):
        return Health(CHANCE_LEVEL, f"top-1 {top1:.2f}% ≤ {limit:.2f}% (chance {chance:.1f}% + "
                                    f"{CHANCE_SE:g} SE)", **found)
    if not_converged_share is not None and climb > not_converged_share:
        a = _finite(history_top1)  # type: ignore[arg-type]
        return Health(NOT_CONVERGED, f"last epoch added {100 * climb:.0f}% of the rise above chance (> "
                                     f"{100 * not_converged_share:.0f}%): best earlier epoch {max(a[:-1]):.2f}%, "
                                     f"last {a[-1]:.2f}%", **found)
    return Health(HEALTHY, "", **found)


def run_status(metrics: dict[str, Any], num_classes: int | None, **inputs: Any) -> str:
    """The status alone of :func:`assess`."""
    return assess(metrics, num_classes, **inputs).status


def history_top1(run_dir: str | os.PathLike, split: str) -> list[float] | None:
    """Per-epoch eval top-1 of ``history.csv`` (column ``<split>_top1``); None without the file or column."""
    from lskd.layout import HISTORY

    path = Path(run_dir) / HISTORY
    if not path.exists():
        return None
    hist = pd.read_csv(path)
    col = f"{split}_top1"
    return None if col not in hist else hist[col].dropna().astype(float).tolist()


def eval_predictions(run_dir: str | os.PathLike, split: str) -> np.ndarray | None:
    """The predicted class of each eval image (argmax of the run's ``<split>_logits``); None without the file."""
    from lskd.engine.io import read_tensors
    from lskd.layout import logits_path

    path = logits_path(run_dir, split)
    if not path.exists():
        return None
    return read_tensors(path)["logits"].argmax(-1).numpy()


def run_health(run_dir: str | os.PathLike, metrics: dict[str, Any], num_classes: int | None = None, *,
               not_converged_share: float | None = NOT_CONVERGED_SHARE) -> Health:
    """:func:`assess` of a run folder: its ``metrics``, and its history and eval logits read from ``run_dir``."""
    if metrics.get("status") == DIVERGED:
        return assess(metrics, num_classes)
    split = str(metrics.get("split", "test"))
    k = num_classes if num_classes is not None else metrics.get("num_classes")
    return assess(metrics, k, predictions=eval_predictions(run_dir, split), history_top1=history_top1(run_dir, split),
                  not_converged_share=not_converged_share)


def configured_share(config: dict[str, Any] | None) -> float | None:
    """The config's ``health.not_converged_share`` (None: the check is off), :data:`NOT_CONVERGED_SHARE` when the
    config does not set it."""
    health = (config or {}).get("health") or {}
    return health.get("not_converged_share", NOT_CONVERGED_SHARE)
