"""Claim 2, variance match (Eq. 12): KD drives ``σ(z)/σ(v)`` to 1, z-score leaves it free.

Per run, the mean over test samples of ``|log σ(z)/σ(v)|`` (:func:`lskd.claims.sample_stats.abs_log_std_ratio`);
``θ`` = LS − raw, paired by seed; predicted ``θ > 0``. Figure: that statistic per student, and the per-sample
``σ(z)/σ(v)`` of each method's smallest-seed students.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lskd.claims.paired import Measure, PairedClaim
from lskd.claims.registry import register_claim

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lskd.report.figures_common import Results


@register_claim
class VarianceMatch(PairedClaim):
    id = "variance_match"
    title = "Variance match"
    paper = "Eq. 12"
    statement = ("Vanilla KD pushes the student/teacher logit std ratio σ(z)/σ(v) toward 1; with z-score the ratio "
                 "is free.")
    measure = Measure("abs_log_std_ratio", "|log σ(z)/σ(v)| (0 = equal std)", axis="|log σ(z)/σ(v)|")
    order = 20

    def right(self, res: Results, sel: pd.DataFrame, ax: Axes) -> str:
        """(b) Per-sample σ(z)/σ(v) of each method's smallest-seed students."""
        import seaborn as sns

        from lskd.claims.plots import COLORS, TRANSFORMS, methods_of
        from lskd.report.figures_common import method_label, transform_label

        frames = []
        first = sel[sel.groupby(["method", "transform"])["seed"].transform("min") == sel["seed"]]
        for r in first.itertuples(index=False):
            stats = res.stats(r.run_dir)
            if "std_ratio" in stats:
                frames.append(pd.DataFrame({"method": method_label(r.method), "logits": transform_label(r.transform),
                                            "ratio": stats["std_ratio"].to_numpy(np.float64)}))
        if frames:
            data = pd.concat(frames)
            data = data[np.isfinite(data["ratio"]) & (data["ratio"] > 0)]
            sns.boxplot(data, x="method", y="ratio", hue="logits", log_scale=True, fliersize=1,
                        order=[method_label(m) for m in methods_of(res, sel)],
                        palette={transform_label(t): COLORS[t] for t in TRANSFORMS}, ax=ax)
        ax.axhline(1.0, color="black", ls="--", lw=1)
        ax.set(title="(b) σ(z)/σ(v) per test sample (smallest seed)", ylabel="σ(z) / σ(v)", xlabel="")
        return ("(b) Per-sample σ(z)/σ(v) of each method's smallest-seed student (boxes: quartiles, log scale); the "
                "dashed line is σ(z) = σ(v).")
