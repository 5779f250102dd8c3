"""Claim 5, teacher size (Fig. 5a): larger teachers have smaller logit std and a mean closer to 0.

Across the dataset's teachers, Spearman ρ(parameters, mean σ(v)) and ρ(parameters, mean |m(v)|); ``θ`` = the
larger of the two, predicted ``θ < 0``; needs two or more teachers. One run per teacher, so the interval is over
test samples (every teacher sees the same resampled samples). Figure: each teacher's σ(v) and |m(v)| against its
size.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lskd.analysis.logit_stats import rowwise_spearman
from lskd.analysis.stats import bootstrap_ci
from lskd.claims.base import SAMPLE_BATCH, AuditConfig, Claim
from lskd.claims.data import AuditData
from lskd.claims.registry import register_claim
from lskd.claims.verdicts import ClaimResult, interval_text

if TYPE_CHECKING:
    from lskd.report.figures_common import Figure, Results


def _size_correlations(size: np.ndarray, sigma: np.ndarray, abs_mean: np.ndarray) -> Any:
    """Bootstrap statistic over test samples: ``(ρ(size, mean σ), ρ(size, mean |m|))`` across teachers, with
    ``sigma``/``abs_mean`` of shape ``(teachers, samples)``; every teacher sees the same resampled samples."""
    def rhos(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = np.stack([np.nanmean(row[idx], axis=1) for row in sigma], axis=1)
        m = np.stack([np.nanmean(row[idx], axis=1) for row in abs_mean], axis=1)
        sizes = np.broadcast_to(size, s.shape)
        return rowwise_spearman(sizes, s), rowwise_spearman(sizes, m)

    return rhos


def _larger_of(pair_stat: Any) -> Any:
    """The elementwise maximum of a statistic returning two arrays (both below 0 ⇔ the maximum is)."""
    return lambda idx: np.maximum(*pair_stat(idx))


@register_claim
class TeacherSize(Claim):
    """Larger teachers produce logits with a smaller standard deviation and a mean closer to 0."""

    title = "Teacher size"
    paper = "Fig. 5a"
    order = 50

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        stat = "max of Spearman ρ(parameters, mean σ(v)) and ρ(parameters, mean |m(v)|) across teachers"
        datasets = sorted({t.dataset for t in data.teachers} | {s.pair[0] for s in data.students})
        rows = []
        for dataset in datasets:
            teachers = [t for t in data.teachers if t.dataset == dataset]
            scope = {"dataset": dataset, "teacher": ", ".join(t.name for t in teachers), "student": "", "method": ""}
            if len({t.model for t in teachers}) < 2:
                names = ", ".join(sorted({t.name for t in teachers})) or "none collected"
                rows.append(self.not_applicable(scope, f"the config has one teacher ({names}); the claim compares "
                                                "teachers of different sizes", stat))
                continue
            if len({t.targets_digest for t in teachers}) > 1 or len({len(t.samples) for t in teachers}) > 1:
                rows.append(self.not_applicable(scope, "the teachers were evaluated on different test samples, so "
                                                "they cannot be compared sample by sample", stat))
                continue
            size = np.array([t.num_params for t in teachers], dtype=np.float64)
            if not np.isfinite(size).all() or np.unique(size).size < 2:
                rows.append(self.not_applicable(scope, "the teachers' parameter counts are unknown or equal", stat))
                continue
            sig = np.stack([t.samples["teacher_sigma"].to_numpy(np.float64) for t in teachers])
            avg = np.stack([t.samples["teacher_abs_mean"].to_numpy(np.float64) for t in teachers])

            rhos = _size_correlations(size, sig, avg)
            ci = bootstrap_ci(_larger_of(rhos), sig.shape[1], n_boot=cfg.n_boot_samples, seed=cfg.seed,
                              batch=SAMPLE_BATCH)
            r_std, r_mean = (float(x[0]) for x in rhos(np.arange(sig.shape[1])[None]))
            acc = np.array([t.accuracy for t in teachers])
            r_acc = float(rowwise_spearman(size[None], acc[None])[0])
            listing = "; ".join(f"{t.name} ({t.num_params:,.0f} params, {t.accuracy:.1f}%): σ {np.nanmean(s):.2f}, "
                                f"|m| {np.nanmean(m):.2f}" for t, s, m in zip(teachers, sig, avg))
            evidence = (f"{listing}. ρ(parameters, σ) = {r_std:+.2f}, ρ(parameters, |m|) = {r_mean:+.2f}; the "
                        f"larger of the two {interval_text(ci, 2)}; size and accuracy rank the teachers with "
                        f"ρ = {r_acc:+.2f}.")
            test = (f"{len(teachers)} teachers, one run each: paired bootstrap 95% CI over the {sig.shape[1]:,} test "
                    f"samples ({cfg.n_boot_samples:,} resamples); architecture-to-architecture variation is not "
                    "captured")
            rows.append(self.result(scope, statistic=stat, comparison="rank correlation with teacher size",
                                    reference=r_std, value=r_mean, ci=ci, threshold=0.0, direction="below",
                                    unit="test samples", test=test, evidence=evidence))
        return self.or_not_applicable(rows, "no teacher run in this results folder", stat)

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        from lskd.claims.plots import claim_rows, two_panels

        rows = claim_rows(res, self.id)
        teachers = res.runs[res.runs["role"] == "teacher"]
        if rows is None or len(teachers) < 2:
            return None
        points = []
        for r in teachers.itertuples(index=False):
            stats = res.stats(r.run_dir)
            points.append({"teacher": r.teacher, "params": r.num_params, "std": stats["std"].to_numpy(np.float64),
                           "abs_mean": np.abs(stats["mean"].to_numpy(np.float64))})
        fig, a, b = two_panels()
        for ax, key, label in ((a, "std", "logit std σ(v)"), (b, "abs_mean", "|logit mean| |m(v)|")):
            for p in points:
                q1, q3 = np.nanquantile(p[key], [0.25, 0.75])
                ax.errorbar(p["params"], np.nanmean(p[key]), yerr=[[max(np.nanmean(p[key]) - q1, 0)],
                            [max(q3 - np.nanmean(p[key]), 0)]], fmt="o", capsize=3)
                ax.annotate(str(p["teacher"]), (p["params"], np.nanmean(p[key])), fontsize=8, xytext=(4, 4),
                            textcoords="offset points")
            ax.set(xscale="log", xlabel="teacher parameters", ylabel=label,
                   title=f"({'a' if ax is a else 'b'}) {label}")
        values = ", ".join(f"{p['teacher']} σ(v) {np.nanmean(p['std']):.2f}, |m(v)| {np.nanmean(p['abs_mean']):.2f}"
                           for p in points)
        look = (f"One point per teacher (n={len(points)}): (a) the logit std σ(v) and (b) the absolute logit mean "
                f"|m(v)|, averaged over the test samples, against the teacher's parameters (log scale); bars: the "
                f"interquartile range over samples. Means: {values}.")
        return self.save_figure(fig, out_dir, look)
