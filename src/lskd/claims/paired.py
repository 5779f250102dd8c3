"""Claims that compare raw-logit and z-score students of the reported setting, paired by seed.

:class:`PairedClaim` holds the comparison: per pair and method and per seed ``s``, ``θ_s`` = raw − LS of the per-run
means over test samples of a distance to the teacher (its :class:`Measure`: one per-sample column for raw students,
one for z-score students, the same column when both arms are measured alike), tested over seeds by
:meth:`lskd.claims.base.Claim.tested`; and the figure that shows it: panel (a) the distance of every student, a line
joining the two students of a seed, panel (b) the claim's own (:meth:`PairedClaim.right`). Lower is closer to the
teacher, so ``θ > 0`` says the z-score students are closer.
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
    """What a paired claim compares: the per-sample columns of :func:`lskd.claims.sample_stats.claim_sample_stats`
    of the raw students (``raw``) and of the z-score students (``ls``), the ``statistic`` as ``claims.csv`` names
    it, the figure's ``axis`` label, and how the evidence and captions write each arm's quantity (``raw_label``,
    ``ls_label``; ``axis`` when empty)."""

    raw: str
    ls: str
    statistic: str
    axis: str
    raw_label: str = ""
    ls_label: str = ""

    def column(self, transform: str) -> str:
        return self.ls if transform == LS else self.raw


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


def by_seed(runs: Iterable[StudentRun]) -> dict[int, StudentRun]:
    return {int(r.key["seed"]): r for r in runs}


class PairedClaim(Claim):
    """A claim whose ``θ`` is raw − LS of its ``measure`` (class attributes), predicted above 0."""

    measure: ClassVar[Measure]
    digits: ClassVar[int] = 3
    direction: ClassVar[Direction] = "above"
    threshold: ClassVar[float] = 0.0

    @property
    def statistic(self) -> str:
        return self.measure.statistic

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        rows = []
        for pair, method, raw, ls in method_groups(data):
            scope = pair_scope(pair, method)
            if na := self.missing_arm(scope, raw, ls, self.statistic, "(unhealthy runs are left out of the audit: "
                                      "see Run health)"):
                rows.append(na)
                continue
            rows.append(self._paired(raw, ls, scope))
        return self.or_not_applicable(rows, "no distilled student in this results folder", self.statistic)

    def evidence(self, raw: list[StudentRun], ls: list[StudentRun], m_raw: float, m_ls: float) -> str:
        """The row's evidence before ``θ``: the two arms' means (claims may add secondary statistics)."""
        m, dg = self.measure, self.digits
        if m.raw == m.ls:
            return f"mean {m.axis}: raw students {m_raw:.{dg}f}, z-score students {m_ls:.{dg}f}"
        return (f"mean {m.raw_label or m.axis} of the raw students {m_raw:.{dg}f}, mean {m.ls_label or m.axis} of the "
                f"z-score students {m_ls:.{dg}f}")

    def _paired(self, raw: list[StudentRun], ls: list[StudentRun], scope: dict[str, str]) -> ClaimResult:
        """Raw − LS of the measured columns (per-run means over samples), one value per shared seed."""
        r, z = by_seed(raw), by_seed(ls)
        seeds = sorted(set(r) & set(z))
        if not seeds:
            return self.not_applicable(scope, "the raw and z-score students share no seed", self.statistic)
        ref = [nanmean(r[s].samples[self.measure.raw]) for s in seeds]
        val = [nanmean(z[s].samples[self.measure.ls]) for s in seeds]
        m_ref, m_val = float(np.mean(ref)), float(np.mean(val))
        return self.tested(scope, np.subtract(ref, val), statistic=self.statistic,
                           comparison="raw − z-score students, paired by seed", reference=m_ref, value=m_val,
                           threshold=self.threshold, direction=self.direction,
                           evidence=self.evidence([r[s] for s in seeds], [z[s] for s in seeds], m_ref, m_val),
                           digits=self.digits)

    # ------------------------------------------------------------------------------------------ figure
    def right(self, res: Results, sel: pd.DataFrame, ax: Axes) -> str:
        """Draw panel (b) on ``ax``; returns its caption."""
        raise NotImplementedError

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        """Panel (a): the measured column of each arm per run of the reported setting, raw vs z-score, paired by
        seed; panel (b): :meth:`right`. The caption starts with panel (a)'s means."""
        from lskd.claims.plots import claim_rows, methods_of, paired_means, paired_panel, selected_students, two_panels

        sel = selected_students(res)
        if claim_rows(res, self.id) is None or sel.empty:
            return None
        m = self.measure
        if m.raw not in sel or m.ls not in sel:
            return None
        sel = sel.assign(measured=np.where(sel["transform"] == LS, sel[m.ls], sel[m.raw]))
        fig, a, b = two_panels()
        paired_panel(a, sel, methods_of(res, sel), "measured", m.axis)
        a.set_title("(a) per run (mean over test samples)")
        look = self.right(res, sel, b)
        what = (f"{m.axis}" if m.raw == m.ls else
                f"{m.raw_label} for raw students, {m.ls_label} for z-score students")
        caption = (f"(a) One point per student of the reported setting: {what}, averaged over the test samples, "
                   f"raw (blue) and z-score (orange), a grey line joining the two students of a seed; means: "
                   f"{paired_means(res, sel, 'measured')}. Lower is closer to the teacher. {look}")
        return self.save_figure(fig, out_dir, caption)


__all__ = ["Measure", "PairedClaim", "by_seed", "method_groups"]
