"""Accuracy figures: accuracy vs temperature, the KD-weight × temperature heatmap, training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator

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
    """Rows whose kd_weight is the one each (pair, method, transform) reports (one line per transform)."""
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


def _reference_lines(ax, res: Results, pair: tuple[str, str, str]) -> list[Line2D]:
    """Teacher (dotted) and CE-trained student (dashed, ± 1 std band); legend handles for both."""
    teachers, baselines = res.references(pair)
    handles = []
    if len(teachers):
        ax.axhline(teachers["last_top1"].mean(), color="black", ls=":", lw=1.5)
        handles.append(Line2D([], [], color="black", ls=":", label=f"teacher {teachers['last_top1'].mean():.1f}"))
    if len(baselines):
        m, s = baselines["last_top1"].mean(), baselines["last_top1"].std(ddof=1) if len(baselines) > 1 else 0.0
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


def accuracy_vs_temperature(res: Results, out_dir: Path) -> Figure | None:
    fixed = _at_selected_weight(res, res.distill[res.distill["temperature"].notna()])
    if fixed.empty:
        return None
    learned = _with_labels(res.distill[res.distill["temperature"].isna()])
    fixed = _with_labels(fixed)
    styles = [transform_label(t) for t in res.transforms]
    markers = dict(zip(styles, MARKERS))
    dashes = dict(zip(styles, ["", (4, 2), (1, 1), (3, 1, 1, 1)]))
    hues = {method_label(m): c for m, c in res.palette.items()}
    fig = new_figure(5.2 * len(res.pairs) + 2.4, 4.4)
    axes = np.atleast_1d(fig.subplots(1, len(res.pairs), sharey=True, squeeze=False)[0])
    sentences: list[str] = []
    for ax, pair in zip(axes, res.pairs):
        sub, lsub = fixed[pair_mask(fixed, pair)], learned[pair_mask(learned, pair)]
        sns.lineplot(sub, x="temperature", y="last_top1", hue="method_name", style="logits", hue_order=list(hues),
                     palette=hues, style_order=styles, markers=markers, dashes=dashes, errorbar="sd",
                     err_style="bars", err_kws={"capsize": 3}, ax=ax, legend=ax is axes[-1])
        notes = _compare_sentences(res, sub) + _learned_markers(ax, res, lsub, markers)
        sentences += [f"{pair[1]} → {pair[2]}: {n}" if len(res.pairs) > 1 else n for n in notes]
        extra = _reference_lines(ax, res, pair)
        temps = _ticks(list(set(sub["temperature"]) | set(np.round(lsub["effective_temperature"].unique()))))
        ax.set_xscale("log", base=2)
        ax.set_xticks(temps, [fmt_num(t, 1) for t in temps])
        ax.minorticks_off()
        ax.set(title=f"{pair[1]} → {pair[2]} ({pair[0]})", xlabel="temperature T (τ for z-score; log scale)",
               ylabel="test top-1, last epoch (%)")
        if ax is axes[-1]:
            handles, labels = ax.get_legend_handles_labels()
            labels = [{"method_name": "method"}.get(lab, lab) for lab in labels]
            ax.legend(handles + extra, labels + [h.get_label() for h in extra], loc="upper left",
                      bbox_to_anchor=(1.02, 1.0), fontsize=8)
    n = int(fixed.groupby([*PAIR, "method", "transform", "temperature"]).size().max())
    caption = (("; ".join(sentences) + ". ") if sentences else "") + (
        f"Points: mean last-epoch test top-1 over seeds (error bars ± 1 std, up to n={n}); each line uses the KD "
        "weight its transform reports; dotted: teacher, dashed with band: CE-trained student (± 1 std).")
    return save(fig, out_dir, "accuracy_vs_temperature", "Accuracy vs temperature", caption)


def kd_weight_temperature_heatmap(res: Results, out_dir: Path) -> Figure | None:
    fixed = res.distill[res.distill["temperature"].notna()]
    panels = []
    for key, g in fixed.groupby([*PAIR, "method", "transform"], sort=False):
        if g["kd_weight"].nunique() >= 2 and g["temperature"].nunique() >= 2:
            panels.append((key, g.pivot_table(index="kd_weight", columns="temperature", values="last_top1",
                                              aggfunc="mean")))
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
                    cbar=ax is axes[len(panels) - 1], cbar_kws={"label": "test top-1, last epoch (%)"},
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
    caption = ("; ".join(sentences) + ". Cells: mean last-epoch test top-1 over seeds; the white box marks each "
               "panel's best cell (the paper's Table 4 shows the same grid for KD on CIFAR-100 at τ = 2).")
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
