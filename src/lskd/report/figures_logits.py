"""Per-sample logit figures for one teacher/student pair: logit mean vs std (the paper's Fig. 5), the
per-class teacher − student logit difference (Fig. 3), and classification confidence with calibration.

The students shown are the method of :attr:`Results.focus_method` (KD when present) with raw and z-scored
logits, each at its reported setting (best mean last-epoch accuracy over its temperatures and KD weights) and
its smallest seed; the captions name them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
import torch

from lskd.losses import standardize
from lskd.report.figures_common import (
    Figure,
    Results,
    method_label,
    new_figure,
    save,
    setting_label,
)

ECE_BINS = 15  # as lskd.engine.metrics.expected_calibration_error
RELIABILITY_BINS = 10


def focus_students(res: Results) -> tuple[tuple[str, str, str], list[tuple[str, pd.Series]]] | None:
    """The first pair and its [("KD student", run), ("KD+LS student", run)] (those that exist)."""
    if not res.pairs or res.focus_method is None:
        return None
    pair, m = res.pairs[0], res.focus_method
    out = []
    for transform, label in (("none", f"{method_label(m)} student"), ("zscore", f"{method_label(m)}+LS student")):
        run = res.representative(pair, m, transform)
        if run is not None:
            out.append((label, run))
    return (pair, out) if out else None


def _who(students: list[tuple[str, pd.Series]]) -> str:
    return "; ".join(f"{label}: {setting_label(run)}" for label, run in students)


def _teacher_and_students(res: Results) -> tuple[tuple[str, str, str], list[tuple[str, pd.DataFrame]], str] | None:
    """Per-sample frames with columns ``mean``, ``std``, ``confidence_t1``, ``correct`` for the teacher (from the
    first student's ``teacher_*`` columns) and each focus student."""
    focus = focus_students(res)
    if focus is None:
        return None
    pair, students = focus
    frames = []
    first = res.stats(students[0][1]["run_dir"])
    if "teacher_mean" in first:
        teacher = first[[c for c in first.columns if c.startswith("teacher_")]]
        frames.append(("teacher", teacher.rename(columns=lambda c: c.removeprefix("teacher_"))))
    frames += [(label, res.stats(run["run_dir"])) for label, run in students]
    return pair, frames, _who(students)


def logit_mean_std(res: Results, out_dir: Path) -> Figure | None:
    data = _teacher_and_students(res)
    if data is None:
        return None
    pair, frames, who = data
    fig = new_figure(4.2 * len(frames), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(frames), sharex=True, sharey=True, squeeze=False)[0])
    for ax, (label, df) in zip(axes, frames):
        sns.histplot(df, x="mean", y="std", bins=40, cmap="mako_r", ax=ax)
        ax.set(title=label, xlabel="per-sample logit mean", ylabel="per-sample logit std")
        ax.text(0.02, 0.97, f"mean {df['mean'].mean():+.2f}\nstd {df['std'].mean():.2f}", transform=ax.transAxes,
                va="top", fontsize=8)
    stds = ", ".join(f"{label} {df['std'].mean():.2f}" for label, df in frames)
    spreads = ", ".join(f"{label} {df['mean'].std():.2f}" for label, df in frames)
    ratios = ", ".join(f"{label} {df['std_ratio'].mean():.2f}" for label, df in frames if "std_ratio" in df)
    caption = (f"Average per-sample logit std: {stds}; spread across samples of the per-sample logit mean: "
               f"{spreads}; mean student/teacher std ratio: {ratios}. The paper's argument: a shared temperature "
               "pushes a raw-logit student toward the teacher's logit range, while a z-scored student keeps its "
               f"own mean and scale ({pair[1]} → {pair[2]}; {who}).")
    return save(fig, out_dir, "logit_mean_std", "Logit mean vs standard deviation per sample", caption)


def _class_difference(v: np.ndarray, z: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    diff = v - z
    out = np.full((k, k), np.nan)
    for c in range(k):
        if (y == c).any():
            out[c] = diff[y == c].mean(axis=0)
    return out


def _zscore(x: np.ndarray, hparams: dict) -> np.ndarray:
    return standardize(torch.from_numpy(x), "zscore", std=hparams.get("std", "unbiased"),
                       eps=float(hparams.get("eps", 1e-7))).double().numpy()


def class_logit_difference(res: Results, out_dir: Path) -> Figure | None:
    focus = focus_students(res)
    if focus is None:
        return None
    pair, students = focus
    teacher_dir = res.teacher_dir(pair)
    if teacher_dir is None:
        return None
    v, y = res.logits(teacher_dir)
    k = v.shape[1]
    rows = []
    for label, run in students:
        z, yz = res.logits(run["run_dir"])
        if z.shape != v.shape or not np.array_equal(y, yz):
            continue
        hp = res.record(run["run_dir"]).get("resolved", {}).get("hparams", {})
        rows.append((label, _class_difference(v, z, y, k), _class_difference(_zscore(v, hp), _zscore(z, hp), y, k)))
    if not rows:
        return None
    names = res.class_names(pair[0], k)
    ticks = names if k <= 20 else "auto"
    fig = new_figure(5.6 * 2 + 0.6, 4.8 * len(rows))
    axes = fig.subplots(len(rows), 2, squeeze=False)
    limits = [max(float(np.nanmax(np.abs(r[i]))) for r in rows) for i in (1, 2)]
    sentences = []
    for i, (label, raw, std) in enumerate(rows):
        for j, (mat, kind) in enumerate(((raw, "raw logits"), (std, "z-scored logits"))):
            sns.heatmap(mat, cmap="vlag", center=0.0, vmin=-limits[j], vmax=limits[j], annot=k <= 10, fmt=".1f",
                        annot_kws={"fontsize": 7}, xticklabels=ticks, yticklabels=ticks, ax=axes[i, j],
                        cbar_kws={"label": "teacher − student"})
            axes[i, j].set(title=f"{label}: {kind}", xlabel="logit index (class)", ylabel="true class")
            axes[i, j].tick_params(axis="x", labelrotation=90)
            axes[i, j].tick_params(axis="y", labelrotation=0)
        sentences.append(f"{label} {np.nanmean(np.abs(raw)):.2f} raw / {np.nanmean(np.abs(std)):.2f} z-scored "
                         f"(true-class diagonal {np.nanmean(np.diag(raw)):+.2f} / {np.nanmean(np.diag(std)):+.2f})")
    caption = ("Mean |teacher − student| logit over the class grid: " + "; ".join(sentences) + ". Raw differences "
               "carry each sample's shift and scale; z-scoring both sides removes them, leaving only differences in "
               f"the relations between classes ({pair[1]} → {pair[2]}; {_who(students)}).")
    return save(fig, out_dir, "class_logit_difference", "Average teacher − student logit difference per class",
                caption)


def _ece(conf: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges[1:-1], conf, side="right"), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return 100.0 * total


def confidence_calibration(res: Results, out_dir: Path) -> Figure | None:
    data = _teacher_and_students(res)
    if data is None:
        return None
    pair, frames, who = data
    fig = new_figure(3.9 * (len(frames) + 1), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(frames) + 1, squeeze=False)[0])
    colors = dict(zip([label for label, _ in frames], sns.color_palette("dark", len(frames))))
    eces, confs = [], []
    for ax, (label, df) in zip(axes, frames):
        conf = df["confidence_t1"].to_numpy(np.float64)
        correct = df["correct"].to_numpy(bool)
        outcome = np.where(correct, "correct", "wrong")
        sns.histplot(x=conf, hue=outcome, hue_order=["correct", "wrong"], bins=20, binrange=(0, 1),
                     stat="probability", common_norm=False, element="step", palette={"correct": "tab:green",
                     "wrong": "tab:red"}, ax=ax, legend=ax is axes[0])
        ax.set(title=label, xlabel="max softmax probability (T = 1)", ylabel="fraction of its group")
        ece = _ece(conf, correct)
        eces.append(f"{label} {ece:.1f}%")
        c_ok = conf[correct].mean() if correct.any() else float("nan")
        c_bad = conf[~correct].mean() if (~correct).any() else float("nan")
        confs.append(f"{label} {c_ok:.2f}/{c_bad:.2f}")
        edges = np.linspace(0, 1, RELIABILITY_BINS + 1)
        which = np.clip(np.searchsorted(edges[1:-1], conf, side="right"), 0, RELIABILITY_BINS - 1)
        rel = pd.DataFrame({"bin": which, "conf": conf, "acc": correct}).groupby("bin").mean()
        axes[-1].plot(rel["conf"], rel["acc"], marker="o", color=colors[label], label=f"{label} (ECE {ece:.1f}%)")
    ax = axes[-1]
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1), title="reliability", xlabel="mean confidence in bin", ylabel="accuracy in bin")
    ax.legend(fontsize=8, loc="upper left")
    caption = (f"ECE ({ECE_BINS} bins, T = 1): {', '.join(eces)}. Mean confidence on correct/wrong predictions: "
               f"{', '.join(confs)}. Points under the diagonal are over-confident ({pair[1]} → {pair[2]}; {who}).")
    return save(fig, out_dir, "confidence_calibration", "Classification confidence and calibration", caption)


__all__ = ["class_logit_difference", "confidence_calibration", "focus_students", "logit_mean_std"]
