"""Accuracy figures: accuracy vs temperature, the KD-weight × temperature heatmap, training curves.

Both grid figures draw the grid runs (stage 1 under the validation protocol, every distillation run under the
paper's) on the split those runs were measured on (``split``: ``val`` or ``test``); unhealthy runs (``status``,
:mod:`lskd.analysis.health`) are left out of their lines and cells and named instead. Tables written before these
columns existed read as stage ``sweep``, split ``test``, status ``ok`` (:func:`column`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator

from lskd.analysis.health import HEALTHY, healthy_mask
from lskd.report.figures_common import (
    PAIR,
    Figure,
    Results,
    fmt_num,
    method_label,
    new_figure,
    pair_mask,
    save,
    setting_label,
    transform_label,
)

MARKERS = ("o", "s", "^", "D")
#: Run column → its value in tables written before the column existed.
DEFAULTS = {"stage": "sweep", "split": "test", "status": HEALTHY}
SPLIT_NAMES = {"val": "validation", "test": "test"}


# ---------------------------------------------------------------------------------------------- columns
def column(df: pd.DataFrame, name: str, default: Any = None) -> pd.Series:
    """``df[name]`` with empty cells as ``default`` (:data:`DEFAULTS` when None); all ``default`` when the
    column is absent."""
    default = DEFAULTS.get(name) if default is None else default
    if name not in df:
        return pd.Series(default, index=df.index, dtype=object)
    values = df[name]
    return values.where(values.notna() & (values.astype(str) != ""), default)


def grid_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The distillation runs of the grid: every stage but ``confirm`` (the validation protocol's stage 2)."""
    distill = runs[runs["role"] == "distill"]
    return distill[column(distill, "stage") != "confirm"]


def healthy(df: pd.DataFrame) -> pd.Series:
    """Whether each row's ``status`` is healthy (:func:`lskd.analysis.health.healthy_mask`)."""
    return healthy_mask(column(df, "status"))


def split_of(df: pd.DataFrame) -> str:
    """``val`` when any row was measured on the validation split, else ``test``."""
    return "val" if (column(df, "split") == "val").any() else "test"


def chance_level(res: Results, df: pd.DataFrame) -> float | None:
    """Top-1 (%) of guessing: 100 / classes, from ``num_classes`` or the first run's spec; None when unknown."""
    k = pd.to_numeric(column(df, "num_classes", np.nan), errors="coerce").dropna()
    if len(k):
        return 100.0 / float(k.iloc[0])
    for run_dir in df["run_dir"]:
        try:
            return 100.0 / float(res.record(run_dir)["resolved"]["num_classes"])
        except (FileNotFoundError, KeyError, TypeError, ValueError):
            continue
    return None


def _with_labels(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(logits=df["transform"].map(transform_label), method_name=df["method"].map(method_label))


def _ticks(temps: list[float]) -> list[float]:
    """Temperatures as log-axis ticks, dropping any within 0.3 log2-units of a kept one (CTKD's learned T)."""
    kept: list[float] = []
    for t in sorted(temps):
        if not kept or np.log2(t) - np.log2(kept[-1]) >= 0.3:
            kept.append(t)
    return kept


def _at_selected_weight(res: Results, df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose kd_weight is the one each (pair, method, transform) reports (one line per transform; ``w_sel``
    is that weight)."""
    weights = res.selected.groupby([*PAIR, "method", "transform"])["kd_weight"].first().rename("w_sel")
    merged = df.join(weights, on=[*PAIR, "method", "transform"])
    return merged[np.isclose(merged["kd_weight"], merged["w_sel"])]


def _unhealthy_cells(bad: pd.DataFrame) -> pd.DataFrame:
    """One row per grid cell with an unhealthy run: its x position (the temperature, or the mean learned one),
    statuses and counts."""
    x = bad["temperature"].where(bad["temperature"].notna(), bad["effective_temperature"])
    keys = ["method", "method_name", "logits", "temperature", "kd_weight"]
    cells = bad.assign(x=x, status=column(bad, "status")).groupby(keys, dropna=False, sort=False)
    return cells.agg(x=("x", "mean"), status=("status", lambda s: ", ".join(sorted(set(s)))),
                     n_bad=("status", "size")).reset_index()


def _unhealthy_markers(ax, res: Results, bad: pd.DataFrame, seeds: pd.DataFrame, chance: float | None,
                       draw: bool = True) -> tuple[list[str], list[Line2D]]:
    """An 'x' at the chance level (the axis floor when unknown) per cell with an unhealthy run (``draw``: else only
    the notes); returns a caption phrase per cell and the legend handle."""
    if bad.empty:
        return [], []
    y = chance if chance is not None else ax.get_ylim()[0]
    notes = []
    for r in _unhealthy_cells(bad).itertuples(index=False):
        if draw and np.isfinite(r.x):
            ax.scatter([r.x], [y], marker="x", s=70, linewidths=2, color=res.palette[r.method], zorder=4)
        t = "learned T" if pd.isna(r.temperature) else f"T={fmt_num(r.temperature)}"
        same_t = seeds["temperature"].isna() if pd.isna(r.temperature) else seeds["temperature"] == r.temperature
        n = int(((seeds["method"] == r.method) & (seeds["logits"] == r.logits) & same_t
                 & np.isclose(seeds["kd_weight"], r.kd_weight)).sum())
        notes.append(f"{r.method_name} {r.logits} {t}, w={fmt_num(r.kd_weight)}: {r.status} {r.n_bad}/{n}")
    where = f"chance ({chance:.1f}%)" if chance is not None else "the bottom of the axis"
    handle = Line2D([], [], marker="x", ls="", color="black", label=f"unhealthy run, at {where}")
    return notes, [handle]


def reference_column(res: Results, split: str) -> str:
    """The runs.csv column that puts the teacher and CE baselines on the figure's split: ``val_top1`` (their
    accuracy on the held-out validation split) for a stage-1 figure when recorded, else ``last_top1`` (test)."""
    refs = res.runs[res.runs["role"].isin(["teacher", "baseline"])]
    if split == "validation" and "val_top1" in refs and refs["val_top1"].notna().all() and len(refs):
        return "val_top1"
    return "last_top1"


def _grid_frames(res: Results) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(healthy fixed-temperature runs at each arm's reported weight, healthy learned-temperature runs, the
    unhealthy runs of every cell and weight, every grid run), labelled."""
    runs = _with_labels(grid_runs(res.runs))
    fixed = _at_selected_weight(res, runs[runs["temperature"].notna()])
    learned = runs[runs["temperature"].isna()]
    ok_fixed, ok_learned = fixed[healthy(fixed)], learned[healthy(learned)]
    return ok_fixed, ok_learned, runs[~healthy(runs)], runs


#: The x axis of each transform: raw logits are divided by T, standardized ones by the base temperature τ.
X_NAMES = {"none": "temperature T", "zscore": "base temperature τ (z-score)"}


def _x_name(transform: str) -> str:
    return X_NAMES.get(transform, f"temperature ({transform_label(transform)})")


def _ce_mean(res: Results, pair: tuple[str, str, str], col: str) -> tuple[float, float]:
    """(CE-only student's mean, teacher's mean) by ``col`` for a pair; NaN when absent."""
    teachers, baselines = res.references(pair)
    return (float(baselines[col].mean()) if len(baselines) else np.nan,
            float(teachers[col].mean()) if len(teachers) else np.nan)


def _diff_axis(ax, res: Results, method: str, fixed: pd.DataFrame, learned: pd.DataFrame, bad: pd.DataFrame,
               ce: float, transform: str) -> list[str]:
    """One method and transform: mean top-1 − CE (± 1 std over seeds) against its own temperature axis; learned
    temperatures as hollow markers on a 'learned T' axis; unhealthy cells as 'x' at the axis floor."""
    color = res.palette[method]
    notes = []
    ax.axhline(0, color="grey", ls="--", lw=1.2)
    pts = fixed.groupby("temperature")["last_top1"].agg(["mean", "std", "size"]).reset_index()
    if len(pts):
        ax.errorbar(pts["temperature"], pts["mean"] - ce, yerr=pts["std"].fillna(0), fmt="-o", color=color,
                    capsize=3, ms=6)
        best = pts.loc[pts["mean"].idxmax()]
        sym = "τ" if transform == "zscore" else "T"
        notes.append(f"{method_label(method)} {transform_label(transform)}: best {sym}={fmt_num(best['temperature'])}"
                     f" at {best['mean'] - ce:+.1f} points vs CE")
    if len(learned):
        x, m = learned["effective_temperature"].mean(), learned["last_top1"].mean()
        sd = learned["last_top1"].std(ddof=1) if len(learned) > 1 else None
        xsd = learned["effective_temperature"].std(ddof=1) if len(learned) > 1 else None
        ax.errorbar(x, m - ce, xerr=xsd, yerr=sd, fmt="o", ms=9, mfc="white", mew=2, color=color, capsize=3)
        notes.append(f"{method_label(method)} {transform_label(transform)} learned T≈{x:.1f}: {m - ce:+.1f} points "
                     "vs CE")
    xs = set(pts["temperature"]) | ({round(float(learned["effective_temperature"].mean()), 1)} if len(learned)
                                     else set()) | set(bad["temperature"].dropna())
    temps = _ticks([t for t in xs if np.isfinite(t) and t > 0])
    if temps:
        ax.set_xscale("log", base=2)
        ax.set_xticks(temps, [fmt_num(t, 1) for t in temps])
        ax.minorticks_off()
    learned_only = pts.empty and len(learned)
    ax.set_xlabel("learned T (mean over seeds)" if learned_only else _x_name(transform), fontsize=8)
    ax.set_title(f"{method_label(method)}, {transform_label(transform)}", fontsize=9)
    return notes


def _share_y(axes: list, color: Any, bad: list[pd.DataFrame]) -> None:
    """One y range for a method's transforms (the union of their data), then its unhealthy cells as 'x' at the
    bottom of that range."""
    lims = [ax.get_ylim() for ax in axes]
    lo, hi = min(a for a, _ in lims), max(b for _, b in lims)
    for ax, b in zip(axes, bad):
        ax.set_ylim(lo, hi)
        if len(b):
            xb = b["temperature"].where(b["temperature"].notna(), b["effective_temperature"])
            ax.scatter(xb, [lo] * len(b), marker="x", s=60, linewidths=2, color=color, zorder=4, clip_on=False)


def accuracy_vs_temperature(res: Results, out_dir: Path) -> Figure | None:
    fixed, learned, bad, every = _grid_frames(res)
    if fixed.empty and bad.empty and learned.empty:
        return None
    split = SPLIT_NAMES[split_of(grid_runs(res.runs))]
    ref_col = reference_column(res, split)
    transforms = [t for t in res.transforms if t in set(every["transform"])]
    panels = [(pair, m) for pair in res.pairs for m in res.methods
              if (pair_mask(every, pair) & (every["method"] == m)).any()]
    per_row = 2 if len(transforms) <= 2 else 1
    nrows = -(-len(panels) // per_row)
    ncols = per_row * len(transforms)
    fig = new_figure(2.9 * ncols + 0.6, 2.5 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    sentences: list[str] = []
    unhealthy: list[str] = []
    teachers: list[str] = []
    for i, (pair, method) in enumerate(panels):
        row, col0 = divmod(i, per_row)
        ce, teacher = _ce_mean(res, pair, ref_col)
        if not np.isnan(teacher) and not np.isnan(ce):
            teachers.append(f"{pair[1]} {teacher - ce:+.1f}")
        for j, transform in enumerate(transforms):
            ax = axes[row, col0 * len(transforms) + j]
            sel = lambda df: df[pair_mask(df, pair) & (df["method"] == method) & (df["transform"] == transform)]  # noqa: E731
            notes = _diff_axis(ax, res, method, sel(fixed), sel(learned), sel(bad), ce, transform)
            sentences += [f"{pair[1]} → {pair[2]}: {n}" if len(res.pairs) > 1 else n for n in notes]
            ax.set_ylabel(f"top-1 − CE student ({split}, points)" if col0 == 0 and j == 0 else "", fontsize=8)
        row_axes = list(axes[row, col0 * len(transforms):(col0 + 1) * len(transforms)])
        _share_y(row_axes, res.palette[method],
                 [bad[pair_mask(bad, pair) & (bad["method"] == method) & (bad["transform"] == t)] for t in transforms])
        cells, _ = _unhealthy_markers(axes[row, col0 * len(transforms)], res, bad[pair_mask(bad, pair)
                                      & (bad["method"] == method)], every[pair_mask(every, pair)], None,
                                      draw=False)  # the panels draw their own (_diff_axis)
        unhealthy += cells
    for ax in axes.ravel()[len(panels) * len(transforms):]:
        ax.set_visible(False)
    return save(fig, out_dir, "accuracy_vs_temperature", "Accuracy vs temperature, relative to the CE student",
                _accuracy_caption(sentences, unhealthy, fixed, split, None, ref_col, teachers))


def _accuracy_caption(sentences: list[str], unhealthy: list[str], fixed: pd.DataFrame, split: str,
                      chance: float | None, ref_col: str = "last_top1", teachers: list[str] | None = None) -> str:
    """What the accuracy-vs-temperature figure shows: the comparisons, then what a point is and where."""
    n = int(fixed.groupby([*PAIR, "method", "transform", "temperature"]).size().max()) if len(fixed) else 0
    where = ("the validation split held out of the training set (stage 1)" if split == "validation"
             else "the test set")
    text = ("; ".join(sentences) + ". ") if sentences else ""
    text += (f"Points: mean last-epoch top-1 on {where} minus the CE-only student's (dashed zero line), over the "
             f"healthy seeds (error bars ± 1 std, up to n={n}); each panel is one method and logit transform with "
             "its own axis: raw logits against the temperature T, z-score logits against the base temperature τ, "
             "learned temperatures (hollow markers) against the mean learned T; each line uses the KD weight its "
             "transform reports")
    if teachers:
        text += f"; the teacher lies off the axis, at {', '.join(teachers)} points"
    if split == "validation":
        text += (", teacher and CE student on the same validation split (their last-epoch models)."
                 if ref_col == "val_top1" else ", teacher and CE student on the test set (no validation logits "
                 "were kept for them).")
    else:
        text += "."
    if unhealthy:
        text += (" ×: grid cells (any KD weight) with unhealthy runs (see Run health), drawn at the "
                 f"bottom of the axis and left out of the lines: {'; '.join(unhealthy)}.")
    return text


def _plural_runs(n: int) -> str:
    return "1 run was" if n == 1 else f"{n} runs were"


def kd_weight_temperature_heatmap(res: Results, out_dir: Path) -> Figure | None:
    runs = grid_runs(res.runs)
    fixed = runs[runs["temperature"].notna()]
    split = SPLIT_NAMES[split_of(runs)]
    bad = fixed[~healthy(fixed)]
    fixed = fixed.assign(last_top1=fixed["last_top1"].where(healthy(fixed)))  # unhealthy runs: out of the means
    panels = []
    for key, g in fixed.groupby([*PAIR, "method", "transform"], sort=False):
        if g["kd_weight"].nunique() >= 2 and g["temperature"].nunique() >= 2 and g["last_top1"].notna().any():
            panels.append((key, g.pivot_table(index="kd_weight", columns="temperature", values="last_top1",
                                              aggfunc="mean", dropna=False)))
    if not panels:
        return None
    panels = panels[:8]
    ncols = min(len(panels), 2)
    nrows = -(-len(panels) // ncols)
    fig = new_figure(5.0 * ncols + 0.8, 3.6 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    vmin = min(float(p.min().min()) for _, p in panels)
    vmax = max(float(p.max().max()) for _, p in panels)
    sentences = []
    for ax, (key, pivot) in zip(axes, panels):
        sns.heatmap(pivot, annot=True, fmt=".1f", cmap="viridis", vmin=vmin, vmax=vmax, ax=ax,
                    cbar=ax is axes[len(panels) - 1], cbar_kws={"label": f"{split} top-1, last epoch (%)"},
                    xticklabels=[fmt_num(t) for t in pivot.columns], yticklabels=[fmt_num(w) for w in pivot.index])
        w, t = pivot.stack().idxmax()
        i, j = list(pivot.index).index(w), list(pivot.columns).index(t)
        ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="white", lw=3))
        ax.set(title=f"{method_label(key[3])}, {transform_label(key[4])} ({key[1]} → {key[2]})",
               xlabel="temperature T", ylabel="KD weight w")
        sentences.append(f"{method_label(key[3])} {transform_label(key[4])}: best w={fmt_num(w)}, T={fmt_num(t)} "
                         f"({pivot.loc[w, t]:.1f}%), worst {float(pivot.min().min()):.1f}%")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    flagged = (f" {_plural_runs(len(bad))} in these grids unhealthy (see Run health) and left out of the means; "
               "a blank cell has no healthy run; the grid table names their cells." if len(bad) else "")
    caption = ("; ".join(sentences) + f". Cells: mean last-epoch {split} top-1 over the healthy seeds; the white "
               "box marks each panel's best cell (the paper's Table 4 shows the same grid for KD on CIFAR-100 at "
               "τ = 2)." + flagged)
    return save(fig, out_dir, "kd_weight_temperature_heatmap", "KD weight × temperature", caption)


def _curves(res: Results, runs: list[tuple[str, pd.Series]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test top-1 per epoch and the loss terms per epoch (long form) of (transform, run) pairs."""
    acc, loss = [], []
    for transform, run in runs:
        hist = res.history(run["run_dir"])
        acc.append(hist.assign(logits=transform_label(transform)))
        terms = hist.melt(id_vars="epoch", value_vars=[c for c in hist.columns if c.startswith("loss_")],
                          var_name="term", value_name="loss")
        loss.append(terms.assign(logits=transform_label(transform), term=terms["term"].str.removeprefix("loss_")))
    return pd.concat(acc), pd.concat(loss)


def _log_axis(ax) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0,)))
    ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    for set_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        set_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def training_curves(res: Results, out_dir: Path) -> Figure | None:
    if not res.pairs:
        return None
    pair = res.pairs[0]
    reps = {m: [(t, r) for t in res.transforms if (r := res.representative(pair, m, t)) is not None]
            for m in res.methods}
    reps = {m: runs for m, runs in reps.items() if runs}
    if not reps:
        return None
    frames = {m: _curves(res, runs) for m, runs in reps.items()}
    terms = sorted({t for _, loss in frames.values() for t in loss["term"]})
    term_colors = dict(zip(terms, sns.color_palette("Dark2", len(terms))))
    fig = new_figure(3.6 * len(reps) + 1.8, 7.0)
    axes = fig.subplots(2, len(reps), squeeze=False, sharex=True)
    for col, (method, (acc, loss)) in enumerate(frames.items()):
        styles = [transform_label(t) for t, _ in reps[method]]
        sns.lineplot(acc, x="epoch", y="test_top1", style="logits", style_order=styles, markers=True,
                     color=res.palette[method], ax=axes[0, col], legend=col == len(reps) - 1)
        sns.lineplot(loss, x="epoch", y="loss", hue="term", style="logits", style_order=styles, markers=True,
                     palette=term_colors, ax=axes[1, col])
        if (loss["loss"] > 0).all():
            _log_axis(axes[1, col])
        axes[0, col].set(title=method_label(method), ylabel="test top-1 (%)" if col == 0 else "")
        axes[1, col].set(ylabel="loss term (train, per sample)" if col == 0 else "")
        axes[1, col].xaxis.get_major_locator().set_params(integer=True)
        sns.move_legend(axes[1, col], "upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=7, title=None)
    if axes[0, -1].get_legend() is not None:
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    lines, late = [], []
    for method, runs in reps.items():
        for transform, run in runs:
            hist = res.history(run["run_dir"])
            late.append(hist["test_top1"].max() - hist["test_top1"].iloc[-1])
            lines.append(f"{method_label(method)} {transform_label(transform)} ({setting_label(run)}): "
                         f"{hist['test_top1'].iloc[-1]:.1f}%")
    n_late = sum(d > 1e-9 for d in late)
    caption = (f"One representative run per method and transform (the reported setting, smallest seed; "
               f"{pair[1]} → {pair[2]}). Last-epoch test top-1: " + "; ".join(lines) + ". "
               + (f"In {n_late} of {len(late)} runs the best epoch beats the last, by up to {max(late):.1f} points."
                  if n_late else "In every run the last epoch is also the best."))
    return save(fig, out_dir, "training_curves", "Training curves", caption)


__all__ = ["accuracy_vs_temperature", "kd_weight_temperature_heatmap", "training_curves"]
