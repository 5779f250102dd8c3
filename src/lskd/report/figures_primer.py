"""A logit primer drawn from the run's own teacher: one real test sample's logits, its softmax at several
temperatures (temperature softens the distribution), and the same after z-score standardization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
import torch
from scipy import special

from lskd.losses import standardize
from lskd.report.figures_common import Figure, Results, new_figure, save

TEMPERATURES = (0.5, 1.0, 2.0, 5.0)
MAX_BARS = 10
TARGET_CONFIDENCE = 0.8  # a confident but not saturated sample shows softening best


def pick_sample(logits: np.ndarray, targets: np.ndarray) -> int:
    """The correctly classified sample whose T = 1 top probability is closest to 0.8 (smallest index on ties);
    every sample competes when none is correct."""
    conf = special.softmax(logits, axis=1).max(axis=1)
    candidates = np.flatnonzero(logits.argmax(axis=1) == targets)
    candidates = candidates if candidates.size else np.arange(len(targets))
    return int(candidates[np.argmin(np.abs(conf[candidates] - TARGET_CONFIDENCE))])


def _bars(ax, names: list[str], values: np.ndarray, true_idx: int, ylabel: str, title: str) -> None:
    colors = ["tab:orange" if i == true_idx else "tab:blue" for i in range(len(names))]
    ax.bar(range(len(names)), values, color=colors)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set(ylabel=ylabel, title=title)


def _softmaxes(ax, names: list[str], logits: np.ndarray, shown: np.ndarray, title: str,
               tlabel: str) -> dict[float, float]:
    """Grouped bars of ``softmax(logits / t)`` (over all classes) for the ``shown`` classes; the top probabilities."""
    rows, top = [], {}
    for t in TEMPERATURES:
        p = special.softmax(logits / t)
        top[t] = float(p.max())
        rows += [{"class": names[j], "probability": float(p[j]), tlabel: f"{t:g}"} for j in shown]
    sns.barplot(pd.DataFrame(rows), x="class", y="probability", hue=tlabel, palette="rocket_r", ax=ax)
    ax.tick_params(axis="x", labelrotation=45)
    for label in ax.get_xticklabels():
        label.set_ha("right")
    ax.set(title=title, xlabel="", ylim=(0, 1))
    return top


def logit_primer(res: Results, out_dir: Path) -> Figure | None:
    if not res.pairs:
        return None
    pair = res.pairs[0]
    teacher_dir = res.teacher_dir(pair)
    if teacher_dir is None:
        return None
    logits, targets = res.logits(teacher_dir)
    i = pick_sample(logits, targets)
    z, y = logits[i], int(targets[i])
    hp = res.record(teacher_dir).get("resolved", {}).get("hparams", {})
    zs = standardize(torch.from_numpy(z[None]), "zscore", std=hp.get("std", "unbiased")).double().numpy()[0]
    names = res.class_names(pair[0], len(z))
    shown = np.argsort(-z, kind="stable")[:MAX_BARS] if len(z) > MAX_BARS else np.arange(len(z))
    shown_names = [names[j] for j in shown]
    true_pos = int(np.flatnonzero(shown == y)[0]) if y in shown else -1
    fig = new_figure(12.5, 7.6)
    axes = fig.subplots(2, 2)
    _bars(axes[0, 0], shown_names, z[shown], true_pos, "logit", "(a) the teacher's logits for one test image")
    top = _softmaxes(axes[0, 1], names, z, shown, "(b) softmax(logits / T)", "T")
    _bars(axes[1, 0], shown_names, zs[shown], true_pos, "z-scored logit", "(c) the same logits after z-score")
    top_z = _softmaxes(axes[1, 1], names, zs, shown, "(d) softmax(z-scored logits / τ)", "τ")
    teacher = res.references(pair)[0]
    who = teacher["teacher"].iloc[0] if len(teacher) else pair[1]
    subset = f" (its {MAX_BARS} largest logits shown)" if len(z) > MAX_BARS else ""
    caption = (f"Teacher {who}, test sample #{i}, true class '{names[y]}', predicted '{names[int(z.argmax())]}'"
               f"{subset}; orange bars: the true class. Its top probability is " + ", ".join(f"{p:.2f} at T={t:g}" for t, p in top.items())
               + f": a higher temperature softens the distribution. After z-scoring (mean 0, std 1, range "
               f"{zs.min():.2f} to {zs.max():.2f}, same order) the top probability is "
               + ", ".join(f"{p:.2f} at τ={t:g}" for t, p in top_z.items()) + ", whatever the raw logits' scale.")
    return save(fig, out_dir, "logit_primer", "Logit primer: logits, temperature and z-score", caption)


__all__ = ["logit_primer", "pick_sample"]
