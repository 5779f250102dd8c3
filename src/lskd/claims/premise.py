"""Claim 2, the premise (Eq. 12): a shared temperature makes the distilled student match the teacher's logit std,
a range a small student does not reach on its own; so raw KD holds the student's logit range away from where the
student would put it, and standardization (which ignores the range) removes that constraint.

Test the premise, not its consequence. Per run, ``L = mean_i log(σ(z_i) / σ(v_i))`` over the test samples
(:func:`lskd.claims.sample_stats.log_std_ratio`: the student's logit std relative to the teacher's on the same
sample; 0 = the teacher's range). Per seed ``s``, with the CE-only student of the pair (role ``baseline``: the same
student model trained without a teacher, same seed):

    ``θ_s = |L(CE-only student, s)| − |L(raw student of the method, s)|``

how much raw KD moves the student's logit range toward the teacher's compared with where the student goes on its
own. Predicted ``θ > 0``. If the CE-only student already sits at the teacher's range (``L ≈ 0``), or raw KD does not
bring it closer, the premise fails here, whatever the LS students do: their ``L`` is free under the LS loss, so
comparing it with the raw students' (the old claim "variance match") held by construction; it is quoted as context.
Not applicable without CE-only baselines of the pair's student or without seeds shared with the raw students.

Figure: ``L`` per run (CE-only, raw, z-score, by method) and the per-sample ``log σ(z)/σ(v)`` of the smallest-seed
students.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lskd.claims.base import LS, AuditConfig, Claim, nanmean, pair_scope
from lskd.claims.data import AuditData, StudentRun
from lskd.claims.paired import by_seed, method_groups
from lskd.claims.registry import register_claim
from lskd.claims.verdicts import ClaimResult

if TYPE_CHECKING:
    from lskd.report.figures_common import Figure, Results

COLUMN = "log_std_ratio"


def range_of(run: StudentRun) -> float:
    """``L``: the run's mean over test samples of ``log σ(z)/σ(v)``."""
    return nanmean(run.samples[COLUMN])


def _seeds(runs: dict[int, StudentRun]) -> str:
    return ", ".join(map(str, sorted(runs))) or "none"


@register_claim
class Premise(Claim):
    """With a shared temperature the distilled student must match the teacher's logit std (Eq. 12), a range the
    small student does not reach on its own: raw KD brings the student's logit std closer to the teacher's than
    the CE-only student's."""

    title = "Premise: the student's logit range"
    paper = "Eq. 12"
    order = 20
    figure_subject = "premise, the student's logit range (Eq. 12)"
    statistic = "|L(CE-only)| − |L(raw)|, L = mean log σ(z)/σ(v) (0 = the teacher's logit std)"

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        rows = []
        for pair, method, raw, ls in method_groups(data):
            scope = pair_scope(pair, method)
            ce = by_seed(data.baselines_of(pair))
            r = by_seed(raw)
            if not raw:
                rows.append(self.not_applicable(scope, f"no healthy raw-logit {method.upper()} student (unhealthy "
                                                "runs are left out of the audit: see Run health)", self.statistic))
                continue
            if not ce:
                rows.append(self.not_applicable(scope, f"the config has no CE-only baseline of the student {pair[2]} "
                                                "(role baseline): the premise compares the raw student's logit range "
                                                "with the student's own", self.statistic))
                continue
            seeds = sorted(set(ce) & set(r))
            if not seeds:
                rows.append(self.not_applicable(scope, f"the CE-only baselines (seeds {_seeds(ce)}) share no seed "
                                                f"with the raw {method.upper()} students (seeds {_seeds(r)})",
                                                self.statistic))
                continue
            l_ce = np.array([range_of(ce[s]) for s in seeds])
            l_raw = np.array([range_of(r[s]) for s in seeds])
            z = by_seed(ls)
            l_ls = [range_of(z[s]) for s in seeds if s in z]
            m_ls = float(np.mean(l_ls)) if l_ls else math.nan
            evidence = (f"mean L = log σ(z)/σ(v) (std ratio e^L): CE-only {l_ce.mean():+.3f} "
                        f"({math.exp(l_ce.mean()):.2f}), raw {l_raw.mean():+.3f} ({math.exp(l_raw.mean()):.2f}); "
                        f"z-score students, for context, {m_ls:+.3f} ({math.exp(m_ls):.2f}; free under the LS loss)")
            rows.append(self.tested(scope, np.abs(l_ce) - np.abs(l_raw), unit="seeds", statistic=self.statistic,
                                    comparison="CE-only − raw students, paired by seed",
                                    reference=float(np.abs(l_ce).mean()), value=float(np.abs(l_raw).mean()),
                                    threshold=0.0, direction="above", evidence=evidence))
        return self.or_not_applicable(rows, "no distilled student in this results folder", self.statistic)

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        """(a) ``L`` per run: CE-only students, then each method's raw and z-score students; (b) per-sample
        ``log σ(z)/σ(v)`` of the smallest-seed CE-only student and the focus method's two students."""
        import seaborn as sns

        from lskd.claims.plots import (
            COLORS,
            baseline_log_std_ratios,
            claim_rows,
            focus_samples,
            focus_who,
            methods_of,
            paired_means,
            paired_panel,
            selected_students,
            two_panels,
        )
        from lskd.report.figures_common import method_label

        sel = selected_students(res)
        base = baseline_log_std_ratios(res)
        if claim_rows(res, self.id) is None or sel.empty or not base or COLUMN not in sel:
            return None
        fig, a, b = two_panels()
        methods = methods_of(res, sel)
        paired_panel(a, sel, methods, COLUMN, "L = mean log σ(z)/σ(v)")
        ce = np.array([nanmean(x) for _, x in base])
        a.scatter(np.full(len(ce), -1.0), ce, color="grey", s=28, zorder=3, label="CE-only")
        a.set_xticks(range(-1, len(methods)), ["CE-only", *map(method_label, methods)])
        a.set_xlim(-1.6, len(methods) - 0.4)
        a.axhline(0.0, color="black", ls="--", lw=1)
        a.legend(fontsize=8)
        a.set_title("(a) L per run (0 = the teacher's logit std)")
        seed, first = base[0]
        sns.histplot(x=first[np.isfinite(first)], bins=40, element="step", stat="density", fill=False, color="grey",
                     label=f"CE-only student (seed {seed})", ax=b)
        focus = focus_samples(res)
        for label, run, s in focus:
            x = s[COLUMN].to_numpy(np.float64)
            sns.histplot(x=x[np.isfinite(x)], bins=40, element="step", stat="density", fill=False,
                         color=COLORS[str(run["transform"])], label=label, ax=b)
        b.axvline(0.0, color="black", ls="--", lw=1)
        b.set(title="(b) per test sample", xlabel="log σ(z)/σ(v)")
        b.legend(fontsize=8)
        ls_note = "free under the LS loss" if (sel["transform"] == LS).any() else "none in this run"
        look = (f"(a) One point per student: L, the mean over the test samples of log σ(z)/σ(v) (student vs teacher "
                f"logit std on the same sample); grey: the CE-only students (seeds {', '.join(str(s) for s, _ in base)}"
                f", mean {ce.mean():+.2f}), blue: raw, orange: z-score ({ls_note}), a grey line joining one seed's "
                f"two distilled students; means: {paired_means(res, sel, COLUMN)}. The premise holds where the raw "
                "students sit closer to the dashed line (the teacher's std) than the CE-only students. (b) The "
                f"per-sample distribution for the smallest-seed CE-only student and {focus_who(focus)}.")
        return self.save_figure(fig, out_dir, look)
