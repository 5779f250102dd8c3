"""One figure per claim of the audit (:mod:`lskd.analysis.claims`), drawn from ``claims.csv``/``claims_runs.csv``
(computed from the run folders when the tables are missing) and the runs' per-sample statistics.

=========================  ===========================================================================
name                       what it shows
=========================  ===========================================================================
claim_logit_shift          σ(z − v)/σ(v) of raw vs z-score students per method, paired by seed; its
                           per-sample distribution for the focus method
claim_variance_match       |log σ(z)/σ(v)| paired by seed; per-sample σ(z)/σ(v) per method and transform
claim_relations            Kendall tau-b and top-k overlap with the teacher, paired by seed
claim_authentic_eval       accuracy vs shared-temperature KL and vs z-scored KL, one point per student
claim_teacher_size         logit std and |mean| of each teacher against its size (needs two teachers)
claim_effective_temp       per-sample effective temperatures σ(v)·τ and σ(z)·τ next to the grid's
=========================  ===========================================================================

Every caption says what the figure shows (axes, what a point is, n) with the plotted numbers, and names its
claim by title: the claim's statement, verdicts and evidence are in the report's claims section, said once. A
claim that is not applicable to every scope draws no figure (the report says why).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from lskd import layout
from lskd.analysis.claim_data import AuditData
from lskd.analysis.claim_stats import claim_sample_stats
from lskd.analysis.claim_verdicts import NOT_APPLICABLE
from lskd.analysis.claims import CLAIMS, audit_claims
from lskd.report.figures_common import (
    Figure,
    Results,
    method_label,
    missing,
    new_figure,
    save,
    setting_label,
    transform_label,
)

TRANSFORMS = ("none", "zscore")
COLORS = {"none": "tab:blue", "zscore": "tab:orange"}


# ---------------------------------------------------------------------------------------------- data
def claims_tables(res: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(claims, claims_runs)`` as the claims step wrote them (``run_dir`` resolved under the results folder); cached
    in ``res.tables``. Missing tables are an error naming that step, unless no distillation run exists yet (then
    every claim is 'not applicable')."""
    if "claims" not in res.tables or "claims_runs" not in res.tables:
        paths = [layout.table_path(res.results_dir, name) for name in layout.CLAIM_TABLES]
        if all(p.exists() for p in paths):
            claims, per_run = pd.read_csv(paths[0]), layout.read_runs(paths[1])
        elif len(res.distill):
            raise missing(next(p for p in paths if not p.exists()), layout.CLAIM_TABLES[0])
        else:
            claims, per_run = audit_claims(AuditData()), pd.DataFrame(columns=["run_dir", "selected"])
        res.tables["claims"], res.tables["claims_runs"] = claims, per_run
    return res.tables["claims"], res.tables["claims_runs"]


def _rows(res: Results, claim: str) -> pd.DataFrame | None:
    """The claim's rows, or ``None`` when none of them is applicable."""
    claims, _ = claims_tables(res)
    rows = claims[claims["claim"] == claim]
    return None if rows.empty or (rows["verdict"] == NOT_APPLICABLE).all() else rows


def _selected(res: Results) -> pd.DataFrame:
    _, per_run = claims_tables(res)
    if per_run.empty:
        return per_run
    sel = per_run[per_run["selected"].astype(str).str.lower() == "true"]
    return sel[sel["transform"].isin(TRANSFORMS)]


def _methods(res: Results, df: pd.DataFrame) -> list[str]:
    present = set(df["method"])
    return [m for m in res.methods if m in present] + sorted(present - set(res.methods))


def _caption(claim: str, look: str) -> str:
    """A claim figure's caption: ``look`` (what is drawn), then which claim it illustrates, by title."""
    return f"{look} The figure illustrates the claim “{CLAIMS[claim].title}”; its verdict and evidence are in the claims table."


def _paired_means(res: Results, sel: pd.DataFrame, column: str) -> str:
    """``"KD raw 0.83 / z-score 0.78 (n=2 seeds); …"``: per method, the mean of ``column`` per transform."""
    parts = []
    for m in _methods(res, sel):
        sub = sel[sel["method"] == m]
        means = sub.groupby("transform")[column].mean()
        values = " / ".join(f"{transform_label(t)} {means[t]:.2f}" for t in TRANSFORMS if t in means)
        parts.append(f"{method_label(m)} {values} (n={sub['seed'].nunique()} seeds)")
    return "; ".join(parts)


def _focus_samples(res: Results) -> list[tuple[str, pd.Series, pd.DataFrame]]:
    """(label, run, per-sample claim statistics) of the focus method's raw and z-score students (reported
    setting, smallest seed) of the first pair."""
    if not res.pairs or res.focus_method is None:
        return []
    pair, m = res.pairs[0], res.focus_method
    teacher_dir = res.teacher_dir(pair)
    if teacher_dir is None:
        return []
    v, y = res.logits(teacher_dir)
    out = []
    for transform in TRANSFORMS:
        run = res.representative(pair, m, transform)
        if run is None:
            continue
        z, _ = res.logits(run["run_dir"])
        samples = res._cached("claim_samples", run["run_dir"], lambda z=z: claim_sample_stats(z, v, y))
        out.append((f"{method_label(m)}{'+LS' if transform == 'zscore' else ''} student", run, samples))
    return out


def _focus_who(focus: list[tuple[str, pd.Series, pd.DataFrame]]) -> str:
    """``"KD student: T=1, w=0.9, seed 0; …"`` of the per-sample panels."""
    return "; ".join(f"{label}: {setting_label(run)}" for label, run, _ in focus) or "no student"


# ---------------------------------------------------------------------------------------------- panels
def _paired_panel(ax: Axes, df: pd.DataFrame, methods: list[str], column: str, ylabel: str) -> None:
    """Raw (left) and z-score (right) value of ``column`` per method; a grey line joins the two runs of a seed."""
    for i, m in enumerate(methods):
        sub = df[df["method"] == m]
        wide = sub.pivot_table(index="seed", columns="transform", values=column, aggfunc="first")
        for _, row in wide.iterrows():
            if set(TRANSFORMS) <= set(row.index) and row.notna().all():
                ax.plot([i - 0.15, i + 0.15], [row["none"], row["zscore"]], color="grey", lw=0.8, alpha=0.7)
        for t, dx in zip(TRANSFORMS, (-0.15, 0.15)):
            vals = sub.loc[sub["transform"] == t, column]
            ax.scatter(np.full(len(vals), i + dx), vals, color=COLORS[t], s=28, zorder=3,
                       label=transform_label(t) if i == 0 else None)
    ax.set_xticks(range(len(methods)), [method_label(m) for m in methods])
    ax.set(ylabel=ylabel, xlim=(-0.6, len(methods) - 0.4))
    ax.legend(fontsize=8, title="logits", title_fontsize=8)


def _two_panels(width: float = 11.5, height: float = 4.0) -> tuple[object, Axes, Axes]:
    fig = new_figure(width, height)
    a, b = fig.subplots(1, 2)
    return fig, a, b


def _paired_claim(res: Results, out_dir: Path, claim: str, column: str, ylabel: str, title: str,
                  right: object, look: str) -> Figure | None:
    """Panel (a): ``column`` per run of the reported setting, raw vs z-score, paired by seed; panel (b):
    ``right``. The caption starts with panel (a)'s means, then ``look``."""
    sel = _selected(res)
    if _rows(res, claim) is None or sel.empty:
        return None
    fig, a, b = _two_panels()
    _paired_panel(a, sel, _methods(res, sel), column, ylabel)
    a.set_title(f"(a) {ylabel}, per run (mean over test samples)")
    right(b)
    caption = (f"(a) One point per student of the reported setting: {ylabel} averaged over the test samples, raw "
               f"(blue) and z-score (orange), a grey line joining the two students of a seed; means: "
               f"{_paired_means(res, sel, column)}. {look}")
    return save(fig, out_dir, f"claim_{claim}", title, _caption(claim, caption))


# ---------------------------------------------------------------------------------------------- figures
def claim_logit_shift(res: Results, out_dir: Path) -> Figure | None:
    focus = _focus_samples(res)

    def right(ax: Axes) -> None:
        for label, run, s in focus:
            x = s["residual_spread"].to_numpy(np.float64)
            sns.histplot(x=x[np.isfinite(x)], bins=40, element="step", stat="density", fill=False,
                         color=COLORS[str(run["transform"])], label=f"{label} ({setting_label(run)})", ax=ax)
        ax.set(title="(b) per test sample", xlabel="σ(z − v) / σ(v)")
        if focus:
            ax.legend(fontsize=8)

    return _paired_claim(res, out_dir, "logit_shift", "residual_spread", "σ(z − v) / σ(v)",
                         "Claim 1: logit shift (Eq. 11)", right,
                         f"(b) Its distribution over the test samples ({_focus_who(focus)}). 0 means the student is "
                         "the teacher plus a per-sample constant.")


def claim_variance_match(res: Results, out_dir: Path) -> Figure | None:
    sel = _selected(res)

    def right(ax: Axes) -> None:
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
                        order=[method_label(m) for m in _methods(res, sel)],
                        palette={transform_label(t): COLORS[t] for t in TRANSFORMS}, ax=ax)
        ax.axhline(1.0, color="black", ls="--", lw=1)
        ax.set(title="(b) σ(z)/σ(v) per test sample (smallest seed)", ylabel="σ(z) / σ(v)", xlabel="")

    return _paired_claim(res, out_dir, "variance_match", "abs_log_std_ratio", "|log σ(z)/σ(v)|",
                         "Claim 2: variance match (Eq. 12)", right,
                         "(b) Per-sample σ(z)/σ(v) of each method's smallest-seed student (boxes: quartiles, log "
                         "scale); the dashed line is σ(z) = σ(v).")


def claim_relations(res: Results, out_dir: Path) -> Figure | None:
    sel = _selected(res)

    def right(ax: Axes) -> None:
        _paired_panel(ax, sel, _methods(res, sel), "topk_overlap", "top-k overlap")
        k = int(sel["top_k"].iloc[0]) if "top_k" in sel and len(sel) else 0
        ax.set_title(f"(b) top-{k} classes shared with the teacher")

    return _paired_claim(res, out_dir, "relations", "kendall", "Kendall tau-b with the teacher",
                         "Claim 3: relations preserved", right,
                         f"(b) The same students' overlap of their top-k classes with the teacher's "
                         f"({_paired_means(res, sel, 'topk_overlap') if 'topk_overlap' in sel else 'not computed'}). "
                         "Higher is closer to the teacher in both panels.")


def claim_authentic_eval(res: Results, out_dir: Path) -> Figure | None:
    rows = _rows(res, "authentic_eval")
    _, per_run = claims_tables(res)
    if rows is None or per_run.empty:
        return None
    fig, a, b = _two_panels()
    data = per_run.assign(method=per_run["method"].map(method_label), logits=per_run["transform"].map(transform_label))
    for ax, col, name in ((a, "kl_t1", "(a) shared-temperature KL (T = 1)"), (b, "kl_t1_zscore", "(b) z-scored KL")):
        sns.scatterplot(data, x=col, y="accuracy", hue="method", style="logits", s=40, ax=ax, legend=ax is b)
        ax.set(xscale="log", title=name, xlabel="KL(teacher ‖ student), mean over test samples",
               ylabel="student test top-1 (%)")
    if b.get_legend() is not None:
        sns.move_legend(b, "center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    acc = per_run["accuracy"]
    look = (f"One point per student (every method, transform, setting and seed; n={len(per_run)}, top-1 "
            f"{acc.min():.1f}% to {acc.max():.1f}%): its top-1 against its mean KL(teacher ‖ student) over the test "
            "samples (log scale), (a) at T = 1 on the raw logits, (b) after z-scoring both. A KL that evaluates "
            "students authentically falls as accuracy rises.")
    return save(fig, out_dir, "claim_authentic_eval", "Claim 4: authentic evaluation (Sec. 4.3.1)",
                _caption("authentic_eval", look))


def claim_teacher_size(res: Results, out_dir: Path) -> Figure | None:
    rows = _rows(res, "teacher_size")
    teachers = res.runs[res.runs["role"] == "teacher"]
    if rows is None or len(teachers) < 2:
        return None
    points = []
    for r in teachers.itertuples(index=False):
        stats = res.stats(r.run_dir)
        points.append({"teacher": r.teacher, "params": r.num_params, "std": stats["std"].to_numpy(np.float64),
                       "abs_mean": np.abs(stats["mean"].to_numpy(np.float64))})
    fig, a, b = _two_panels()
    for ax, key, label in ((a, "std", "logit std σ(v)"), (b, "abs_mean", "|logit mean| |m(v)|")):
        for p in points:
            q1, q3 = np.nanquantile(p[key], [0.25, 0.75])
            ax.errorbar(p["params"], np.nanmean(p[key]), yerr=[[max(np.nanmean(p[key]) - q1, 0)],
                        [max(q3 - np.nanmean(p[key]), 0)]], fmt="o", capsize=3)
            ax.annotate(str(p["teacher"]), (p["params"], np.nanmean(p[key])), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")
        ax.set(xscale="log", xlabel="teacher parameters", ylabel=label, title=f"({'a' if ax is a else 'b'}) {label}")
    values = ", ".join(f"{p['teacher']} σ(v) {np.nanmean(p['std']):.2f}, |m(v)| {np.nanmean(p['abs_mean']):.2f}"
                       for p in points)
    look = (f"One point per teacher (n={len(points)}): (a) the logit std σ(v) and (b) the absolute logit mean "
            f"|m(v)|, averaged over the test samples, against the teacher's parameters (log scale); bars: the "
            f"interquartile range over samples. Means: {values}.")
    return save(fig, out_dir, "claim_teacher_size", "Claim 5: teacher size (Fig. 5a)", _caption("teacher_size", look))


def claim_effective_temp(res: Results, out_dir: Path) -> Figure | None:
    rows = _rows(res, "effective_temp")
    focus = [f for f in _focus_samples(res) if f[1]["transform"] == "zscore"]
    if rows is None or not focus:
        return None
    label, run, samples = focus[0]
    tau = float(run["effective_temperature"])
    medians = []
    fig = new_figure(8.5, 4.0)
    ax = fig.subplots()
    for name, col, color in (("teacher σ(v)·τ", "teacher_sigma", "tab:green"), (f"{label} σ(z)·τ", "sigma",
                                                                                 "tab:orange")):
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
    return save(fig, out_dir, "claim_effective_temp", "Claim 6: z-score as a per-sample temperature",
                _caption("effective_temp", look))


#: Claim id → figure function, in claim order.
CLAIM_FIGURES = {
    "logit_shift": claim_logit_shift,
    "variance_match": claim_variance_match,
    "relations": claim_relations,
    "authentic_eval": claim_authentic_eval,
    "teacher_size": claim_teacher_size,
    "effective_temp": claim_effective_temp,
}

__all__ = ["CLAIM_FIGURES", "claims_tables"]
