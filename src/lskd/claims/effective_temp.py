"""Claim 6, effective temperature (Sec. 4, Algorithm 1): z-score is a per-sample temperature ``σ(v)·τ``, and it
varies across samples by more than one step of the grid's temperatures.

``θ`` = Q3/Q1 of σ(v) over the test samples, predicted ``θ > min ratio of adjacent grid temperatures``
(:func:`grid_step`); needs two or more fixed temperatures. One teacher per pair, so the interval is over test
samples. Figure: the per-sample effective temperatures of the teacher and a z-score student next to the grid's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lskd.analysis.stats import bootstrap_ci
from lskd.claims.base import LS, SAMPLE_BATCH, AuditConfig, Claim, pair_scope
from lskd.claims.data import AuditData
from lskd.claims.registry import register_claim
from lskd.claims.verdicts import ClaimResult, interval_text

if TYPE_CHECKING:
    from lskd.report.figures_common import Figure, Results


def grid_step(temperatures: Iterable[float]) -> float:
    """The smallest ratio between adjacent distinct temperatures of the grid (NaN with fewer than two)."""
    t = np.unique([float(x) for x in temperatures if x is not None and math.isfinite(float(x)) and float(x) > 0])
    return float(np.min(t[1:] / t[:-1])) if t.size >= 2 else math.nan


def _iqr_ratio_rows(x: np.ndarray) -> np.ndarray:
    q1, q3 = np.nanquantile(x, [0.25, 0.75], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(q1 > 0, q3 / q1, np.nan)


def _iqr_ratio_of(values: np.ndarray) -> Any:
    """Bootstrap statistic over samples: Q3/Q1 of the resampled ``values``."""
    return lambda idx: _iqr_ratio_rows(values[idx])


@register_claim
class EffectiveTemp(Claim):
    id = "effective_temp"
    title = "Effective temperature"
    paper = "Sec. 4, Algorithm 1"
    statement = ("Z-score is a per-sample temperature σ(v)·τ, and these temperatures vary across samples by more "
                 "than the grid's fixed temperatures do from one step to the next.")
    order = 60
    figure_subject = "z-score as a per-sample temperature"
    signed = False  # a ratio, compared with the grid step

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        stat = "Q3/Q1 of the teacher's per-sample effective temperature σ(v)·τ over the test samples"
        rows = []
        for pair in data.pairs():
            scope = pair_scope(pair)
            students = data.of_pair(pair)
            temps = sorted({float(s.key["temperature"]) for s in students if s.key["temperature"] is not None})
            step = grid_step(temps)
            if not math.isfinite(step):
                rows.append(self.not_applicable(scope, f"the grid has {len(temps)} fixed temperature(s); there is "
                                                "no grid step to compare the per-sample spread with", stat))
                continue
            sigma = students[0].samples["teacher_sigma"].to_numpy(np.float64)
            sigma = sigma[np.isfinite(sigma)]
            ci = bootstrap_ci(_iqr_ratio_of(sigma), len(sigma), n_boot=cfg.n_boot_samples, seed=cfg.seed,
                              batch=SAMPLE_BATCH)
            q1, q5, q3 = np.quantile(sigma, [0.25, 0.5, 0.75])
            ls = [s for s in students if s.key["transform"] == LS and s.key["selected"]]
            student_part = ""
            if ls:
                r = np.mean([_iqr_ratio_rows(s.samples["sigma"].to_numpy(np.float64)) for s in ls])
                student_part = f"; the selected z-score students' σ(z) has Q3/Q1 {r:.2f} (mean of {len(ls)} run(s))"
            teacher = data.teacher_of(pair)
            gap = (f"; z-score equals softmax at σ(v)·τ to {teacher.identity_gap:.1e} in probability"
                   if teacher is not None and math.isfinite(teacher.identity_gap) else "")
            evidence = (f"teacher σ(v): Q1 {q1:.2f}, median {q5:.2f}, Q3 {q3:.2f}, so at τ = 1 the middle half of "
                        f"the samples is softened at T_eff ∈ [{q1:.2f}, {q3:.2f}]; Q3/Q1 = "
                        f"{interval_text(ci, 2, signed=self.signed)} vs the grid step {step:.2f} (temperatures "
                        f"{', '.join(f'{t:g}' for t in temps)}){student_part}{gap}.")
            test = (f"one teacher: bootstrap 95% CI over its {len(sigma):,} test samples ({cfg.n_boot_samples:,} "
                    "resamples); compared with the grid step, not with zero")
            rows.append(self.result(scope, statistic=stat, comparison="spread vs the grid's temperature step",
                                    reference=step, value=ci.mean, ci=ci, threshold=step, direction="above",
                                    unit="test samples", test=test, evidence=evidence))
        return self.or_not_applicable(rows, "no distilled student in this results folder", stat)

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        import seaborn as sns

        from lskd.claims.plots import claim_rows, focus_samples
        from lskd.report.figures_common import new_figure, setting_label

        rows = claim_rows(res, self.id)
        focus = [f for f in focus_samples(res) if f[1]["transform"] == LS]
        if rows is None or not focus:
            return None
        label, run, samples = focus[0]
        tau = float(run["effective_temperature"])
        medians = []
        fig = new_figure(8.5, 4.0)
        ax = fig.subplots()
        for name, col, color in (("teacher σ(v)·τ", "teacher_sigma", "tab:green"),
                                 (f"{label} σ(z)·τ", "sigma", "tab:orange")):
            x = samples[col].to_numpy(np.float64) * tau
            x = x[np.isfinite(x) & (x > 0)]
            medians.append(f"{name} {np.median(x):.2f}" if x.size else f"{name} —")
            sns.histplot(x=x, bins=50, log_scale=True, element="step", stat="density", fill=False, color=color,
                         label=name, ax=ax)
        temps = sorted(res.distill["temperature"].dropna().unique())
        for i, t in enumerate(temps):
            ax.axvline(t, color="black", ls="--", lw=1, label="grid temperatures" if i == 0 else None)
        ax.set(xlabel="effective temperature", title=f"per-sample temperatures of z-score at τ = {tau:g} "
               f"({setting_label(run)})")
        ax.legend(fontsize=8)
        look = (f"Histograms over the {len(samples)} test samples of the per-sample effective temperatures of the "
                f"teacher and of the {label} ({setting_label(run)}) at its base temperature τ = {tau:g} (log scale; "
                f"medians: {', '.join(medians)}); dashed lines: the fixed temperatures of the grid "
                f"({', '.join(f'{t:g}' for t in temps)}).")
        return self.save_figure(fig, out_dir, look)
