"""Claim "teacher gain" (Table 5): the gain of logit standardization over raw logits grows with the teacher.

The paper distils six teachers (vgg13 74.64%, wrn_28_2 75.45%, wrn_40_2 75.61%, wrn_16_4 77.51%, wrn_28_4 78.60%,
resnet50 79.34% top-1) into wrn_16_2 with KD and DKD, each with and without LS. What its table shows: LS gains in
all twelve rows (KD +0.10 … +1.19, DKD +0.11 … +0.68 points). Whether the *gain* grows with the teacher is weak in
its own numbers: Spearman ρ(teacher top-1, LS − raw) over the six teachers is −0.03 for KD and +0.35 for DKD (least-squares
slopes +0.056 and +0.015 points of gain per point of teacher top-1). The claim tested here is the monotone reading,
"stronger teacher ⇒ larger LS gain".

Statistic. For one student (dataset, student) distilled from three or more teachers, per method and seed ``s``:

* ``g_{t,s} = acc(LS student of teacher t, seed s) − acc(raw student of teacher t, seed s)``, last-epoch test top-1
  in points, ``acc = 100 · mean(correct)`` over the test samples, at the setting the headline reports for each
  transform (``selected``), paired by seed within a teacher;
* ``θ_s = Spearman ρ(a_t, g_{t,s})`` over the teachers ``t`` paired at seed ``s`` (three or more), with ``a_t`` the
  teacher's top-1 (its parameter count where a teacher's accuracy is unknown).

The unit is the seed: every seed re-runs the whole teacher sweep with independent training, so the ``θ_s`` are
independent replicates of the rank correlation, while the teachers of one seed are not (their ρ is one number).
Predicted ``θ > 0``; the audit's t interval and one-sided t-tests over the seeds (:mod:`lskd.claims.verdicts`),
descriptive below three seeds. Not applicable with fewer than three teachers for a student (two points always have
ρ = ±1). A rank correlation ignores how much larger the gain is; the evidence adds the slope of the mean gain
on the teacher's accuracy and the per-teacher mean gains.

Figure: per method, the mean LS gain of each teacher against the teacher's top-1, the per-seed gains behind it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from lskd.claims.base import LS, RAW, AuditConfig, Claim
from lskd.claims.data import AuditData, StudentRun
from lskd.claims.registry import register_claim
from lskd.claims.verdicts import ClaimResult

if TYPE_CHECKING:
    from lskd.report.figures_common import Figure, Results

#: Fewest teachers of one student for a rank correlation over teachers.
MIN_TEACHERS = 3

STATISTIC = "per seed, Spearman ρ over teachers of (teacher top-1, LS − raw student top-1)"


def seed_gains(runs: list[StudentRun]) -> dict[tuple[str, int], float]:
    """``(teacher, seed) → LS − raw top-1`` of the reported setting, for every teacher and seed with both students."""
    acc: dict[tuple[str, str, int], float] = {}
    for r in runs:
        if r.key["selected"] and r.key["transform"] in (RAW, LS):
            acc[str(r.key["teacher"]), str(r.key["transform"]), int(r.key["seed"])] = r.accuracy
    return {(t, s): acc[t, LS, s] - acc[t, RAW, s] for (t, tr, s) in acc if tr == RAW and (t, LS, s) in acc}


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ (average ranks for ties); NaN when either side is constant or there are fewer than 3 points."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < MIN_TEACHERS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(sps.spearmanr(x, y).statistic)


def per_seed_rho(gains: dict[tuple[str, int], float], strength: dict[str, float]) -> dict[int, float]:
    """``seed → θ_s``: Spearman ρ over the teachers paired at that seed (three or more; constant gains: left out)."""
    out = {}
    for s in sorted({s for _, s in gains}):
        teachers = sorted(t for t, ss in gains if ss == s)
        if len(teachers) >= MIN_TEACHERS:
            rho = spearman(np.array([strength[t] for t in teachers]), np.array([gains[t, s] for t in teachers]))
            if math.isfinite(rho):
                out[s] = rho
    return out


def paper_rho(method: str) -> float:
    """Spearman ρ(teacher top-1, LS − raw top-1) over the teachers of the paper's Table 5 for ``method`` (NaN when
    the table has no row for it)."""
    from lskd.analysis.paper import paper_teachers

    df = paper_teachers()
    df = df[df["method"] == method]
    if df.empty:
        return math.nan
    wide = df.pivot_table(index=["teacher", "teacher_top1"], columns="transform", values="top1").reset_index()
    if not {RAW, LS} <= set(wide.columns):
        return math.nan
    return spearman(wide["teacher_top1"].to_numpy(), (wide[LS] - wide[RAW]).to_numpy())


@register_claim
class TeacherGain(Claim):
    """Logit standardization improves a student more over raw-logit distillation the stronger its teacher:
    across teachers of one student, the LS − raw gain in top-1 rises with the teacher's top-1."""

    title = "Teacher gain"
    paper = "Table 5"
    order = 65
    figure_subject = "LS gain against the teacher's accuracy (Table 5)"

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        rows = []
        students = sorted({(s.pair[0], s.pair[2]) for s in data.students})
        for dataset, student in students:
            runs = [s for s in data.students if (s.pair[0], s.pair[2]) == (dataset, student)]
            teachers = sorted({s.pair[1] for s in runs})
            scope = {"dataset": dataset, "teacher": ", ".join(teachers), "student": student, "method": ""}
            if len(teachers) < MIN_TEACHERS:
                rows.append(self.not_applicable(
                    scope, f"{student} is distilled from {len(teachers)} teacher(s) ({', '.join(teachers)}); the "
                    f"claim relates the LS gain to the teacher across {MIN_TEACHERS} or more teachers of one "
                    "student (the paper's Table 5 has six)", STATISTIC))
                continue
            strength, what = self._strength(data, dataset, teachers)
            if strength is None:
                rows.append(self.not_applicable(scope, "the teachers' accuracies and parameter counts are unknown "
                                                "(no teacher run collected)", STATISTIC))
                continue
            for method in sorted({str(s.key["method"]) for s in runs}, key=lambda m: (m != "kd", m)):
                rows.append(self._method_row(runs, method, dataset, student, strength, what))
        return self.or_not_applicable(rows, "no distilled student in this results folder", STATISTIC)

    @staticmethod
    def _strength(data: AuditData, dataset: str, teachers: list[str]) -> tuple[dict[str, float] | None, str]:
        """Each teacher's top-1 (%), else its parameter count when any accuracy is unknown; ``(None, "")`` when
        neither is known for every teacher."""
        found = {t.name: t for t in data.teachers if t.dataset == dataset and t.name in teachers}
        if len(found) < len(teachers):
            return None, ""
        acc = {n: float(t.accuracy) for n, t in found.items()}
        if all(math.isfinite(a) for a in acc.values()):
            return acc, "top-1"
        params = {n: float(t.num_params) for n, t in found.items()}
        if all(math.isfinite(p) for p in params.values()):
            return params, "parameters"
        return None, ""

    def _method_row(self, runs: list[StudentRun], method: str, dataset: str, student: str,
                    strength: dict[str, float], what: str) -> ClaimResult:
        gains = seed_gains([r for r in runs if r.key["method"] == method])
        paired = sorted({t for t, _ in gains})
        scope = {"dataset": dataset, "teacher": ", ".join(paired) or ", ".join(sorted(strength)),
                 "student": student, "method": method}
        stat = STATISTIC if what == "top-1" else STATISTIC.replace("teacher top-1", "teacher parameters")
        if len(paired) < MIN_TEACHERS:
            return self.not_applicable(scope, f"{len(paired)} teacher(s) of {student} have both a raw and a z-score "
                                       f"{method.upper()} student of one seed; the claim needs {MIN_TEACHERS} or "
                                       "more", stat)
        rho = per_seed_rho(gains, strength)
        if not rho:
            return self.not_applicable(scope, f"no seed has {MIN_TEACHERS} or more teachers with paired "
                                       f"{method.upper()} students and gains that differ", stat)
        mean_gain = {t: float(np.mean([g for (tt, _), g in gains.items() if tt == t])) for t in paired}
        n_seeds = {t: sum(1 for tt, _ in gains if tt == t) for t in paired}
        x = np.array([strength[t] for t in paired])
        y = np.array([mean_gain[t] for t in paired])
        slope = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else math.nan
        pooled = spearman(x, y)
        unit_x = "point of teacher top-1" if what == "top-1" else "teacher parameter"
        listing = "; ".join(
            f"{t} ({strength[t]:.2f}%)" if what == "top-1" else f"{t} ({strength[t]:,.0f} params)" for t in paired)
        gains_text = ", ".join(f"{t} {mean_gain[t]:+.2f} (n={n_seeds[t]})" for t in sorted(paired, key=strength.get))
        left_out = sorted({s for _, s in gains} - set(rho))
        ref = paper_rho(method)
        paper_part = (f"; the paper's Table 5 ({method.upper()}, six teachers → wrn_16_2): ρ = {ref:+.2f}"
                      if math.isfinite(ref) else "")
        evidence = (f"teachers {listing}. Mean LS − raw top-1 per teacher, weakest first: {gains_text} points; "
                    f"ρ of the mean gains {pooled:+.2f}, least-squares slope {slope:+.3g} points per {unit_x}; "
                    f"per-seed ρ: {', '.join(f'seed {s} {r:+.2f}' for s, r in rho.items())}"
                    + (f" (seed(s) {', '.join(map(str, left_out))} left out: under {MIN_TEACHERS} paired teachers or "
                       "constant gains)" if left_out else "") + paper_part)
        return self.tested(scope, list(rho.values()), statistic=stat,
                           comparison=f"rank correlation of the LS gain with the teacher's {what}, per seed",
                           reference=float(np.mean(y)), value=pooled, evidence=evidence, digits=2)

    # ------------------------------------------------------------------------------------------ figure
    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        from lskd.claims.plots import claim_rows, claims_tables, methods_of
        from lskd.report.figures_common import method_label, new_figure

        rows = claim_rows(res, self.id)
        if rows is None:
            return None
        _, per_run = claims_tables(res)
        points = _gain_points(per_run, res.runs)
        if points.empty:
            return None
        fig = new_figure(8.5, 4.5)
        ax = fig.subplots()
        parts = []
        methods = methods_of(res, points)
        colors = dict(zip(methods, [f"C{i}" for i in range(len(methods))]))
        for (student, method), sub in points.groupby(["student", "method"], sort=False):
            label = f"{method_label(method)} → {student}" if points["student"].nunique() > 1 else method_label(method)
            ax.scatter(sub["teacher_top1"], sub["gain"], color=colors[method], s=14, alpha=0.35)
            means = sub.groupby(["teacher", "teacher_top1"], as_index=False)["gain"].mean().sort_values("teacher_top1")
            ax.plot(means["teacher_top1"], means["gain"], "o-", color=colors[method], label=label)
            for r in means.itertuples(index=False):
                ax.annotate(str(r.teacher), (r.teacher_top1, r.gain), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
            parts.append(f"{label}: " + ", ".join(f"{r.teacher} {r.gain:+.2f}" for r in means.itertuples(index=False))
                         + f" (n={sub['seed'].nunique()} seeds)")
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set(xlabel="teacher top-1 (%)", ylabel="LS − raw student top-1 (points)",
               title="LS gain per teacher, weakest teacher left")
        ax.legend(fontsize=8, title="method", title_fontsize=8)
        look = ("One line per method (and student): the mean over seeds of the LS − raw last-epoch top-1 of the "
                "students of each teacher (large points, joined in the order of the teacher's top-1) against the "
                "teacher's top-1; small points: the per-seed gains behind each mean. Mean gains: "
                f"{'; '.join(parts)}.")
        return self.save_figure(fig, out_dir, look)


def _gain_points(per_run: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per (student, method, teacher, seed) of a student with three or more teachers: the LS − raw top-1 of the
    reported setting and the teacher's top-1 (``claims_runs`` and the run table's teacher rows)."""
    cols = ["student", "method", "teacher", "seed", "gain", "teacher_top1"]
    if per_run.empty or runs.empty or "role" not in runs:
        return pd.DataFrame(columns=cols)
    teachers = runs[runs["role"] == "teacher"]
    top1: dict[tuple[Any, Any], float] = {(r.dataset, r.teacher): float(r.last_top1)
                                          for r in teachers.itertuples(index=False)}
    sel = per_run[per_run["selected"].astype(str).str.lower() == "true"]
    sel = sel[sel["transform"].isin([RAW, LS])]
    wide = sel.pivot_table(index=["dataset", "student", "method", "teacher", "seed"], columns="transform",
                           values="accuracy", aggfunc="first").reset_index()
    if not {RAW, LS} <= set(wide.columns):
        return pd.DataFrame(columns=cols)
    wide["gain"] = wide[LS] - wide[RAW]
    wide["teacher_top1"] = [top1.get((d, t), math.nan) for d, t in zip(wide["dataset"], wide["teacher"])]
    wide = wide.dropna(subset=["gain", "teacher_top1"])
    many = wide.groupby(["dataset", "student"])["teacher"].transform("nunique") >= MIN_TEACHERS
    return wide.loc[many, cols]


__all__ = ["MIN_TEACHERS", "TeacherGain", "paper_rho", "per_seed_rho", "seed_gains", "spearman"]
