"""The report's opening figure: per method, the paired LS − raw difference and the method's gain over the CE-only
student, each with its t interval, against zero and the smallest effect of interest ±δ, with the paper's gains
where a config setting matches a paper row.

It renders what the tables step wrote: ``headline.csv`` (LS − raw, δ, verdict), ``diagnostics.csv`` (method raw
− CE) and ``paper_comparison.csv`` (the paper's matched rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lskd.report.figures_common import Figure, Results, is_missing, method_label, new_figure, save

LS, RAW = "zscore", "none"


def _rows(res: Results) -> pd.DataFrame:
    """One row per (pair, method) with an LS arm compared with raw: ``label``, ``ls_*`` (LS − raw), ``delta``,
    ``verdict``, ``ce_*`` (method raw − CE, when diagnostics.csv has it), ``n``, ``protocol``."""
    head = res.tables.get("headline")
    if head is None or head.empty or "diff_last_mean" not in head:
        return pd.DataFrame()
    ls = head[(head["transform"] == LS) & head["diff_last_mean"].notna()]
    diag = res.tables.get("diagnostics")
    multi = ls[["teacher", "student"]].drop_duplicates().shape[0] > 1
    order = {m: i for i, m in enumerate(res.methods)}
    rows = []
    for _, r in ls.iterrows():
        row: dict[str, Any] = {
            "dataset": r["dataset"], "teacher": r["teacher"], "student": r["student"], "method": r["method"],
            "label": method_label(r["method"]) + (f"\n{r['teacher']} → {r['student']}" if multi else ""),
            "ls_mean": r["diff_last_mean"], "ls_lo": r["diff_last_lo"], "ls_hi": r["diff_last_hi"],
            "delta": r.get("delta", np.nan), "verdict": r.get("verdict", ""), "n": r.get("diff_n", r.get("n")),
            "protocol": r.get("protocol", "paper"), "ce_mean": np.nan, "ce_lo": np.nan, "ce_hi": np.nan}
        if diag is not None and len(diag):
            d = diag[(diag["teacher"] == r["teacher"]) & (diag["student"] == r["student"])
                     & (diag["method"] == r["method"]) & (diag["transform"] == RAW)]
            if len(d):
                row.update(ce_mean=d["gain_ce_mean"].iloc[0], ce_lo=d["gain_ce_lo"].iloc[0],
                           ce_hi=d["gain_ce_hi"].iloc[0])
        rows.append(row)
    if not rows:  # no arm has a z-score − raw difference (e.g. a paper track with z-score points only)
        return pd.DataFrame()
    out = pd.DataFrame(rows)
    return out.assign(_o=out["method"].map(order).fillna(len(order))).sort_values(["_o", "teacher", "student"])


def paper_gains(res: Results) -> pd.DataFrame:
    """The paper's LS − raw and raw − CE gains (points) of the (pair, method) rows ``paper_comparison.csv``
    matched to this config; empty when it holds the paper's numbers as context only."""
    pc = res.tables.get("paper_comparison")
    if pc is None or pc.empty or not str(pc["table"].iloc[0]).startswith("comparison"):
        return pd.DataFrame(columns=["teacher", "student", "method", "paper_ls", "paper_ce"])
    rows = []
    for (teacher, student, method), g in pc.groupby(["teacher", "student", "method"], sort=False):
        top1 = g.set_index("transform")["paper_top1"]
        ce = g["paper_student_top1"].iloc[0]
        rows.append({"teacher": teacher, "student": student, "method": method,
                     "paper_ls": top1.get(LS, np.nan) - top1.get(RAW, np.nan),
                     "paper_ce": top1.get(RAW, np.nan) - ce if not is_missing(ce) else np.nan})
    return pd.DataFrame(rows)


def _panel(ax, y: np.ndarray, mean: pd.Series, lo: pd.Series, hi: pd.Series, colors: list, title: str,
           delta: float | None) -> None:
    if delta is not None and not is_missing(delta):
        ax.axvspan(-delta, delta, color="grey", alpha=0.18, lw=0)
    ax.axvline(0, color="black", lw=1)
    for yi, m, a, b, c in zip(y, mean, lo, hi, colors):
        if is_missing(m):
            continue
        xerr = None if is_missing(a) else [[m - a], [b - m]]
        ax.errorbar(m, yi, xerr=xerr, fmt="o", color=c, ms=7, capsize=4, lw=2)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("points of last-epoch test top-1")


def summary(res: Results, out_dir: Path) -> Figure | None:
    rows = _rows(res)
    if rows.empty:
        return None
    paper = paper_gains(res)
    if len(paper):
        rows = rows.merge(paper, on=["teacher", "student", "method"], how="left")
    else:
        rows = rows.assign(paper_ls=np.nan, paper_ce=np.nan)
    y = np.arange(len(rows))[::-1].astype(float)
    colors = [res.palette.get(m, "black") for m in rows["method"]]
    deltas = rows["delta"].dropna()
    delta = float(deltas.iloc[0]) if len(deltas) else None
    fig = new_figure(9.5, max(2.8, 1.0 + 0.55 * len(rows)))
    ax_ls, ax_ce = fig.subplots(1, 2, sharey=True)
    _panel(ax_ls, y, rows["ls_mean"], rows["ls_lo"], rows["ls_hi"], colors,
           "LS − raw (paired by seed, 95% t CI)", delta)
    _panel(ax_ce, y, rows["ce_mean"], rows["ce_lo"], rows["ce_hi"], colors,
           "method (raw logits) − CE-only student", delta)
    for ax, col in ((ax_ls, "paper_ls"), (ax_ce, "paper_ce")):
        hit = rows[col].notna().to_numpy()
        if hit.any():
            ax.scatter(rows.loc[hit, col], y[hit], marker="D", s=45, facecolor="white", edgecolor="black", zorder=4,
                       label="paper")
            ax.legend(loc="lower right", fontsize=8)
    for yi, verdict in zip(y, rows["verdict"]):
        if isinstance(verdict, str) and verdict:
            ax_ls.annotate(verdict, (1.0, yi), xycoords=("axes fraction", "data"), xytext=(-4, 6),
                           textcoords="offset points", ha="right", fontsize=7, color="dimgray")
    ax_ls.set_yticks(y, rows["label"].tolist())
    ax_ls.set_ylim(-0.7, len(rows) - 0.3)
    return save(fig, out_dir, "summary", "Summary: what standardization and distillation change here",
                summary_caption(rows, delta))


def _interval(m: float, lo: float, hi: float) -> str:
    return f"{m:+.2f}" if is_missing(lo) else f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def summary_caption(rows: pd.DataFrame, delta: float | None) -> str:
    """What the summary figure shows, from its numbers."""
    ls = "; ".join(f"{method_label(r.method)} {_interval(r.ls_mean, r.ls_lo, r.ls_hi)}"
                   for r in rows.itertuples(index=False))
    ce_rows = rows[rows["ce_mean"].notna()]
    ce = "; ".join(f"{method_label(r.method)} {_interval(r.ce_mean, r.ce_lo, r.ce_hi)}"
                   for r in ce_rows.itertuples(index=False))
    n = sorted({int(x) for x in rows["n"].dropna()})
    outside = int(((rows["ls_lo"] > (delta or 0)) | (rows["ls_hi"] < -(delta or 0))).sum())
    text = (f"Left: standardized (z-score) minus raw logits per method, paired by seed (n = "
            f"{', '.join(map(str, n))}), points: {ls}. ")
    text += (f"Right: each method with raw logits minus the CE-only student: {ce}. " if ce else
             "Right: empty, diagnostics.csv has no gain over the CE student (run the tables step). ")
    if delta is not None:
        text += (f"Grey band: ±δ = ±{delta:.2f} points, the smallest effect of interest; {outside} of {len(rows)} "
                 "LS − raw intervals lie wholly outside it. ")
    if rows[["paper_ls", "paper_ce"]].notna().any().any():
        text += "White diamonds: the paper's gains for the matching setting (best epoch, its protocol)."
    else:
        text += "No setting of this config matches a paper setting (dataset or models differ), so no paper gain is drawn."
    return text


__all__ = ["paper_gains", "summary", "summary_caption"]
