"""What the claims' figures share: the audit's tables as the report reads them, the raw/z-score students of the
reported setting, the focus method's per-sample statistics, and the panels several figures draw.

Every caption says what its figure shows (axes, what a point is, n) with the plotted numbers, and names its claim
by title (:meth:`lskd.claims.base.Claim.caption`): the claim's statement, verdicts and evidence are in the report's
claims section, said once. A claim that is not applicable to every scope draws no figure (the report says why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lskd import layout
from lskd.claims.base import LS, RAW
from lskd.claims.sample_stats import claim_sample_stats, log_std_ratio
from lskd.claims.verdicts import NOT_APPLICABLE

if TYPE_CHECKING:  # the report's helpers are imported when a figure is drawn: the audit never loads matplotlib
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

    from lskd.report.figures_common import Results

TRANSFORMS = (RAW, LS)
COLORS = {RAW: "tab:blue", LS: "tab:orange"}


def claims_tables(res: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(claims, claims_runs)`` as the claims step wrote them (``run_dir`` resolved under the results folder); cached
    in ``res.tables``. Missing tables are an error naming that step, unless no distillation run exists yet (then
    every claim is 'not applicable')."""
    from lskd.report.figures_common import missing

    if "claims" not in res.tables or "claims_runs" not in res.tables:
        paths = [layout.table_path(res.results_dir, name) for name in layout.CLAIM_TABLES]
        if all(p.exists() for p in paths):
            claims, per_run = pd.read_csv(paths[0]), layout.read_runs(paths[1])
        elif len(res.distill):
            raise missing(next(p for p in paths if not p.exists()), layout.CLAIM_TABLES[0])
        else:
            from lskd.claims.audit import audit_claims
            from lskd.claims.data import AuditData

            claims, per_run = audit_claims(AuditData()), pd.DataFrame(columns=["run_dir", "selected"])
        res.tables["claims"], res.tables["claims_runs"] = claims, per_run
    return res.tables["claims"], res.tables["claims_runs"]


def claim_rows(res: Results, claim_id: str) -> pd.DataFrame | None:
    """The claim's rows, or ``None`` when none of them is applicable."""
    claims, _ = claims_tables(res)
    rows = claims[claims["claim"] == claim_id]
    return None if rows.empty or (rows["verdict"] == NOT_APPLICABLE).all() else rows


def selected_students(res: Results) -> pd.DataFrame:
    """``claims_runs`` rows of the reported setting with raw or z-score logits."""
    _, per_run = claims_tables(res)
    if per_run.empty:
        return per_run
    sel = per_run[per_run["selected"].astype(str).str.lower() == "true"]
    return sel[sel["transform"].isin(TRANSFORMS)]


def methods_of(res: Results, df: pd.DataFrame) -> list[str]:
    """The methods of ``df`` in the report's method order, then any others alphabetically."""
    present = set(df["method"])
    return [m for m in res.methods if m in present] + sorted(present - set(res.methods))


def paired_means(res: Results, sel: pd.DataFrame, column: str) -> str:
    """``"KD raw 0.83 / z-score 0.78 (n=2 seeds); …"``: per method, the mean of ``column`` per transform."""
    from lskd.report.figures_common import method_label, transform_label

    parts = []
    for m in methods_of(res, sel):
        sub = sel[sel["method"] == m]
        means = sub.groupby("transform")[column].mean()
        values = " / ".join(f"{transform_label(t)} {means[t]:.2f}" for t in TRANSFORMS if t in means)
        parts.append(f"{method_label(m)} {values} (n={sub['seed'].nunique()} seeds)")
    return "; ".join(parts)


def focus_samples(res: Results) -> list[tuple[str, pd.Series, pd.DataFrame]]:
    """(label, run, per-sample claim statistics) of the focus method's raw and z-score students (reported
    setting, smallest seed) of the first pair."""
    from lskd.report.figures_common import method_label

    first = res.first_teacher()
    if first is None or res.focus_method is None:
        return []
    (pair, v, y), m = first, res.focus_method
    out = []
    for transform in TRANSFORMS:
        run = res.representative(pair, m, transform)
        if run is None:
            continue
        z, _ = res.logits(run["run_dir"])
        samples = res._cached("claim_samples", run["run_dir"], lambda z=z: claim_sample_stats(z, v, y))
        out.append((f"{method_label(m)}{'+LS' if transform == LS else ''} student", run, samples))
    return out


def baseline_log_std_ratios(res: Results) -> list[tuple[int, np.ndarray]]:
    """``(seed, per-sample log σ(z)/σ(v))`` of the first pair's CE-only baseline students against the pair's teacher,
    by seed (the claims table's per-run summary holds distilled students only)."""
    first = res.first_teacher()
    if first is None:
        return []
    pair, v, _ = first
    _, baselines = res.references(pair)
    if baselines.empty:
        return []
    out = []
    for run in baselines.sort_values("seed", kind="mergesort").itertuples(index=False):
        z, _ = res.logits(str(run.run_dir))
        out.append((int(run.seed), res._cached("log_std_ratio", str(run.run_dir), lambda z=z: log_std_ratio(z, v))))
    return out


def focus_who(focus: list[tuple[str, pd.Series, pd.DataFrame]]) -> str:
    """``"KD student: T=1, w=0.9, seed 0; …"`` of the per-sample panels."""
    from lskd.report.figures_common import setting_label

    return "; ".join(f"{label}: {setting_label(run)}" for label, run, _ in focus) or "no student"


def paired_panel(ax: Axes, df: pd.DataFrame, methods: list[str], column: str, ylabel: str) -> None:
    """Raw (left) and z-score (right) value of ``column`` per method; a grey line joins the two runs of a seed."""
    from lskd.report.figures_common import method_label, transform_label

    for i, m in enumerate(methods):
        sub = df[df["method"] == m]
        wide = sub.pivot_table(index="seed", columns="transform", values=column, aggfunc="first")
        for _, row in wide.iterrows():
            if set(TRANSFORMS) <= set(row.index) and row.notna().all():
                ax.plot([i - 0.15, i + 0.15], [row[RAW], row[LS]], color="grey", lw=0.8, alpha=0.7)
        for t, dx in zip(TRANSFORMS, (-0.15, 0.15)):
            vals = sub.loc[sub["transform"] == t, column]
            ax.scatter(np.full(len(vals), i + dx), vals, color=COLORS[t], s=28, zorder=3,
                       label=transform_label(t) if i == 0 else None)
    ax.set_xticks(range(len(methods)), [method_label(m) for m in methods])
    ax.set(ylabel=ylabel, xlim=(-0.6, len(methods) - 0.4))
    ax.legend(fontsize=8, title="logits", title_fontsize=8)


def two_panels(width: float = 11.5, height: float = 4.0) -> tuple[MplFigure, Axes, Axes]:
    from lskd.report.figures_common import new_figure

    fig = new_figure(width, height)
    a, b = fig.subplots(1, 2)
    return fig, a, b


__all__ = [
    "COLORS", "TRANSFORMS", "baseline_log_std_ratios", "claim_rows", "claims_tables", "focus_samples", "focus_who", "methods_of",
    "paired_means", "paired_panel", "selected_students", "two_panels",
]
