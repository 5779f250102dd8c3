"""Claim 4, authentic evaluation (§4.3.1, the toy case): across all students of a pair, the z-scored KL ranks them
by accuracy better than the shared-temperature KL.

Per seed, Spearman ρ(−KL, accuracy) among that seed's students with z-scored and with raw KL (both at T = 1);
``θ`` = ρ_z − ρ_raw, predicted ``θ > 0``; the interval is over seeds, or over the students of the one seed.
Figure: accuracy against both KLs, one point per student.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lskd.analysis.logit_stats import rowwise_spearman
from lskd.analysis.stats import bootstrap_ci, paired_bootstrap_ci
from lskd.claims.base import SAMPLE_BATCH, AuditConfig, Claim, pair_scope, sample_test, seed_test
from lskd.claims.data import AuditData, run_claims_table
from lskd.claims.registry import register_claim
from lskd.claims.verdicts import ClaimResult, interval_text

if TYPE_CHECKING:
    from lskd.report.figures_common import Figure, Results


def _agreement(kl: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Spearman ρ(−KL, accuracy) per row of ``(B, n)`` arrays (1 = the KL ranks the students by accuracy)."""
    return rowwise_spearman(-kl, acc)


def _agreement_gain(kl: np.ndarray, kl_z: np.ndarray, acc: np.ndarray) -> Any:
    """Bootstrap statistic over students: ``ρ(−KL_z, acc) − ρ(−KL, acc)`` of the resampled students."""
    return lambda idx: _agreement(kl_z[idx], acc[idx]) - _agreement(kl[idx], acc[idx])


@register_claim
class AuthenticEval(Claim):
    id = "authentic_eval"
    title = "Authentic evaluation"
    paper = "Sec. 4.3.1"
    statement = ("The KL under a shared temperature can disagree with accuracy across students; the z-scored KL "
                 "agrees better.")
    order = 40

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        rows = []
        stat = "Spearman ρ(−KL, accuracy) over the students, z-scored minus shared-temperature KL (T = 1)"
        table = run_claims_table(data)
        for pair in data.pairs():
            scope = pair_scope(pair, "all")
            sub = table[(table["dataset"] == pair[0]) & (table["teacher"] == pair[1]) & (table["student"] == pair[2])]
            per_seed = {}
            for seed, g in sub.groupby("seed", sort=True):
                if len(g) >= 3 and g["accuracy"].nunique() > 1:
                    a_raw = float(_agreement(g["kl_t1"].to_numpy()[None], g["accuracy"].to_numpy()[None])[0])
                    a_z = float(_agreement(g["kl_t1_zscore"].to_numpy()[None], g["accuracy"].to_numpy()[None])[0])
                    if math.isfinite(a_raw) and math.isfinite(a_z):
                        per_seed[int(seed)] = (a_raw, a_z, g)
            if not per_seed:
                rows.append(self.not_applicable(scope, "fewer than 3 students with different accuracies per seed: "
                                                "no rank correlation to compare", stat))
                continue
            a_raw = float(np.mean([v[0] for v in per_seed.values()]))
            a_z = float(np.mean([v[1] for v in per_seed.values()]))
            size = int(np.mean([len(v[2]) for v in per_seed.values()]))
            if len(per_seed) >= 2:
                ci = paired_bootstrap_ci([v[1] - v[0] for v in per_seed.values()], n_boot=cfg.n_boot, seed=cfg.seed)
                unit, test = "seeds", seed_test(len(per_seed), cfg.n_boot)
            else:
                g = next(iter(per_seed.values()))[2]
                kl, klz, acc = (g[c].to_numpy(np.float64) for c in ("kl_t1", "kl_t1_zscore", "accuracy"))
                ci = bootstrap_ci(_agreement_gain(kl, klz, acc), len(g), n_boot=cfg.n_boot_samples, seed=cfg.seed,
                                  batch=SAMPLE_BATCH)
                unit, test = "students", sample_test(len(g), cfg.n_boot_samples, "students of the seed")
            evidence = (f"ρ(−KL, accuracy) over ~{size} students per seed: shared-temperature KL {a_raw:+.2f}, "
                        f"z-scored KL {a_z:+.2f}; difference {interval_text(ci, 2)} (n={ci.n} {unit}).")
            rows.append(self.result(scope, statistic=stat, comparison="ρ with z-scored KL − ρ with raw KL",
                                    reference=a_raw, value=a_z, ci=ci, threshold=0.0, direction="above", unit=unit,
                                    test=test, evidence=evidence))
        return self.or_not_applicable(rows, "no distilled student in this results folder", stat)

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        import seaborn as sns

        from lskd.claims.plots import claim_rows, claims_tables, two_panels
        from lskd.report.figures_common import method_label, transform_label

        rows = claim_rows(res, self.id)
        _, per_run = claims_tables(res)
        if rows is None or per_run.empty:
            return None
        fig, a, b = two_panels()
        data = per_run.assign(method=per_run["method"].map(method_label),
                              logits=per_run["transform"].map(transform_label))
        panels = ((a, "kl_t1", "(a) shared-temperature KL (T = 1)"), (b, "kl_t1_zscore", "(b) z-scored KL"))
        for ax, col, name in panels:
            sns.scatterplot(data, x=col, y="accuracy", hue="method", style="logits", s=40, ax=ax, legend=ax is b)
            ax.set(xscale="log", title=name, xlabel="KL(teacher ‖ student), mean over test samples",
                   ylabel="student test top-1 (%)")
        if b.get_legend() is not None:
            sns.move_legend(b, "center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
        acc = per_run["accuracy"]
        look = (f"One point per student (every method, transform, setting and seed; n={len(per_run)}, top-1 "
                f"{acc.min():.1f}% to {acc.max():.1f}%): its top-1 against its mean KL(teacher ‖ student) over the "
                "test samples (log scale), (a) at T = 1 on the raw logits, (b) after z-scoring both. A KL that "
                "evaluates students authentically falls as accuracy rises.")
        return self.save_figure(fig, out_dir, look)
