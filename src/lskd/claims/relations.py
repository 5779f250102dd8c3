"""Claim 3, relations (Sec. 4): z-score is order preserving and keeps the teacher's inter-class relations, so
z-score students match the teacher's *standardized* logits better than raw-logit students do.

The distance is the paper's own standardized one: the KL between the softmaxes of the z-scored logits (the LS loss
without its weight, at the toy case's T = 1, Sec. 4.3.1), per test sample ``i``
``KL_z,i = Σ_k p̂_ik log(p̂_ik / q̂_ik)`` with ``p̂_i = softmax(v̂_i)``, ``q̂_i = softmax(ẑ_i)`` and ``ẑ``, ``v̂`` the
z-scored student and teacher logits (:func:`lskd.claims.sample_stats.shared_and_zscored_kl`, column
``kl_t1_zscore``). Per run its mean over the test samples; ``θ_s = KL_z(raw student, s) − KL_z(LS student, s)``,
paired by seed; predicted ``θ > 0`` (better, threshold 0: no non-inferiority margin, so nothing depends on K).
A raw student at its own optimum ``z = v + c`` has ``KL_z = 0`` too, so the verdict is not fixed by construction;
the LS students are trained on this KL (at their base temperature τ, with CE), which is the paper's point: the
standardized relations are what its loss asks the student for.

Why not the squared distance ``D = mean_i mean_k (ẑ_ik − v̂_ik)²``: ``D = (K − 1)/K · mean_i σ(ẑ_i − v̂_i)²``, the
z-score arm of claim 1 (logit shift) up to a monotone map, so the two claims would test nearly the same number.
``KL_z`` weights each class by the teacher's standardized probability (the relations a softened teacher conveys:
the top classes count most), while claim 1 weights every class alike and charges raw students for their scale.
Kendall's tau-b (the pure order, every class pair alike), Spearman and top-k overlap are quoted as secondary
evidence. Figure: ``KL_z`` and Kendall tau-b per student, paired by seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lskd.claims.base import nanmean
from lskd.claims.data import StudentRun
from lskd.claims.paired import Measure, PairedClaim
from lskd.claims.registry import register_claim

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lskd.report.figures_common import Results

SECONDARY = (("kendall", "Kendall tau-b"), ("spearman", "Spearman"), ("topk_overlap", "top-k overlap"))


@register_claim
class Relations(PairedClaim):
    """Z-score standardization keeps the teacher's inter-class relations: z-scored students are closer to the
    teacher's standardized logits (KL of the z-scored softmaxes) than raw-logit students."""

    title = "Relations preserved"
    paper = "Sec. 4"
    order = 30
    figure_subject = "relations preserved (Sec. 4)"
    measure = Measure("kl_t1_zscore", "kl_t1_zscore",
                      "KL_z(raw) − KL_z(LS): KL(softmax(v̂) ‖ softmax(ẑ)) of the z-scored logits, T = 1",
                      axis="KL(softmax(v̂) ‖ softmax(ẑ)), T = 1")
    digits = 4

    def evidence(self, raw: list[StudentRun], ls: list[StudentRun], m_raw: float, m_ls: float) -> str:
        parts = []
        for col, label in SECONDARY:
            r = np.mean([nanmean(s.samples[col]) for s in raw])
            z = np.mean([nanmean(s.samples[col]) for s in ls])
            parts.append(f"{label} raw {r:.3f} vs z-score {z:.3f}")
        k = raw[0].samples.attrs.get("top_k", "") if raw else ""
        return (f"{super().evidence(raw, ls, m_raw, m_ls)}; secondary (higher is closer): {'; '.join(parts)} "
                f"(k={k})")

    def right(self, res: Results, sel: pd.DataFrame, ax: Axes) -> str:
        """(b) Kendall tau-b with the teacher of the same students."""
        from lskd.claims.plots import methods_of, paired_means, paired_panel

        look = (f"(b) The same students' Kendall tau-b with the teacher, the pure class order (secondary evidence; "
                f"higher is closer: {paired_means(res, sel, 'kendall') if 'kendall' in sel else 'not computed'}).")
        paired_panel(ax, sel, methods_of(res, sel), "kendall", "Kendall tau-b with the teacher")
        ax.set_title("(b) Kendall tau-b of z with v")
        return look
