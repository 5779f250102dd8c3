"""Run health: a run is ``ok``, ``collapsed`` (its accuracy is that of guessing) or ``diverged`` (its loss or
logits became non-finite, so it has no accuracy).

Collapse test: a classifier that ignores its input scores top-1 ``p = 1/K`` in expectation on a class-balanced
evaluation set of ``n`` images, with binomial standard error ``sqrt(p(1-p)/n)``. A run whose last-epoch top-1 is
at most ``p`` plus :data:`COLLAPSE_SE` standard errors is ``collapsed``: its accuracy is indistinguishable from
chance (on Fashion-MNIST's 10,000 test images: 10% + 0.9 points). Unhealthy runs are rows with their status in
every table, and never enter a selection or a verdict.
"""

from __future__ import annotations

import math
from typing import Any

STATUSES: tuple[str, ...] = ("ok", "collapsed", "diverged")
#: Standard errors above chance that still count as chance (one-sided, about 1 in 740 for a run at chance).
COLLAPSE_SE = 3.0


def chance_top1(num_classes: int) -> float:
    """Expected top-1 (%) of guessing on a class-balanced set of ``num_classes`` classes."""
    return 100.0 / num_classes


def collapse_threshold(num_classes: int, n: int) -> float:
    """Top-1 (%) at or below which a run on ``n`` images of ``num_classes`` classes counts as collapsed."""
    p = 1.0 / num_classes
    return 100.0 * (p + COLLAPSE_SE * math.sqrt(p * (1 - p) / max(n, 1)))


def run_status(metrics: dict[str, Any], num_classes: int | None) -> str:
    """``ok``, ``collapsed`` or ``diverged`` for one run's ``metrics.json`` (see the module docstring)."""
    if metrics.get("status") == "diverged":
        return "diverged"
    n = metrics.get("num_eval", metrics.get("num_test"))
    if not num_classes or not n or num_classes < 2:
        return "ok"
    return "collapsed" if float(metrics["last"]["top1"]) <= collapse_threshold(int(num_classes), int(n)) else "ok"
