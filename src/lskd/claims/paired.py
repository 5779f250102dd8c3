"""Claims that compare raw-logit and z-score students of the reported setting, paired by seed (claims 1–3).

:class:`PairedClaim` holds the comparison: per pair and method, ``θ`` = LS − raw of the per-run mean over test
samples of one per-sample statistic (its :class:`Measure`), paired by seed, with its bootstrap interval over seeds
(two or more) or over test samples (one seed, paired per sample); and the figure that shows it: panel (a) the statistic of
every student, a line joining the two students of a seed, panel (b) the claim's own (:meth:`PairedClaim.right`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from lskd.claims.base import (
    LS,
    RAW,
    AuditConfig,
    Claim,
    nanmean,
    pair_scope,
)
from lskd.claims.data import AuditData, StudentRun
from lskd.claims.verdicts import ClaimResult, Direction

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lskd.report.figures_common import Figure, Results

class Measure(NamedTuple):
    """What a paired claim compares: a per-sample ``column`` of :func:`lskd.claims.sample_stats.claim_sample_stats`,
    the ``statistic`` as ``claims.csv`` names it, and the figure's ``axis`` label for it."""

    column: str
    statistic: str
    axis: str


Group = tuple[tuple[str, str, str], str, list[StudentRun], list[StudentRun]]


def method_groups(data: AuditData) -> list[Group]:
    """``(pair, method, raw students, z-score students)`` of the reported setting, KD first."""
    out = []
    for pair in data.pairs():
        runs = [s for s in data.of_pair(pair) if s.key["selected"]]
        for method in sorted({str(s.key["method"]) for s in runs}, key=lambda m: (m != "kd", m)):
            of = [s for s in runs if s.key["method"] == method]
            out.append((pair, method, [s for s in of if s.key["transform"] == RAW],
                        [s for s in of if s.key["transform"] == LS]))
    return out


def _by_seed(runs: Iterable[StudentRun]) -> dict[int, StudentRun]:
    return {int(r.key["seed"]): r for r in runs}


class PairedClaim(Claim):
    """A claim whose ``θ`` is LS − raw of its ``measure`` (class attributes), predicted ``direction`` of
    :meth:`margin`'s threshold (0 unless overridden)."""

    measure: ClassVar[Measure]
    digits: ClassVar[int] = 3
    direction: ClassVar[Direction] = "above"

    def margin(self, samples: pd.DataFrame) -> tuple[float, str]:
        """``(threshold, evidence suffix)`` given a raw student's per-sample table."""
        return 0.0, ""

    @property
    def statistic(self) -> str:
        return self.measure.statistic

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        rows = []
        for pair, method, raw, ls in method_groups(data):
            scope = pair_scope(pair, method)
            if not raw or not ls:
                missing = "raw-logit" if not raw else "z-score"
                rows.append(self.not_applicable(scope, f"no healthy {missing} {method.upper()} student (unhealthy "
                                                "runs are left out of the audit: see Run health)", self.statistic))
                continue
            threshold, extra = self.margin(raw[0].samples)
            rows.append(self._paired(raw, ls, scope, cfg, threshold, extra))
        return self.or_not_applicable(rows, "no distilled student in this results folder", self.statistic)

    def _paired(self, raw: list[StudentRun], ls: list[StudentRun], scope: dict[str, str], cfg: AuditConfig,
                threshold: float, extra: str) -> ClaimResult:
        """LS − raw of the measured column (per-run mean over samples), paired by seed; one seed → paired per
        sample."""
        r, z = _by_seed(raw), _by_seed(ls)
        seeds = sorted(set(r) & set(z))
        if not seeds:
            return self.not_applicable(scope, "the raw and z-score students share no seed", self.statistic)
        col = self.measure.column
        ref = [nanmean(r[s].samples[col]) for s in seeds]
        val = [nanmean(z[s].samples[col]) for s in seeds]
        m_ref, m_val, dg = float(np.mean(ref)), float(np.mean(val)), self.digits
        evidence = f"mean {self.statistic}: raw {m_ref:.{dg}f}, z-score {m_val:.{dg}f}{extra}"
        return self.tested(scope, np.subtract(val, ref), unit="seeds", statistic=self.statistic,
                           comparison="z-score − raw students, paired by seed", reference=m_ref, value=m_val,
                           threshold=threshold, direction=self.direction, evidence=evidence, digits=dg)

    # ------------------------------------------------------------------------------------------ figure
    def right(self, res: Results, sel: pd.DataFrame, ax: Axes) -> str:
        """Draw panel (b) on ``ax``; returns its caption."""
        raise NotImplementedError

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        """Panel (a): ``measure.column`` per run of the reported setting, raw vs z-score, paired by seed; panel (b):
        :meth:`right`. The caption starts with panel (a)'s means."""
        from lskd.claims.plots import claim_rows, methods_of, paired_means, paired_panel, selected_students, two_panels

        sel = selected_students(res)
        if claim_rows(res, self.id) is None or sel.empty:
            return None
        fig, a, b = two_panels()
        column, axis = self.measure.column, self.measure.axis
        paired_panel(a, sel, methods_of(res, sel), column, axis)
        a.set_title(f"(a) {axis}, per run (mean over test samples)")
        look = self.right(res, sel, b)
        caption = (f"(a) One point per student of the reported setting: {axis} averaged over the test samples, "
                   f"raw (blue) and z-score (orange), a grey line joining the two students of a seed; means: "
                   f"{paired_means(res, sel, column)}. {look}")
        return self.save_figure(fig, out_dir, caption)


__all__ = ["Measure", "PairedClaim", "method_groups"]
