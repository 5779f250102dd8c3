"""Claim 4, authentic evaluation (Sec. 4.3.1, the toy case): the KL under a shared temperature can call a student
that predicts the wrong class closer to the teacher than one that predicts the right class (4 classes, T = 1:
KL 0.1749 for the wrong student S1, 0.3457 for the right one S2); after z-scoring both, S2's KL is 0 and S1's
0.0995. The z-scored KL measures what the student got right; the shared-temperature KL also charges magnitude.

Tested per test sample within one student, never across students: across students, each was trained to minimise
one of the two KLs, so a correlation over students would mix objectives with quality. For one run (pair, method,
transform, seed of the reported setting) with per-sample ``KL_raw = KL(softmax(v) ‖ softmax(z))`` and ``KL_z`` the
same after z-scoring both (both at T = 1, :data:`lskd.claims.sample_stats.EVAL_TEMPERATURE`), and ``correct`` =
``argmax z == y``:

``AUC(s) = P(s_i > s_j | i correct, j wrong) + ½ P(s_i = s_j)`` with score ``s = −KL`` (Mann–Whitney: from the
average ranks ``R`` of the ``n₁`` correct among all ``n₁ + n₀`` samples, ``AUC = (Σ R − n₁(n₁+1)/2) / (n₁ n₀)``,
:func:`auc_correct`), and ``d_run = AUC(−KL_z) − AUC(−KL_raw)``: how much better the z-scored KL tells the run's
right predictions from its wrong ones.

``θ_s`` = the mean of ``d_run`` over the raw-logit student and the z-score student of seed ``s`` (both arms are
required). The raw student was trained to minimise a shared-temperature KL and the LS student a z-scored one, so
each arm may favour its own KL; giving the two arms equal weight in every seed keeps either training objective from
deciding the sign, and keeps one row per pair and method. The evidence shows each arm's mean ``d`` so a result that
holds in one arm only is visible. Predicted ``θ > 0``, threshold 0; the interval is over seeds
(:meth:`lskd.claims.base.Claim.tested`). Figure: the two AUCs of every run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as sps

from lskd.claims.base import LS, RAW, AuditConfig, Claim, pair_scope
from lskd.claims.data import AuditData, StudentRun
from lskd.claims.paired import method_groups
from lskd.claims.registry import register_claim
from lskd.claims.verdicts import ClaimResult

if TYPE_CHECKING:
    from lskd.report.figures_common import Figure, Results


def auc_correct(score: np.ndarray, correct: np.ndarray) -> float:
    """Mann–Whitney AUC of ``score`` for telling ``correct`` samples from wrong ones: ``P(s_correct > s_wrong)``,
    ties counted ½, from average ranks (:func:`scipy.stats.rankdata`). NaN scores are dropped; NaN when no sample
    is correct or none is wrong."""
    s = np.asarray(score, dtype=np.float64)
    c = np.asarray(correct, dtype=bool)
    keep = np.isfinite(s)
    s, c = s[keep], c[keep]
    n1, n0 = int(c.sum()), int((~c).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = sps.rankdata(s)
    return float((ranks[c].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def run_aucs(samples: pd.DataFrame) -> tuple[float, float]:
    """``(AUC(−KL_raw), AUC(−KL_z))`` of one run's per-sample table (``kl_t1``, ``kl_t1_zscore``, ``correct``)."""
    correct = samples["correct"].to_numpy(bool)
    return (auc_correct(-samples["kl_t1"].to_numpy(np.float64), correct),
            auc_correct(-samples["kl_t1_zscore"].to_numpy(np.float64), correct))


def _by_seed(runs: list[StudentRun]) -> dict[int, tuple[float, float]]:
    """Per seed, the run's ``(AUC raw KL, AUC z-scored KL)`` (mean over runs if a seed has several)."""
    out: dict[int, list[tuple[float, float]]] = {}
    for r in runs:
        out.setdefault(int(r.key["seed"]), []).append(run_aucs(r.samples))
    return {s: (float(np.mean([a for a, _ in v])), float(np.mean([b for _, b in v]))) for s, v in out.items()}


@register_claim
class AuthenticEval(Claim):
    """Within one student, the z-scored KL to the teacher tells the test samples it predicts right from those it
    predicts wrong better than the shared-temperature KL does (the toy case: a shared temperature can rank a
    wrong prediction closer to the teacher than a right one)."""

    title = "Authentic evaluation"
    paper = "Sec. 4.3.1"
    order = 40
    figure_subject = "authentic evaluation: which KL tells right from wrong predictions (Sec. 4.3.1)"

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        stat = ("AUC(−KL → correct) over a run's test samples, z-scored minus shared-temperature KL (T = 1); "
                "mean of the seed's raw and z-score students")
        rows = []
        for pair, method, raw, ls in method_groups(data):
            scope = pair_scope(pair, method)
            if na := self.missing_arm(scope, raw, ls, stat, "of the reported setting: both arms are needed per seed"):
                rows.append(na)
                continue
            r, z = _by_seed(raw), _by_seed(ls)
            seeds = [s for s in sorted(set(r) & set(z)) if all(map(math.isfinite, (*r[s], *z[s])))]
            if not seeds:
                rows.append(self.not_applicable(scope, "no seed with both a raw and a z-score student that has "
                                                "right and wrong test predictions", stat))
                continue
            d_raw = np.array([r[s][1] - r[s][0] for s in seeds])
            d_ls = np.array([z[s][1] - z[s][0] for s in seeds])
            theta = (d_raw + d_ls) / 2
            auc_raw = float(np.mean([(r[s][0] + z[s][0]) / 2 for s in seeds]))
            auc_z = float(np.mean([(r[s][1] + z[s][1]) / 2 for s in seeds]))
            students = [x for x in raw + ls if int(x.key["seed"]) in seeds]
            n = int(np.mean([len(x.samples) for x in students]))
            wrong = 100.0 * float(np.mean([1.0 - x.samples["correct"].mean() for x in students]))
            evidence = (f"per run, AUC of −KL for telling the student's right test predictions from its wrong ones "
                        f"(~{n:,} samples, {wrong:.1f}% wrong): shared-temperature KL {auc_raw:.3f}, z-scored KL "
                        f"{auc_z:.3f} (mean of {2 * len(seeds)} runs); z − raw by arm: raw-logit students "
                        f"{d_raw.mean():+.3f}, z-score students {d_ls.mean():+.3f}")
            rows.append(self.tested(scope, theta, statistic=stat,
                                    comparison="AUC with z-scored KL − AUC with raw KL, within each run",
                                    reference=auc_raw, value=auc_z, evidence=evidence))
        return self.or_not_applicable(rows, "no distilled student in this results folder", stat)

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        from lskd.claims.plots import COLORS, TRANSFORMS, claim_rows, methods_of, selected_students, two_panels
        from lskd.claims.sample_stats import shared_and_zscored_kl
        from lskd.report.figures_common import method_label, of_pair, transform_label

        sel, first = selected_students(res), res.first_teacher()
        if claim_rows(res, self.id) is None or sel.empty or first is None:
            return None
        pair, v, _ = first
        sel = of_pair(sel, pair)

        def aucs(run_dir: str) -> tuple[float, float]:
            z, y = res.logits(run_dir)
            kl, kl_z = shared_and_zscored_kl(z, v)
            correct = z.argmax(axis=1) == y
            return auc_correct(-kl, correct), auc_correct(-kl_z, correct)

        points = pd.DataFrame([(r.method, r.transform, r.seed, *res._cached("claim_auc", r.run_dir,
                                                                             lambda d=r.run_dir: aucs(d)))
                               for r in sel.itertuples(index=False)],
                              columns=["method", "transform", "seed", "auc_raw", "auc_z"])
        methods = methods_of(res, points)
        fig, a, b = two_panels()
        for t in TRANSFORMS:
            p = points[points["transform"] == t]
            a.scatter(p["auc_raw"], p["auc_z"], color=COLORS[t], s=28, label=f"{transform_label(t)} students")
        lo = float(np.nanmin(points[["auc_raw", "auc_z"]].to_numpy())) - 0.01
        hi = float(np.nanmax(points[["auc_raw", "auc_z"]].to_numpy())) + 0.01
        a.plot([lo, hi], [lo, hi], color="black", ls="--", lw=1)
        a.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="AUC of −KL at T = 1, raw logits",
              ylabel="AUC of −KL at T = 1, z-scored logits", title="(a) one point per run")
        a.legend(fontsize=8)
        points["d"] = points["auc_z"] - points["auc_raw"]
        for i, m in enumerate(methods):
            sub = points[points["method"] == m]
            wide = sub.pivot_table(index="seed", columns="transform", values="d", aggfunc="mean")
            for seed, row in wide.iterrows():
                if set(TRANSFORMS) <= set(row.index) and row.notna().all():
                    b.plot([i - 0.15, i + 0.15], [row[RAW], row[LS]], color="grey", lw=0.8, alpha=0.7)
                    b.scatter([i], [row[[RAW, LS]].mean()], marker="_", color="black", s=120, zorder=4)
            for t, dx in zip(TRANSFORMS, (-0.15, 0.15)):
                vals = sub.loc[sub["transform"] == t, "d"]
                b.scatter(np.full(len(vals), i + dx), vals, color=COLORS[t], s=28, zorder=3)
        b.axhline(0.0, color="black", ls="--", lw=1)
        b.set_xticks(range(len(methods)), [method_label(m) for m in methods])
        b.set(xlim=(-0.6, len(methods) - 0.4), ylabel="AUC(−KL_z) − AUC(−KL_raw)",
              title="(b) per run; black bar: θ of the seed")
        means = "; ".join(f"{method_label(m)} {points.loc[points['method'] == m, 'd'].mean():+.3f}" for m in methods)
        look = (f"For each student of the reported setting ({pair[1]} → {pair[2]}; n={len(points)} runs), how well "
                "its per-sample KL to the teacher at T = 1 tells the test samples it predicts right from those it "
                "predicts wrong, as the AUC of −KL (0.5 = no better than chance). (a) AUC with the raw logits "
                "against AUC after z-scoring both, raw-logit students blue, z-score students orange; above the "
                "dashed diagonal the z-scored KL separates better. (b) The difference per run, the two students of "
                f"a seed joined by a grey line, their mean (the seed's θ) as a black bar; mean per method: {means}.")
        return self.save_figure(fig, out_dir, look)
