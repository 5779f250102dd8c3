"""Claim "noise floor" (Table 4): ``center`` trains exactly as ``none`` and ``scale`` exactly as ``zscore``, so the
accuracy differences between them are run-to-run noise: the floor any LS effect must clear.

Why. Softmax ignores a per-sample shift: ``softmax((z − m(z))/T) = softmax(z/T)`` and
``softmax(z/(σ(z)·T)) = softmax((z − m(z))/(σ(z)·T))`` (:mod:`lskd.losses.transforms`), so a loss that sees the
logits only through ``softmax(f(z)/T)`` (KD, DKD, CTKD, MLKD's instance term) is the same function of the logits
under ``center`` as under ``none``, and under ``scale`` as under ``zscore``; same seed, same data order, same loss:
the two students differ only by floating-point rounding, amplified by training. The paper's Table 4
(resnet32x4 → resnet8x4, KD, τ 2, KD weights 0.9 … 18) shows center − none from −3.33 to +3.27 points (the
unstable large-weight raw-logit cells) and scale − zscore from −0.35 to −0.07 (all seven below zero), next to
zscore − none of +0.54 … +12.88.

Which methods. Not a list of names: a method enters when its registered loss (:func:`lskd.losses.build_method`,
default hyper-parameters) gives the same value and the same gradient with respect to the student's logits under
both transforms of a comparison, on random float64 logits (:func:`loss_identical`, relative tolerance
:data:`IDENTITY_RTOL`); a method whose loss differs (or that refuses one of the transforms) gets a "not applicable"
row saying so, since its difference need not be noise.

Statistic. Per (pair, method) and comparison ``a − b`` (``center − none``, ``scale − zscore``), the matched cells
are the (temperature, KD weight) settings that have both transforms (matched weight: Table 4 compares the
transforms at each KD weight). For seed ``s``, ``d_s`` = the mean over the matched cells that have both students
of that seed of ``acc(a) − acc(b)``, last-epoch test top-1 in points (``acc = 100 · mean(correct)``). The unit is the
seed (cells of one seed share its initialisation). ``θ = |μ|``, the size of the mean difference, predicted below
δ, the report's smallest effect of interest (:data:`lskd.analysis.inference.DEFAULT_SMALLEST_EFFECT` points; a
``smallest_effect`` attribute of the :class:`~lskd.claims.base.AuditConfig` overrides it). The test is the
equivalence test of the headline (:func:`lskd.analysis.inference.equivalence_p`, two one-sided t-tests of
``H0: |μ| ≥ δ``) as ``p_supported`` and the minimum-effect test (:func:`~lskd.analysis.inference.min_effect_p`,
``H0: |μ| ≤ δ``) as ``p_refuted``, both Holm-adjusted with the report's other claims: **supported** = shown to
differ by less than δ; **not supported** = shown to differ by more than δ (a transform that should be
loss-identical is not: a bug); a large noise floor leaves it **inconclusive**, never refuted. The interval shown is
the 95% t interval of ``μ`` folded onto ``|μ|`` (it covers ``|μ|`` whenever the signed one covers ``μ``).
Averaging over cells lets opposite biases at different weights cancel; the evidence lists each cell's mean.
The evidence also gives the noise floor (:func:`noise_floor`: the seed-to-seed standard deviation of one cell's
difference, pooled over the cells) beside the zscore − none effect at the same cells.

Figure: the four transforms' top-1 per seed and cell, and the loss-identical differences per seed against ±δ.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lskd.analysis.inference import FAMILY_ALPHA, MIN_SEEDS, equivalence_p, min_effect_p, t_interval
from lskd.claims.base import LS, RAW, AuditConfig, Claim, pair_scope
from lskd.claims.data import AuditData, StudentRun
from lskd.claims.registry import register_claim
from lskd.claims.verdicts import ClaimResult, verdict_of

if TYPE_CHECKING:
    from lskd.report.figures_common import Figure, Results

#: The loss-identical comparisons ``(a, b)``: ``a`` differs from ``b`` only by a per-sample shift inside softmax.
COMPARISONS: tuple[tuple[str, str], ...] = (("center", RAW), ("scale", LS))
#: Relative tolerance of :func:`loss_identical` (z-score's fused kernel differs from ``z / (σ + eps)`` by ~eps/σ).
IDENTITY_RTOL = 1e-5

Cell = tuple[Any, Any]  # (temperature, kd_weight)


@lru_cache(maxsize=None)
def loss_identical(method: str, a: str, b: str, seed: int = 0) -> tuple[bool, str]:
    """Whether ``method``'s registered loss is the same function of the logits under transforms ``a`` and ``b``:
    equal total loss and equal gradient with respect to the student's logits (relative :data:`IDENTITY_RTOL`) on
    random float64 logits (16 samples, 10 classes, every input view; epoch 10 000, past any warm-up). Returns
    ``(identical, why not)``."""
    import torch

    from lskd.losses import build_method

    gen = torch.Generator().manual_seed(seed)
    try:
        methods = {t: build_method(method, transform=t).double() for t in (a, b)}
    except (TypeError, ValueError) as err:
        return False, f"{method.upper()} cannot be built with transforms {a} and {b}: {err}"
    if not methods[a].needs_teacher:
        return False, f"{method.upper()} has no teacher and no logit transform"
    n_views = len(methods[a].views)
    student = [3.0 * torch.randn(16, 10, generator=gen, dtype=torch.float64) + 2.0 for _ in range(n_views)]
    teacher = [3.0 * torch.randn(16, 10, generator=gen, dtype=torch.float64) - 1.0 for _ in range(n_views)]
    targets = torch.randint(0, 10, (16,), generator=gen)
    values, grads = [], []
    for t in (a, b):
        zs = [z.clone().requires_grad_(True) for z in student]
        s_in, t_in = (tuple(zs), tuple(teacher)) if n_views > 1 else (zs[0], teacher[0])
        torch.manual_seed(seed)  # any randomness inside a loss draws the same numbers for both transforms
        terms = methods[t](s_in, t_in, targets, 10_000)
        total = sum(terms.values())
        (grad,) = torch.autograd.grad(total, zs[0]) if n_views == 1 else (torch.cat(torch.autograd.grad(total, zs)),)
        values.append(float(total.detach()))
        grads.append(grad.detach())
    gap = abs(values[0] - values[1]) / max(1.0, abs(values[1]))
    ggap = float((grads[0] - grads[1]).abs().max() / max(1e-12, float(grads[1].abs().max())))
    if gap > IDENTITY_RTOL or ggap > IDENTITY_RTOL or not math.isfinite(gap + ggap):
        return False, (f"{method.upper()}'s loss under {a} is not the one under {b} on random logits (relative "
                       f"gap {gap:.1e} in the loss, {ggap:.1e} in its gradient), so their accuracy difference need "
                       "not be noise")
    return True, ""


def _cell(run: StudentRun) -> Cell:
    return run.key["temperature"], run.key["kd_weight"]


def _cell_label(cell: Cell) -> str:
    t, w = cell
    return f"{'learned T' if t is None else f'T {t:g}'}, w {w:g}" if w is not None else \
        f"{'learned T' if t is None else f'T {t:g}'}"


def _cell_key(cell: Cell) -> tuple[float, float]:
    t, w = cell
    return (-1.0 if t is None else float(t), -1.0 if w is None else float(w))


def accuracy_table(runs: list[StudentRun]) -> dict[tuple[Cell, str, int], float]:
    """``(cell, transform, seed) → top-1`` of every run (all cells of the grid, not only the reported setting)."""
    return {(_cell(r), str(r.key["transform"]), int(r.key["seed"])): r.accuracy for r in runs}


def cell_differences(acc: dict[tuple[Cell, str, int], float], a: str, b: str) -> dict[Cell, dict[int, float]]:
    """``cell → {seed: acc(a) − acc(b)}`` over the cells and seeds that have both transforms."""
    out: dict[Cell, dict[int, float]] = {}
    for (cell, t, s), x in acc.items():
        if t == a and (cell, b, s) in acc:
            out.setdefault(cell, {})[s] = x - acc[cell, b, s]
    return {c: out[c] for c in sorted(out, key=_cell_key)}


def seed_means(diffs: dict[Cell, dict[int, float]]) -> dict[int, float]:
    """``seed → d_s``: the mean over the matched cells that have the seed."""
    seeds = sorted({s for per in diffs.values() for s in per})
    return {s: float(np.mean([per[s] for per in diffs.values() if s in per])) for s in seeds}


def noise_floor(diffs: dict[Cell, dict[int, float]]) -> float:
    """The pooled within-cell standard deviation over seeds (ddof 1) of the differences: what two runs of the same
    training differ by, a systematic bias left out; NaN when no cell has two seeds."""
    dof = sum(len(per) - 1 for per in diffs.values())
    if dof < 1:
        return math.nan
    ss = sum(float(np.sum((np.array(list(per.values())) - np.mean(list(per.values()))) ** 2)) for per in diffs.values())
    return math.sqrt(ss / dof)


def folded_interval(lo: float, hi: float) -> tuple[float, float]:
    """The interval of ``|μ|`` from one of ``μ``: ``[0, max]`` when it straddles 0, else the sorted absolute ends."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return math.nan, math.nan
    if lo <= 0.0 <= hi:
        return 0.0, max(-lo, hi)
    return min(abs(lo), abs(hi)), max(abs(lo), abs(hi))


@register_claim
class NoiseFloor(Claim):
    """Center trains as raw logits and scale as z-score (softmax ignores a per-sample shift), so at the same
    temperature and KD weight their top-1 differs by run-to-run noise only: by less than the smallest effect of
    interest."""

    title = "Noise floor"
    paper = "Table 4"
    order = 66
    figure_subject = "the center ≡ none and scale ≡ z-score noise floor (Table 4)"
    signed = False  # θ = |μ|, compared with δ > 0

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        delta = float(cfg.smallest_effect)
        rows = []
        for pair in data.pairs():
            runs = data.of_pair(pair)
            transforms = sorted({str(s.key["transform"]) for s in runs})
            if not {"center", "scale"} & set(transforms):
                rows.append(self.not_applicable(
                    pair_scope(pair), f"the grid has transforms {', '.join(transforms)}: no center or scale student "
                    "next to a raw or z-score one at the same temperature and KD weight (configs/"
                    "cifar100_ablation.yaml has them: the paper's Table 4)", self._statistic("center", RAW)))
                continue
            for method in sorted({str(s.key["method"]) for s in runs}, key=lambda m: (m != "kd", m)):
                of = [s for s in runs if s.key["method"] == method]
                acc = accuracy_table(of)
                for a, b in COMPARISONS:
                    if not any(t == a for _, t, _ in acc):
                        continue
                    rows.append(self._row(pair, method, acc, a, b, delta))
        return self.or_not_applicable(rows, "no distilled student in this results folder",
                                      self._statistic("center", RAW))

    @staticmethod
    def _statistic(a: str, b: str) -> str:
        return f"|mean {a} − {b} top-1| (points), per seed the mean over cells of matched temperature and KD weight"

    def _row(self, pair: tuple[str, str, str], method: str, acc: dict[tuple[Cell, str, int], float], a: str, b: str,
             delta: float) -> ClaimResult:
        scope, stat = pair_scope(pair, method), self._statistic(a, b)
        diffs = cell_differences(acc, a, b)
        if not diffs:
            cells = ", ".join(_cell_label(c) for c in sorted({c for c, t, _ in acc if t == a}, key=_cell_key))
            return self.not_applicable(scope, f"the {a} {method.upper()} students ({cells}) have no {b} student of "
                                       "the same seed at the same temperature and KD weight", stat)
        identical, why = loss_identical(method, a, b)
        if not identical:
            return self.not_applicable(scope, why, stat)
        d = seed_means(diffs)
        values = list(d.values())
        ci = t_interval(values)
        n = ci.n
        p_sup, p_ref = ((equivalence_p(values, delta), min_effect_p(values, delta)) if n >= MIN_SEEDS
                        else (math.nan, math.nan))
        lo, hi = folded_interval(ci.lo, ci.hi)
        floor = noise_floor(diffs)
        floor_text = (f"{floor:.2f} points (seed-to-seed standard deviation of one cell's {a} − {b}, pooled over "
                      "the cells)" if math.isfinite(floor) else "not measured (no cell has two seeds)")
        ls = cell_differences(acc, LS, RAW)
        ls = {c: v for c, v in ls.items() if c in diffs}
        ls_all = [x for per in ls.values() for x in per.values()]
        ls_part = (f"the zscore − none effect at these cells: {np.mean(ls_all):+.2f} points ({len(ls)} cell(s), "
                   f"{len(ls_all)} pair(s) of runs)" if ls_all else "no zscore − none pair at these cells")
        cells_text = "; ".join(f"{_cell_label(c)} {np.mean(list(per.values())):+.2f} (n={len(per)})"
                               for c, per in diffs.items())
        ref = [acc[c, b, s] for c, per in diffs.items() for s in per]
        val = [acc[c, a, s] for c, per in diffs.items() for s in per]
        signed = (f"{ci.mean:+.2f} [{ci.lo:+.2f}, {ci.hi:+.2f}]" if math.isfinite(ci.lo) else f"{ci.mean:+.2f}")
        evidence = (f"{a} − {b} top-1 per seed (mean over {len(diffs)} matched cell(s)): "
                    f"{', '.join(f'seed {s} {x:+.2f}' for s, x in d.items())}; mean {signed} points "
                    f"(95% t interval); per cell: {cells_text}. Noise floor: {floor_text}, beside "
                    f"{ls_part}; δ = {delta:g} points; θ = |μ| = "
                    f"{abs(ci.mean):.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if math.isfinite(lo) else "")
                    + f" (n={n} seeds).")
        test = (f"equivalence (two one-sided t-tests of |μ| ≥ {delta:g}) as the supporting test and minimum effect "
                f"(|μ| ≤ {delta:g}) as the refuting one, over {n} seeds, Holm-adjusted over the report's claims; "
                f"before Holm, the equivalence test rejects at α {FAMILY_ALPHA:g} when the {100 * (1 - 2 * FAMILY_ALPHA):g}% t "
                "interval lies within ±δ" if n >= MIN_SEEDS
                else f"descriptive: {n} seeds, fewer than {MIN_SEEDS}; no test")
        return ClaimResult(claim=self.id, title=self.title, paper=self.paper, dataset=scope["dataset"],
                           teacher=scope["teacher"], student=scope["student"], method=method, statistic=stat,
                           comparison=f"{a} − {b} students at the same temperature and KD weight, paired by seed",
                           reference=float(np.mean(ref)), value=float(np.mean(val)), estimate=abs(ci.mean), lo=lo,
                           hi=hi, threshold=delta, direction="below", n=n, unit="seeds", test=test,
                           verdict=verdict_of(n, p_sup, p_ref), evidence=evidence, p_supported=p_sup,
                           p_refuted=p_ref)

    # ------------------------------------------------------------------------------------------ figure
    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        from lskd.claims.plots import claim_rows, claims_tables, two_panels
        from lskd.report.figures_common import method_label, transform_label

        rows = claim_rows(res, self.id)
        if rows is None:
            return None
        tested = rows[rows["verdict"] != "not applicable"].iloc[0]
        _, per_run = claims_tables(res)
        sub = per_run[(per_run["dataset"].astype(str) == str(tested["dataset"]))
                      & (per_run["teacher"].astype(str) == str(tested["teacher"]))
                      & (per_run["student"].astype(str) == str(tested["student"]))
                      & (per_run["method"].astype(str) == str(tested["method"]))].copy()
        if sub.empty:
            return None
        sub["cell"] = [_cell_label((None if _missing(t) else float(t), None if _missing(w) else float(w)))
                       for t, w in zip(sub["temperature"], sub["kd_weight"])]
        order = sorted(sub["cell"].unique(), key=lambda c: sub.loc[sub["cell"] == c, ["temperature", "kd_weight"]]
                       .iloc[0].fillna(-1).astype(float).tolist())
        pos = {c: i for i, c in enumerate(order)}
        delta = float(tested["threshold"])
        fig, ax_a, ax_b = two_panels(12.0, 4.2)
        transforms = [t for t in (RAW, "center", "scale", LS) if t in set(sub["transform"])]
        colors = {RAW: "tab:blue", "center": "tab:cyan", "scale": "tab:red", LS: "tab:orange"}
        offsets = dict(zip(transforms, np.linspace(-0.24, 0.24, len(transforms))))
        means_text = []
        for t in transforms:
            of = sub[sub["transform"] == t]
            x = of["cell"].map(pos) + offsets[t]
            ax_a.scatter(x, of["accuracy"], color=colors[t], s=14, alpha=0.5)
            m = of.groupby("cell")["accuracy"].mean().reindex(order)
            ax_a.plot(np.arange(len(order)) + offsets[t], m.to_numpy(), "o-", color=colors[t], label=transform_label(t))
            means_text.append(f"{transform_label(t)} {of['accuracy'].mean():.2f}")
        ax_a.set_xticks(range(len(order)), order, rotation=30, fontsize=8)
        ax_a.set(ylabel="test top-1 (%)", title=f"(a) {method_label(tested['method'])}: top-1 per seed and cell")
        ax_a.legend(fontsize=8, title="logits", title_fontsize=8)
        wide = sub.pivot_table(index=["cell", "seed"], columns="transform", values="accuracy",
                               aggfunc="first").reset_index()
        ax_b.axhspan(-delta, delta, color="grey", alpha=0.2, label=f"±δ = ±{delta:g}")
        ax_b.axhline(0.0, color="black", lw=0.8)
        diff_text = []
        for (a, b), dx, color in ((COMPARISONS[0], -0.12, "tab:cyan"), (COMPARISONS[1], 0.12, "tab:red"),
                                  ((LS, RAW), 0.0, "tab:orange")):
            if not {a, b} <= set(wide.columns):
                continue
            d = wide.assign(diff=wide[a] - wide[b]).dropna(subset=["diff"])
            if d.empty:
                continue
            marker = "x" if (a, b) == (LS, RAW) else "o"
            ax_b.scatter(d["cell"].map(pos) + dx, d["diff"], color=color, marker=marker, s=22,
                         label=f"{transform_label(a)} − {transform_label(b)}")
            per_cell = {c: dict(zip(g["seed"], g["diff"])) for c, g in d.groupby("cell")}
            sd = noise_floor(per_cell)
            diff_text.append(f"{transform_label(a)} − {transform_label(b)} mean {d['diff'].mean():+.2f}"
                             + (f", seed-to-seed SD {sd:.2f}" if math.isfinite(sd) else "")
                             + f" (n={len(d)} pairs of runs)")
        ax_b.set_xticks(range(len(order)), order, rotation=30, fontsize=8)
        ax_b.set(ylabel="difference in top-1 (points)", title="(b) per seed: loss-identical differences vs ±δ")
        ax_b.legend(fontsize=8)
        scope = f"{tested['teacher']} → {tested['student']}, {method_label(tested['method'])}"
        look = (f"{scope}, one column per cell (temperature, KD weight). (a) Last-epoch test top-1 of every student, "
                f"one small point per seed, the mean per transform joined across cells (means over all cells: "
                f"{', '.join(means_text)}). (b) Per seed and cell, the differences that softmax makes pure noise "
                f"(centered − raw, scaled − z-score; points) and, as crosses, the z-score − raw effect, against the "
                f"band ±δ = ±{delta:g} points: {'; '.join(diff_text)}.")
        return self.save_figure(fig, out_dir, look)


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


__all__ = ["COMPARISONS", "IDENTITY_RTOL", "NoiseFloor", "accuracy_table", "cell_differences", "folded_interval",
           "loss_identical", "noise_floor", "seed_means"]
