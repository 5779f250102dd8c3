"""Claim 1, logit shift (Eq. 11): with a shared temperature the optimum is ``z = v + c(x)``.

Per run, the mean over test samples of ``σ(z − v)/σ(v)`` (:func:`lskd.claims.sample_stats.residual_spread`);
``θ`` = LS − raw, paired by seed; predicted ``θ > 0`` (raw students are closer to a pure per-sample shift of the
teacher). Figure: that statistic per student, and its per-sample distribution for the focus method.
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
class LogitShift(PairedClaim):
    id = "logit_shift"
    title = "Logit shift"
    paper = "Eq. 11"
    statement = ("With a shared temperature, a distilled student's logits approach the teacher's up to a per-sample "
                 "constant shift; a z-scored student is not held to that.")
    order = 10
    measure = Measure("residual_spread", "σ(z − v)/σ(v) (0 = a pure per-sample shift)", axis="σ(z − v) / σ(v)")

    def right(self, res: Results, sel: pd.DataFrame, ax: Axes) -> str:
        """(b) The per-sample distribution of σ(z − v)/σ(v) of the focus method's raw and z-score students."""
        import seaborn as sns

        from lskd.claims.plots import COLORS, focus_samples, focus_who
        from lskd.report.figures_common import setting_label

        focus = focus_samples(res)
        for label, run, s in focus:
            x = s["residual_spread"].to_numpy(np.float64)
            sns.histplot(x=x[np.isfinite(x)], bins=40, element="step", stat="density", fill=False,
                         color=COLORS[str(run["transform"])], label=f"{label} ({setting_label(run)})", ax=ax)
        ax.set(title="(b) per test sample", xlabel="σ(z − v) / σ(v)")
        if focus:
            ax.legend(fontsize=8)
        return (f"(b) Its distribution over the test samples ({focus_who(focus)}). 0 means the student is the "
                "teacher plus a per-sample constant.")
