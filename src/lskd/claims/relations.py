"""Claim 3, relations preserved (Sec. 4): z-score students keep the teacher's class ranking at least as well.

Per run, the mean over test samples of Kendall's tau-b of ``z`` with ``v``; ``θ`` = LS − raw, paired by seed;
predicted ``θ > −δ`` with the non-inferiority margin ``δ = 4 / (K(K − 1))`` (:func:`kendall_margin`), the change
of tau-b from swapping one class pair per sample. Spearman and top-k overlap differences are quoted in the evidence.
Figure: Kendall tau-b and top-k overlap per student, paired by seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lskd.claims.base import LS, RAW, AuditConfig, nanmean
from lskd.claims.data import AuditData
from lskd.claims.paired import Measure, PairedClaim
from lskd.claims.registry import register_claim
from lskd.claims.verdicts import NOT_APPLICABLE, ClaimResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lskd.report.figures_common import Results


def kendall_margin(num_classes: int) -> float:
    """``4 / (K(K − 1))``: how much Kendall's tau-b (no ties) drops when one of the ``K(K−1)/2`` class pairs of a
    sample is swapped; the non-inferiority margin of the claim."""
    return 4.0 / (num_classes * (num_classes - 1))


@register_claim
class Relations(PairedClaim):
    id = "relations"
    title = "Relations preserved"
    paper = "Sec. 4"
    statement = "Z-scored students keep the teacher's ranking of the classes at least as well as raw-logit students."
    order = 30
    figure_subject = "relations preserved"
    measure = Measure("kendall", "Kendall tau-b of z with v", axis="Kendall tau-b with the teacher")

    def margin(self, samples: pd.DataFrame) -> tuple[float, str]:
        k = int(samples.attrs["num_classes"])
        delta = kendall_margin(k)
        return -delta, f"; margin δ = 4/(K(K−1)) = {delta:.4f} (one swapped class pair, K={k})"

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        return [self._with_secondary(r, data) for r in super().check(data, cfg)]

    @staticmethod
    def _with_secondary(row: ClaimResult, data: AuditData) -> ClaimResult:
        if row.verdict == NOT_APPLICABLE:
            return row
        pair = (row.dataset, row.teacher, row.student)
        runs = [s for s in data.of_pair(pair) if s.key["selected"] and s.key["method"] == row.method]
        parts = []
        for col, label in (("spearman", "Spearman"), ("topk_overlap", "top-k overlap")):
            means = {t: np.mean([nanmean(s.samples[col]) for s in runs if s.key["transform"] == t]) for t in (RAW, LS)}
            parts.append(f"{label} raw {means[RAW]:.3f} vs z-score {means[LS]:.3f}")
        k = runs[0].samples.attrs.get("top_k", "") if runs else ""
        evidence = row.evidence.rstrip(".") + f"; {'; '.join(parts)} (k={k})."
        return ClaimResult(**{**row.as_row(), "evidence": evidence})

    def right(self, res: Results, sel: pd.DataFrame, ax: Axes) -> str:
        """(b) The top-k overlap with the teacher of the same students."""
        from lskd.claims.plots import methods_of, paired_means, paired_panel

        look = (f"(b) The same students' overlap of their top-k classes with the teacher's "
                f"({paired_means(res, sel, 'topk_overlap') if 'topk_overlap' in sel else 'not computed'}). "
                "Higher is closer to the teacher in both panels.")
        paired_panel(ax, sel, methods_of(res, sel), "topk_overlap", "top-k overlap")
        k = int(sel["top_k"].iloc[0]) if "top_k" in sel and len(sel) else 0
        ax.set_title(f"(b) top-{k} classes shared with the teacher")
        return look
