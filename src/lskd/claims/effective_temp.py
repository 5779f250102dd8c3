"""Claim 6, effective temperature (Sec. 4, Algorithm 1): z-score divides each sample's logits by their own std, so
at base temperature τ the softmax sees ``(v − m(v)) / (σ(v)·τ)``: a per-sample effective temperature ``σ(v_i)·τ``
for the teacher and ``σ(z_i)·τ`` for the student, different for the two. A shared fixed temperature would treat
them alike; the paper's point is that the teacher's is higher (the illustration issue 18 cites puts the teacher
near 7.8 and the student near 2).

For one z-score student (pair, method, seed of the reported setting) with test samples ``i = 1..N``:

``θ_run = (1/N) Σ_i log(σ(v_i) / σ(z_i))``

the mean log ratio of the teacher's to the student's effective temperature at the same τ (τ cancels; ``σ`` with
``ddof=1`` as the official code, :mod:`lskd.claims.sample_stats`). ``exp(θ_run)`` is the ratio of the two geometric
mean effective temperatures. ``θ_s`` = the seed's ``θ_run``; predicted ``θ > 0`` (the teacher's effective
temperature is higher), threshold 0, no other threshold; the interval is over seeds
(:meth:`lskd.claims.base.Claim.tested`). The raw-logit students' same ratio is shown for context (with a shared
temperature KD pulls it toward 0, Eq. 12) but is not tested here. Figure: the per-sample distributions of the two
effective temperatures, and the per-sample log ratio of every method's students.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lskd.claims.base import LS, AuditConfig, Claim, pair_scope
from lskd.claims.data import AuditData, StudentRun
from lskd.claims.paired import method_groups
from lskd.claims.registry import register_claim
from lskd.claims.verdicts import ClaimResult

if TYPE_CHECKING:
    from lskd.report.figures_common import Figure, Results


def log_temp_ratio(teacher_sigma: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``log(σ(v_i) / σ(z_i))`` per sample; NaN where a std is not positive and finite."""
    v = np.asarray(teacher_sigma, dtype=np.float64)
    z = np.asarray(sigma, dtype=np.float64)
    ok = np.isfinite(v) & np.isfinite(z) & (v > 0) & (z > 0)
    out = np.full(v.shape, np.nan)
    out[ok] = np.log(v[ok]) - np.log(z[ok])
    return out


def run_log_ratio(run: StudentRun) -> float:
    """``θ_run``: the mean over test samples of :func:`log_temp_ratio` (NaN when no sample is finite)."""
    x = log_temp_ratio(run.samples["teacher_sigma"], run.samples["sigma"])
    return float(np.nanmean(x)) if np.isfinite(x).any() else math.nan


def _gmean_log(x: np.ndarray) -> float:
    """``mean log x`` over the positive finite entries."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.log(x).mean()) if x.size else math.nan


def _per_seed(runs: list[StudentRun]) -> dict[int, list[StudentRun]]:
    out: dict[int, list[StudentRun]] = {}
    for r in runs:
        out.setdefault(int(r.key["seed"]), []).append(r)
    return out


def _tau(run: StudentRun) -> float:
    t = run.key.get("effective_temperature")
    return float(t) if t is not None and math.isfinite(float(t)) and float(t) > 0 else 1.0


@register_claim
class EffectiveTemp(Claim):
    """Z-score is a per-sample temperature, σ(v)·τ for the teacher and σ(z)·τ for the student, and the teacher's
    is higher than the z-score student's: a shared fixed temperature would treat the two alike."""

    title = "Effective temperature"
    paper = "Sec. 4, Algorithm 1"
    order = 60
    figure_subject = "z-score as a per-sample temperature, teacher vs student (Sec. 4, Algorithm 1)"

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        stat = "mean over test samples of log(σ(v)/σ(z)): teacher's over the z-score student's effective temperature"
        rows = []
        for pair, method, raw, ls in method_groups(data):
            scope = pair_scope(pair, method)
            if not ls:
                rows.append(self.not_applicable(scope, f"no healthy z-score {method.upper()} student of the reported "
                                                "setting: only z-score has a per-sample temperature", stat))
                continue
            by_seed = _per_seed(ls)
            theta = {s: float(np.nanmean([run_log_ratio(r) for r in runs])) for s, runs in by_seed.items()}
            seeds = [s for s in sorted(theta) if math.isfinite(theta[s])]
            if not seeds:
                rows.append(self.not_applicable(scope, "no z-score student with a finite logit std", stat))
                continue
            # geometric-mean effective temperatures at each run's own τ (τ cancels in θ)
            log_t = [np.mean([_gmean_log(r.samples["teacher_sigma"]) + math.log(_tau(r)) for r in by_seed[s]])
                     for s in seeds]
            log_s = [np.mean([_gmean_log(r.samples["sigma"]) + math.log(_tau(r)) for r in by_seed[s]]) for s in seeds]
            t_teacher, t_student = float(np.exp(np.mean(log_t))), float(np.exp(np.mean(log_s)))
            runs = [r for s in seeds for r in by_seed[s]]
            taus = sorted({_tau(r) for r in runs})
            sigma_v = np.concatenate([r.samples["teacher_sigma"].to_numpy(np.float64) for r in runs[:1]])
            sigma_z = np.concatenate([r.samples["sigma"].to_numpy(np.float64) for r in runs])
            q_v = np.nanquantile(sigma_v * _tau(runs[0]), [0.25, 0.75])
            q_z = np.nanquantile(sigma_z * _tau(runs[0]), [0.25, 0.75])
            share = float(np.nanmean(np.concatenate([log_temp_ratio(r.samples["teacher_sigma"], r.samples["sigma"])
                                                     for r in runs]) > 0))
            raw_theta = [run_log_ratio(r) for r in raw]
            raw_theta = [x for x in raw_theta if math.isfinite(x)]
            raw_part = (f"; for context, the raw-logit students' log(σ(v)/σ(z)) is {np.mean(raw_theta):+.3f} "
                        f"(mean of {len(raw_theta)} run(s), not tested)" if raw_theta else "")
            evidence = (f"at τ = {', '.join(f'{t:g}' for t in taus)}, geometric-mean effective temperature: teacher "
                        f"σ(v)·τ {t_teacher:.2f} (IQR {q_v[0]:.2f}–{q_v[1]:.2f}), z-score student σ(z)·τ "
                        f"{t_student:.2f} (IQR {q_z[0]:.2f}–{q_z[1]:.2f}), ratio {t_teacher / t_student:.2f}; the "
                        f"teacher's is higher on {100 * share:.1f}% of the test samples{raw_part}")
            rows.append(self.tested(scope, [theta[s] for s in seeds], statistic=stat,
                                    comparison="teacher vs z-score student, same test samples and τ",
                                    reference=t_student, value=t_teacher, evidence=evidence))
        return self.or_not_applicable(rows, "no distilled student in this results folder", stat)

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        import pandas as pd
        import seaborn as sns

        from lskd.claims.plots import COLORS, TRANSFORMS, claim_rows, methods_of, selected_students, two_panels
        from lskd.report.figures_common import method_label, of_pair, setting_label, transform_label

        sel = selected_students(res)
        if claim_rows(res, self.id) is None or sel.empty or res.focus_method is None or not res.pairs:
            return None
        pair = res.pairs[0]
        sel = of_pair(sel, pair)
        focus = res.representative(pair, res.focus_method, LS)
        if focus is None:
            return None
        tau = float(focus["effective_temperature"])
        stats = res.stats(focus["run_dir"])
        fig, a, b = two_panels()
        medians = []
        label = f"{method_label(res.focus_method)}+LS student"
        for name, col, color in (("teacher σ(v)·τ", "teacher_std", "tab:green"), (f"{label} σ(z)·τ", "std",
                                                                                    COLORS[LS])):
            x = stats[col].to_numpy(np.float64) * tau
            x = x[np.isfinite(x) & (x > 0)]
            medians.append(f"{name} {np.median(x):.2f}" if x.size else f"{name} —")
            sns.histplot(x=x, bins=50, log_scale=True, element="step", stat="density", fill=False, color=color,
                         label=name, ax=a)
        a.set(xlabel="effective temperature (log scale)", title=f"(a) per test sample, τ = {tau:g}")
        a.legend(fontsize=8)
        first = sel[sel.groupby(["method", "transform"])["seed"].transform("min") == sel["seed"]]
        frames = []
        for r in first.itertuples(index=False):
            s = res.stats(r.run_dir)
            frames.append(pd.DataFrame({"method": method_label(r.method), "logits": transform_label(r.transform),
                                        "log_ratio": log_temp_ratio(s["teacher_std"], s["std"])}))
        methods = methods_of(res, sel)
        if frames:
            d = pd.concat(frames)
            sns.boxplot(d[np.isfinite(d["log_ratio"])], x="method", y="log_ratio", hue="logits", fliersize=1,
                        order=[method_label(m) for m in methods],
                        palette={transform_label(t): COLORS[t] for t in TRANSFORMS}, ax=b)
        b.axhline(0.0, color="black", ls="--", lw=1)
        b.set(title="(b) log(σ(v)/σ(z)) per test sample (smallest seed)", ylabel="log(σ(v) / σ(z))", xlabel="")
        look = (f"(a) Histograms over the {len(stats):,} test samples ({pair[1]} → {pair[2]}) of the teacher's "
                f"per-sample effective temperature σ(v)·τ and the {label}'s σ(z)·τ ({setting_label(focus)}) at its "
                f"base temperature τ = {tau:g} (log scale; medians: {', '.join(medians)}). (b) Per test sample, "
                "log of the teacher's over the student's effective temperature for each method's smallest-seed "
                "students (boxes: quartiles; raw-logit students for context, blue); above the dashed line the "
                "teacher's is higher.")
        return self.save_figure(fig, out_dir, look)
