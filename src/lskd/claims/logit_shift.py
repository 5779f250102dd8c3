"""Claim 1, logit shift (Eq. 11): with a shared temperature the optimum of KD is ``z = v + c(x)``; the LS
loss's optimum is any ``z = a(x)·v + b(x)`` (``a > 0``). Which arm gets closer to the optimum its own loss defines?

Each arm's residual removes only what the paper says its loss leaves free, per test sample ``i``:

* raw students: ``R_raw = mean_i σ(z_i − v_i) / σ(v_i)`` (:func:`lskd.claims.sample_stats.residual_spread`): the
  per-sample shift is removed, a scale mismatch is not (Eq. 11);
* z-score students: ``R_LS = mean_i σ(ẑ_i − v̂_i)`` (:func:`lskd.claims.sample_stats.zscore_residual`), with
  ``ẑ``, ``v̂`` the z-scored logits: shift and scale removed; ``σ(v̂) = 1``, so both residuals are on the teacher's
  scale.

``θ_s = R_raw,s − R_LS,s`` per seed (paired); predicted ``θ > 0``: the paper's argument is that the LS student is
freed from matching the teacher's magnitude, so it gets closer to its (wider) optimum set than the raw student to
its own. Not true by construction: a raw student that reaches ``z = v + c`` has ``R_raw = 0`` and the claim fails.

How this differs from claim 3 (relations): there both arms are measured on the same z-scored yardstick (the
softmax-weighted KL of the standardized logits), so a raw student's scale mismatch is forgiven; here the raw arm is
charged for it, because Eq. 11 says its loss asks for the teacher's scale. Figure: each arm's residual per student,
and its per-sample distribution for the focus method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lskd.claims.base import LS
from lskd.claims.paired import Measure, PairedClaim
from lskd.claims.registry import register_claim

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lskd.report.figures_common import Results


@register_claim
class LogitShift(PairedClaim):
    """With a shared temperature a distilled student's optimum is the teacher's logits plus a per-sample shift
    (Eq. 11); the z-score loss also frees the scale, so LS students end closer to their own optimum than
    raw-logit students to theirs."""

    title = "Logit shift"
    paper = "Eq. 11"
    order = 10
    measure = Measure("residual_spread", "zscore_residual",
                      "R_raw − R_LS: residual to each arm's optimum, σ(z − v)/σ(v) (raw) vs σ(ẑ − v̂) (z-score)",
                      axis="residual to the arm's optimum", raw_label="σ(z − v)/σ(v)", ls_label="σ(ẑ − v̂)")

    def right(self, res: Results, sel: pd.DataFrame, ax: Axes) -> str:
        """(b) The per-sample residual of the focus method's raw and z-score students."""
        import seaborn as sns

        from lskd.claims.plots import COLORS, focus_samples, focus_who
        from lskd.report.figures_common import setting_label

        focus = focus_samples(res)
        for label, run, s in focus:
            x = s[self.measure.column(str(run["transform"]))].to_numpy(np.float64)
            name = self.measure.ls_label if run["transform"] == LS else self.measure.raw_label
            sns.histplot(x=x[np.isfinite(x)], bins=40, element="step", stat="density", fill=False,
                         color=COLORS[str(run["transform"])], label=f"{label}: {name} ({setting_label(run)})", ax=ax)
        ax.set(title="(b) per test sample", xlabel="residual to the arm's optimum")
        if focus:
            ax.legend(fontsize=8)
        return (f"(b) Its distribution over the test samples ({focus_who(focus)}). 0 means the raw student is the "
                "teacher plus a per-sample constant, or the z-score student an increasing affine map of the teacher.")
