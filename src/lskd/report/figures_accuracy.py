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
    span_phrase,
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


def _compare_sentence(method: str, diffs: dict[float, float]) -> str:
    temps = ", ".join(fmt_num(t) for t in sorted(diffs))
    values = list(diffs.values())
    name = method_label(method)
    if len(values) > 1 and all(v > 0 for v in values):
        return f"z-score beats raw {name} at every temperature here ({span_phrase(values)})"
    if len(values) > 1 and all(v < 0 for v in values):
        return f"raw {name} beats z-score at every temperature here ({span_phrase(values)})"
    ahead = sum(v > 0 for v in values)
    return f"z-score − raw {name}: {span_phrase(values)} (z-score ahead at {ahead} of {len(values)}; T ∈ {{{temps}}})"


def _learned_markers(ax, res: Results, learned: pd.DataFrame, markers: dict[str, str]) -> list[str]:
    """CTKD-style runs (learned temperature): a hollow marker at the mean learned T, ± 1 std both ways."""
    notes = []
    for (method, label), g in learned.groupby(["method", "logits"], sort=False):
        x, y = g["effective_temperature"].mean(), g["last_top1"].mean()
        ax.errorbar(x, y, xerr=g["effective_temperature"].std(ddof=1) if len(g) > 1 else None,
                    yerr=g["last_top1"].std(ddof=1) if len(g) > 1 else None, fmt=markers.get(label, "o"),
                    markersize=10, mfc="white", mew=2, color=res.palette[method], capsize=3)
        ax.annotate(f"{method_label(method)} ({label}, learned T)", (x, y), textcoords="offset points",
                    xytext=(-6, 8), ha="right", fontsize=8)
        notes.append(f"{method_label(method)} ({label}) learned T≈{x:.1f}")
    return notes


def _unhealthy_cells(bad: pd.DataFrame) -> pd.DataFrame:
    """One row per grid cell with an unhealthy run: its x position (the temperature, or the mean learned one),
    statuses and counts."""
    x = bad["temperature"].where(bad["temperature"].notna(), bad["effective_temperature"])
    keys = ["method", "method_name", "logits", "temperature", "kd_weight"]
    cells = bad.assign(x=x, status=column(bad, "status")).groupby(keys, dropna=False, sort=False)
    return cells.agg(x=("x", "mean"), status=("status", lambda s: ", ".join(sorted(set(s)))),
                     n_bad=("status", "size")).reset_index()


def _unhealthy_markers(ax, res: Results, bad: pd.DataFrame, seeds: pd.DataFrame, chance: float | None,
                       ) -> tuple[list[str], list[Line2D]]:
    """An 'x' at the chance level (the axis floor when unknown) per cell with an unhealthy run;
    returns a caption phrase per cell and the legend handle."""
    if bad.empty:
        return [], []
    y = chance if chance is not None else ax.get_ylim()[0]
    notes = []
    for r in _unhealthy_cells(bad).itertuples(index=False):
        if np.isfinite(r.x):
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


def _reference_lines(ax, res: Results, pair: tuple[str, str, str], col: str) -> list[Line2D]:
    """Teacher (dotted) and CE-trained student (dashed, ± 1 std band) by ``col``; legend handles for both."""
    teachers, baselines = res.references(pair)
    handles = []
    if len(teachers):
        ax.axhline(teachers[col].mean(), color="black", ls=":", lw=1.5)
        handles.append(Line2D([], [], color="black", ls=":", label=f"teacher {teachers[col].mean():.1f}"))
    if len(baselines):
        m, s = baselines[col].mean(), baselines[col].std(ddof=1) if len(baselines) > 1 else 0.0
        ax.axhline(m, color="grey", ls="--", lw=1.5)
        ax.axhspan(m - s, m + s, color="grey", alpha=0.15, lw=0)
        handles.append(Line2D([], [], color="grey", ls="--", label=f"CE baseline {m:.1f}"))
    return handles


def _compare_sentences(res: Results, fixed: pd.DataFrame) -> list[str]:
    """Per method: z-score minus raw mean accuracy at each temperature both transforms ran."""
    out = []
    for method in res.methods:
        means = fixed[fixed["method"] == method].groupby(["temperature", "transform"])["last_top1"].mean().unstack()
        if {"none", "zscore"} <= set(means.columns) and len(diffs := (means["zscore"] - means["none"]).dropna()):
            out.append(_compare_sentence(method, diffs.to_dict()))
    return out


def _grid_frames(res: Results) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(healthy fixed-temperature runs at each arm's reported weight, healthy learned-temperature runs, the
    unhealthy runs of every cell and weight, every grid run), labelled."""
    runs = _with_labels(grid_runs(res.runs))
    fixed = _at_selected_weight(res, runs[runs["temperature"].notna()])
    learned = runs[runs["temperature"].isna()]
    ok_fixed, ok_learned = fixed[healthy(fixed)], learned[healthy(learned)]
    return ok_fixed, ok_learned, runs[~healthy(runs)], runs


def accuracy_vs_temperature(res: Results, out_dir: Path) -> Figure | None:
    fixed, learned, bad, every = _grid_frames(res)
    if fixed.empty and bad.empty:
        return None
    split = SPLIT_NAMES[split_of(grid_runs(res.runs))]
    ref_col = reference_column(res, split)
    chance = chance_level(res, every) if len(bad) else None
    styles = [transform_label(t) for t in res.transforms]
    markers = dict(zip(styles, MARKERS))
    dashes = dict(zip(styles, ["", (4, 2), (1, 1), (3, 1, 1, 1)]))
    hues = {method_label(m): c for m, c in res.palette.items()}
    fig = new_figure(5.2 * len(res.pairs) + 2.4, 4.4)
    axes = np.atleast_1d(fig.subplots(1, len(res.pairs), sharey=True, squeeze=False)[0])
    sentences: list[str] = []
    unhealthy: list[str] = []
    for ax, pair in zip(axes, res.pairs):
        sub, lsub = fixed[pair_mask(fixed, pair)], learned[pair_mask(learned, pair)]
        if len(sub):
            sns.lineplot(sub, x="temperature", y="last_top1", hue="method_name", style="logits",
                         hue_order=list(hues), palette=hues, style_order=styles, markers=markers, dashes=dashes,
                         errorbar="sd", err_style="bars", err_kws={"capsize": 3}, ax=ax, legend=ax is axes[-1])
        notes = _compare_sentences(res, sub) + _learned_markers(ax, res, lsub, markers)
        sentences += [f"{pair[1]} → {pair[2]}: {n}" if len(res.pairs) > 1 else n for n in notes]
        extra = _reference_lines(ax, res, pair, ref_col)
        cells, handles = _unhealthy_markers(ax, res, bad[pair_mask(bad, pair)], every[pair_mask(every, pair)],
                                            chance)
        unhealthy += cells
        extra += handles
        xs = set(sub["temperature"]) | set(np.round(lsub["effective_temperature"].unique()))
        xs |= {t for t in bad["temperature"].dropna()}
        temps = _ticks([t for t in xs if np.isfinite(t) and t > 0])
        ax.set_xscale("log", base=2)
        ax.set_xticks(temps, [fmt_num(t, 1) for t in temps])
        ax.minorticks_off()
        ax.set(title=f"{pair[1]} → {pair[2]} ({pair[0]})", xlabel="temperature T (τ for z-score; log scale)",
               ylabel=f"last-epoch {split} top-1 (%)")
        if ax is axes[-1]:
            handles, labels = ax.get_legend_handles_labels()
            labels = [{"method_name": "method"}.get(lab, lab) for lab in labels]
            ax.legend(handles + extra, labels + [h.get_label() for h in extra], loc="upper left",
                      bbox_to_anchor=(1.02, 1.0), fontsize=8)
    return save(fig, out_dir, "accuracy_vs_temperature", "Accuracy vs temperature",
                _accuracy_caption(sentences, unhealthy, fixed, split, chance, ref_col))


def _accuracy_caption(sentences: list[str], unhealthy: list[str], fixed: pd.DataFrame, split: str,
                      chance: float | None, ref_col: str = "last_top1") -> str:
    """What the accuracy-vs-temperature figure shows: the comparisons, then what a point is and where."""
    n = int(fixed.groupby([*PAIR, "method", "transform", "temperature"]).size().max()) if len(fixed) else 0
    where = ("the validation split held out of the training set (stage 1)" if split == "validation"
             else "the test set")
    text = ("; ".join(sentences) + ". ") if sentences else ""
    text += (f"Points: mean last-epoch top-1 on {where} over the healthy seeds (error bars ± 1 std, up to n={n}); "
             "each line uses the KD weight its transform reports; dotted: teacher, dashed with band: CE-trained "
             "student (± 1 std)")
    if split == "validation":
        text += (", on the same validation split (their last-epoch models)." if ref_col == "val_top1"
                 else ", both on the test set (no validation logits were kept for them).")
    else:
        text += "."
    if unhealthy:
        level = f"chance ({chance:.1f}%)" if chance is not None else "the bottom of the axis"
        text += (f" ×: grid cells (any KD weight) with unhealthy runs (see Run health), drawn at "
                 f"{level} and left out of the lines: {'; '.join(unhealthy)}.")
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
