"""The softmax-temperature primer: one logit vector, its softmax at several temperatures, and optionally the same
after z-score standardization. :func:`draw_primer` is the one plotting function; the report's ``logit_primer``
figure (a real test sample of the run's teacher) and the ``lskd primer`` command both call it.

For logits ``z`` and temperature ``T``, ``p_k = exp(z_k / T) / Σ_j exp(z_j / T)``: ``T > 1`` flattens the
distribution, ``T < 1`` sharpens it. The z-scored version plots ``softmax(Z(z) / τ)`` with
``Z(z) = (z − mean(z)) / std(z)`` (Sun et al., CVPR 2024, Algorithm 1; :func:`lskd.losses.standardize`), whose
shape no longer depends on the shift or scale of ``z``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from scipy import special

from lskd.losses import standardize
from lskd.report.figures_common import Figure, Results, new_figure, save

TEMPERATURES: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
MAX_CLASSES = 10
TARGET_CONFIDENCE = 0.8  # a confident but not saturated sample shows softening best


@dataclass(frozen=True)
class Primer:
    """A drawn primer: the matplotlib ``figure``, the class indices ``shown`` (display order), the top
    probability per temperature (``top``; ``top_zscore`` for the z-scored logits, ``None`` without them) and
    the z-scored logits ``zscored`` (``None`` without them)."""

    figure: MplFigure
    shown: np.ndarray
    top: dict[float, float]
    top_zscore: dict[float, float] | None
    zscored: np.ndarray | None


def pick_sample(logits: np.ndarray, targets: np.ndarray) -> int:
    """The correctly classified sample whose T = 1 top probability is closest to 0.8 (smallest index on ties);
    every sample competes when none is correct."""
    conf = special.softmax(logits, axis=1).max(axis=1)
    candidates = np.flatnonzero(logits.argmax(axis=1) == targets)
    candidates = candidates if candidates.size else np.arange(len(targets))
    return int(candidates[np.argmin(np.abs(conf[candidates] - TARGET_CONFIDENCE))])


def _bars(ax: Axes, names: list[str], values: np.ndarray, true_pos: int, ylabel: str, title: str) -> None:
    colors = ["tab:orange" if i == true_pos else "tab:blue" for i in range(len(names))]
    ax.bar(range(len(names)), values, color=colors)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set(ylabel=ylabel, title=title)


def _softmax_lines(ax: Axes, names: list[str], logits: np.ndarray, shown: np.ndarray,
                   temperatures: Sequence[float], symbol: str, confidence: bool, title: str) -> dict[float, float]:
    """``softmax(logits / t)`` over all classes, plotted for the ``shown`` ones, a line per temperature; returns
    the top probability per temperature."""
    colors = sns.color_palette("rocket_r", len(temperatures))
    top = {}
    for t, color in zip(temperatures, colors):
        p = special.softmax(logits / t)
        top[t] = float(p.max())
        label = f"{symbol} = {t:g}" + (f" (max p {top[t]:.2f})" if confidence else "")
        ax.plot(range(len(shown)), p[shown], marker="o", ms=4, lw=1.6, color=color, label=label)
    ax.set_xticks(range(len(shown)), [names[j] for j in shown], rotation=45, ha="right")
    ax.set(title=title, xlabel="class", ylabel="probability", ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="upper right")
    return top


def draw_primer(
    logits: Sequence[float] | np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    temperatures: Sequence[float] = TEMPERATURES,
    zscore: bool = False,
    confidence: bool = False,
    true_class: int | None = None,
    max_classes: int = MAX_CLASSES,
    std: str = "unbiased",
    title: str | None = None,
) -> Primer:
    """Draw the primer for one logit vector.

    Panels: (a) the logits as bars, (b) ``softmax(z / T)`` against the class for each temperature; with
    ``zscore`` also (c) the z-scored logits and (d) ``softmax(Z(z) / τ)`` at the same values of τ.
    ``confidence`` adds each temperature's top probability to the legend. ``true_class`` is drawn in orange.
    With more than ``max_classes`` classes the largest logits are shown (probabilities are still over all
    classes), otherwise every class in index order. ``std`` is the z-score convention (``unbiased`` as the
    official code, ``population`` as Algorithm 1). Raises ``ValueError`` for fewer than two finite logits or a
    temperature ≤ 0.
    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    if z.size < 2 or not np.isfinite(z).all():
        raise ValueError(f"need two or more finite logits, got {z.tolist()}")
    temps = [float(t) for t in temperatures]
    if not temps or min(temps) <= 0:
        raise ValueError(f"temperatures must be > 0, got {temps}")
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(z.size)]
    if len(names) != z.size:
        raise ValueError(f"{len(names)} class names for {z.size} logits")
    shown = np.argsort(-z, kind="stable")[:max_classes] if z.size > max_classes else np.arange(z.size)
    shown_names = [names[j] for j in shown]
    true_pos = int(np.flatnonzero(shown == true_class)[0]) if true_class is not None and true_class in shown else -1
    zs = standardize(torch.from_numpy(z[None]), "zscore", std=std).double().numpy()[0] if zscore else None
    fig = new_figure(12.5, 7.6 if zscore else 4.0)
    axes = fig.subplots(2 if zscore else 1, 2, squeeze=False)
    subset = f" (the {max_classes} largest)" if z.size > max_classes else ""
    _bars(axes[0, 0], shown_names, z[shown], true_pos, "logit", f"(a) logits{subset}")
    top = _softmax_lines(axes[0, 1], names, z, shown, temps, "T", confidence, "(b) softmax(logits / T)")
    top_z = None
    if zs is not None:
        _bars(axes[1, 0], shown_names, zs[shown], true_pos, "z-scored logit", "(c) the same logits after z-score")
        top_z = _softmax_lines(axes[1, 1], names, zs, shown, temps, "τ", confidence,
                               "(d) softmax(z-scored logits / τ)")
    if title:
        fig.suptitle(title)
    return Primer(fig, shown, top, top_z, zs)


def logit_primer(res: Results, out_dir: Path) -> Figure | None:
    """The report's primer: :func:`draw_primer` on the teacher's test sample chosen by :func:`pick_sample`."""
    first = res.first_teacher()
    if first is None:
        return None
    pair, logits, targets = first
    teacher_dir = res.teacher_dir(pair)
    i = pick_sample(logits, targets)
    z, y = logits[i], int(targets[i])
    hp = res.record(teacher_dir).get("resolved", {}).get("hparams", {})
    names = res.class_names(pair[0], len(z))
    primer = draw_primer(z, class_names=names, zscore=True, confidence=True, true_class=y,
                         std=hp.get("std", "unbiased"))
    zs = primer.zscored
    assert zs is not None and primer.top_zscore is not None
    teacher = res.references(pair)[0]
    who = teacher["teacher"].iloc[0] if len(teacher) else pair[1]
    subset = f" (its {MAX_CLASSES} largest logits shown)" if len(z) > MAX_CLASSES else ""
    caption = (f"Teacher {who}, test sample #{i}, true class '{names[y]}', predicted '{names[int(z.argmax())]}'"
               f"{subset}; orange bars: the true class. Its top probability is "
               + ", ".join(f"{p:.2f} at T={t:g}" for t, p in primer.top.items())
               + f": a higher temperature softens the distribution. After z-scoring (mean 0, std 1, range "
               f"{zs.min():.2f} to {zs.max():.2f}, same order) the top probability is "
               + ", ".join(f"{p:.2f} at τ={t:g}" for t, p in primer.top_zscore.items())
               + ", whatever the raw logits' scale.")
    return save(primer.figure, out_dir, "logit_primer", "Logit primer: logits, temperature and z-score", caption)


__all__ = ["MAX_CLASSES", "TEMPERATURES", "Primer", "draw_primer", "logit_primer", "pick_sample"]
