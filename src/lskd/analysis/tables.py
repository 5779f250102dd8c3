"""Result tables (pandas DataFrames, CSV-writable, deterministic row order) from :func:`collect_runs` output.

Reporting rules (DESIGN.md): last-epoch top-1 is the headline, best-epoch a second column; every number over
seeds is mean ± std (ddof=1) with n; every transform-vs-raw comparison is a paired difference over seeds with a
Student-t 95% interval, tests against a smallest effect of interest δ, Holm-adjusted over the headline, a verdict
(``descriptive`` below 3 seeds) and per-seed exact McNemar tests (:mod:`lskd.analysis.inference`). A setting is the DESIGN's cell minus the seed, so other hyper-parameters must
be fixed per method: duplicate seeds within one setting raise ``ValueError``. Cells that do not apply (the
difference on the reference row, a teacher that was not collected) are empty.

Two protocols choose the (temperature, kd_weight) setting each transform reports (:func:`protocol_of` reads
which one the runs followed):

* ``validation``: stage 1 evaluated the grid on a validation split held out of the training set,
  :mod:`lskd.analysis.selection` chose each arm's setting there, and stage 2 retrained it with fresh seeds on
  the test set; the headline is stage 2 only.
* ``paper``: the highest mean last-epoch top-1 **on the test set**, as the paper does; ties go to the smaller
  temperature, then the smaller kd_weight.

Unhealthy runs (diverged, single-class, chance-level, not converged: :mod:`lskd.analysis.health`) stay rows of
``runs.csv`` and the grid with their status; a setting with an unhealthy seed is never selected and no unhealthy
run enters a mean or an interval of the headline. An arm without a healthy setting is a headline row with status
``no healthy setting``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from lskd.analysis import inference
from lskd.analysis.formatting import is_missing
from lskd.analysis.health import HEALTHY, healthy_mask
from lskd.analysis.paper import PAPER_PROTOCOL, paper_ablation, paper_main_rows, to_paper_model
from lskd.analysis.stats import fmt_ci, fmt_mean_std, mean_std_n

PAIR = ["dataset", "teacher", "student"]
GROUP = [*PAIR, "method"]
SETTING = ["temperature", "kd_weight"]
CELL = [*GROUP, "transform", *SETTING]
REFERENCE_TRANSFORM = "none"
TRANSFORM_ORDER = ("none", "center", "scale", "zscore")
SELECTION_NOTE = ("(temperature, kd_weight) with the highest mean last-epoch top-1 over seeds, "
                  "selected on the test set (as in the paper)")
VALIDATION_NOTE = ("(temperature, kd_weight) with the highest mean last-epoch validation top-1 over the stage-1 "
                   "seeds (validation split held out of the training set), retrained with fresh seeds and "
                   "evaluated on the test set (stage 2)")
PROTOCOL_NOTES = {"validation": VALIDATION_NOTE, "paper": SELECTION_NOTE}
NO_HEALTHY = "no healthy setting"
NO_HEALTHY_CONFIRM = "no healthy stage-2 run"
OURS_SOURCE = "this run"

#: The headline's inference on the last-epoch difference (:func:`_paired`, :func:`_verdicts`).
INFERENCE_COLUMNS: list[str] = [
    "delta", "p_zero", "p_min_effect", "p_equivalence", "p_min_effect_holm", "p_equivalence_holm",
    "p_verdict_holm", "verdict", "mcnemar", "mcnemar_n_sig", "mcnemar_max_p", "mcnemar_seeds",
]
#: Per-sample correctness and targets of a run folder (:func:`lskd.analysis.inference.read_correct`).
CorrectFn = Callable[[str], tuple[np.ndarray, np.ndarray]]
_SUMMARY = lambda p: [f"{p}_mean", f"{p}_std", f"{p}_n", p]  # noqa: E731
#: Column order of :func:`headline_table` (stable even when no row has a difference or a reference run).
HEADLINE_COLUMNS: list[str] = [
    *GROUP, "transform", "temperature", "kd_weight", "n_settings", "selection", "protocol", "status",
    "n_unhealthy",
    "n", "last_top1_mean", "last_top1_std", "last_top1", "best_top1_mean", "best_top1_std", "best_top1",
    "effective_temperature_mean",
    "diff_vs", "diff_n", "diff_degenerate", "diff_last_mean", "diff_last_lo", "diff_last_hi", "diff_last",
    "diff_best_mean", "diff_best_lo", "diff_best_hi", "diff_best",
    *INFERENCE_COLUMNS,
    *_SUMMARY("teacher_top1"), *_SUMMARY("baseline_last_top1"), *_SUMMARY("baseline_best_top1"),
]

#: Display name -> key of :func:`lskd.analysis.logit_stats.summarize_stats` (or of the run row).
LOGIT_METRICS: dict[str, str] = {
    "accuracy": "accuracy",
    "teacher_accuracy": "teacher_accuracy",
    "top1_agree": "top1_agree",
    "student_std": "std_mean",
    "teacher_std": "teacher_std_mean",
    "std_ratio": "std_ratio_mean",
    "student_mean": "mean_mean",
    "teacher_mean": "teacher_mean_mean",
    "shift": "shift_mean",
    "shift_abs": "shift_abs_mean",
    "shift_sd": "shift_sd",
    "pearson": "pearson_mean",
    "spearman": "spearman_mean",
    "kendall": "kendall_mean",
    "kl_T": "kl_T_mean",
    "kl_T_zscore": "kl_T_zscore_mean",
    "ece": "last_ece",
}


def _nan_first(x: Any) -> tuple[int, Any]:
    return (0, 0.0) if is_missing(x) else (1, x)


def _transform_rank(t: Any) -> tuple[int, str]:
    t = "" if is_missing(t) else str(t)
    return (TRANSFORM_ORDER.index(t), t) if t in TRANSFORM_ORDER else (len(TRANSFORM_ORDER), t)


def _summary(values: Iterable[float], prefix: str) -> dict[str, Any]:
    """``{prefix}_mean``, ``{prefix}_std``, ``{prefix}_n`` and the formatted ``{prefix}``; empty when no values."""
    vals = list(values)
    if not vals:
        return {f"{prefix}_mean": np.nan, f"{prefix}_std": np.nan, f"{prefix}_n": 0, prefix: ""}
    m, s, n = mean_std_n(vals)
    return {f"{prefix}_mean": m, f"{prefix}_std": s, f"{prefix}_n": n, prefix: fmt_mean_std(m, s, n)}


def _distill(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["role"] == "distill"]


def _check_unique_seeds(sub: pd.DataFrame, where: Mapping[str, Any]) -> None:
    dup = sub["seed"][sub["seed"].duplicated()]
    if len(dup):
        raise ValueError(f"duplicate seeds {sorted(set(dup))} in one setting {dict(where)}: runs differ in a "
                         "hyper-parameter that is not a table key, or a run was collected twice")


def _key_dict(names: list[str], key: Any) -> dict[str, Any]:
    key = key if isinstance(key, tuple) else (key,)
    return {n: (None if is_missing(v) else v) for n, v in zip(names, key)}


def _status(df: pd.DataFrame) -> pd.Series:
    return df["status"] if "status" in df else pd.Series(HEALTHY, index=df.index)


def _healthy(df: pd.DataFrame) -> pd.Series:
    return healthy_mask(_status(df))


def _stage(df: pd.DataFrame) -> pd.Series:
    return df["stage"].fillna("sweep") if "stage" in df else pd.Series("sweep", index=df.index)


def sweep_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The distill runs of the grid (stage 1 under the validation protocol; every distill run under the paper's)."""
    d = _distill(runs)
    return d[_stage(d) != "confirm"]


def protocol_of(runs: pd.DataFrame) -> str:
    """``validation`` when the grid was evaluated on the validation split (stage 1), else ``paper``."""
    sweep = sweep_runs(runs)
    return "validation" if "split" in sweep and (sweep["split"] == "val").any() else "paper"


def selected_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The healthy distill runs of the selected setting of each (dataset, teacher, student, method, transform).

    Validation protocol: the stage-2 runs (their settings were chosen on the validation split). Paper protocol:
    the setting with the highest mean ``last_top1`` over seeds among the settings whose every seed is healthy
    (test set, as in the paper); ties → smaller temperature, then smaller kd_weight (empty values first). Adds
    ``n_settings`` (settings of the grid compared). Rows keep :func:`collect_runs`'s columns and order.
    """
    sweep, parts = sweep_runs(runs), []
    validation = protocol_of(runs) == "validation"
    confirm = _distill(runs)[_stage(_distill(runs)) == "confirm"]
    for key, g in sweep.groupby([*GROUP, "transform"], dropna=False, sort=False):
        cands = []
        for skey, sub in g.groupby(SETTING, dropna=False, sort=False):
            _check_unique_seeds(sub, {**_key_dict([*GROUP, "transform"], key), **_key_dict(SETTING, skey)})
            t, w = (skey if isinstance(skey, tuple) else (skey,))
            if _healthy(sub).all():
                cands.append((-float(sub["last_top1"].mean()), _nan_first(t), _nan_first(w), sub))
        n_settings = g.groupby(SETTING, dropna=False, sort=False).ngroups
        if validation:
            chosen = _match(confirm, **_key_dict([*GROUP, "transform"], key))
            chosen = chosen[_healthy(chosen)]
            if len(chosen):
                parts.append(chosen.assign(n_settings=n_settings))
        elif cands:
            cands.sort(key=lambda c: c[:3])
            parts.append(cands[0][3].assign(n_settings=n_settings))
    if not parts:
        return runs.iloc[0:0].assign(n_settings=pd.Series(dtype="int64"))
    return pd.concat(parts).sort_index()


def _match(runs: pd.DataFrame, **eq: Any) -> pd.DataFrame:
    mask = pd.Series(True, index=runs.index)
    for col, value in eq.items():
        mask &= runs[col].isna() if is_missing(value) else runs[col] == value
    return runs[mask]


def _paired(sub: pd.DataFrame, ref: pd.DataFrame, delta: float, correct: CorrectFn | None) -> dict[str, Any]:
    """The paired difference to the reference over common seeds: t intervals (last and best epoch), the tests of
    the last-epoch difference (from :data:`~lskd.analysis.inference.MIN_SEEDS` seeds) and per-seed McNemar."""
    cols = ["seed", "last_top1", "best_top1", "run_dir"]
    m = sub[cols].merge(ref[cols], on="seed", suffixes=("", "_ref")).sort_values("seed")
    out: dict[str, Any] = {"diff_vs": REFERENCE_TRANSFORM, "diff_n": len(m), "diff_degenerate": len(m) <= 1,
                           "delta": delta}
    for what in ("last", "best"):
        if len(m) == 0:
            out.update({f"diff_{what}_mean": np.nan, f"diff_{what}_lo": np.nan, f"diff_{what}_hi": np.nan,
                        f"diff_{what}": ""})
            continue
        ci = inference.t_interval(m[f"{what}_top1"] - m[f"{what}_top1_ref"])
        out.update({f"diff_{what}_mean": ci.mean, f"diff_{what}_lo": ci.lo, f"diff_{what}_hi": ci.hi,
                    f"diff_{what}": fmt_ci(ci.mean, ci.lo, ci.hi) if ci.n > 1 else f"{ci.mean:+.2f} (n=1)"})
    if len(m) >= inference.MIN_SEEDS:
        d = m["last_top1"] - m["last_top1_ref"]
        out.update(p_zero=inference.paired_t_p(d), p_min_effect=inference.min_effect_p(d, delta),
                   p_equivalence=inference.equivalence_p(d, delta))
    if correct is not None and len(m):
        tests = []
        for r in m.itertuples(index=False):
            (a, targets), (b, targets_ref) = correct(r.run_dir), correct(r.run_dir_ref)
            if not np.array_equal(targets, targets_ref):
                raise ValueError(f"seed {r.seed}: {r.run_dir} and {r.run_dir_ref} were scored on different samples")
            tests.append(inference.mcnemar_exact(a, b))
        out.update(mcnemar=inference.mcnemar_summary(tests),
                   mcnemar_n_sig=sum(t.p < inference.ALPHA for t in tests), mcnemar_max_p=max(t.p for t in tests),
                   mcnemar_seeds="; ".join(f"seed {s}: b={t.b} c={t.c} p={inference.fmt_p(t.p)}"
                                           for s, t in zip(m["seed"], tests)))
    return out


def _verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """Holm-adjusted p-values and the verdict of every comparison. The family is the whole table (one report):
    the minimum-effect and the equivalence test of each comparison with at least ``MIN_SEEDS`` seeds."""
    compared = table["diff_n"].fillna(0) > 0
    k = len(table)
    adjusted = inference.holm(np.concatenate([table["p_min_effect"].to_numpy(float),
                                              table["p_equivalence"].to_numpy(float)]))
    table = table.assign(p_min_effect_holm=adjusted[:k], p_equivalence_holm=adjusted[k:])
    table["p_verdict_holm"] = table[["p_min_effect_holm", "p_equivalence_holm"]].min(axis=1, skipna=False)
    table["verdict"] = [inference.verdict(int(r.diff_n), r.diff_last_mean, r.p_min_effect_holm,
                                          r.p_equivalence_holm) if c else ""
                        for r, c in zip(table.itertuples(index=False), compared)]
    return table


def _reference_columns(runs: pd.DataFrame, dataset: Any, teacher: Any, student: Any) -> dict[str, Any]:
    teachers = _match(runs[runs["role"] == "teacher"], dataset=dataset, teacher=teacher)
    baselines = _match(runs[runs["role"] == "baseline"], dataset=dataset, student=student)
    return {
        **_summary(teachers["last_top1"], "teacher_top1"),
        **_summary(baselines["last_top1"], "baseline_last_top1"),
        **_summary(baselines["best_top1"], "baseline_best_top1"),
    }


def headline_table(runs: pd.DataFrame, *, smallest_effect: float = inference.DEFAULT_SMALLEST_EFFECT,
                   correct: CorrectFn | None = None) -> pd.DataFrame:
    """One row per (dataset, teacher, student, method, transform) with the selected setting.

    Columns: the keys; ``temperature``, ``kd_weight`` (selected), ``n_settings``, ``selection`` (how it was
    chosen: on the test set, as in the paper); ``last_top1_{mean,std,n}`` (headline) and ``best_top1_*`` with
    formatted ``last_top1``/``best_top1`` ("76.62 ± 0.21 (n=4)"); ``effective_temperature_mean`` (CTKD's learned
    T); for transforms other than ``none``: the paired difference to the selected ``none`` setting over common
    seeds, ``diff_{last,best}_{mean,lo,hi}`` (Student-t 95% interval; none for n = 1), ``diff_n``,
    ``diff_degenerate`` (n = 1); on the last-epoch difference (:mod:`lskd.analysis.inference`): ``delta`` (the
    smallest effect of interest ``smallest_effect``, points), from 3 seeds ``p_zero`` (t-test of no difference),
    ``p_min_effect`` (|μ| ≤ δ), ``p_equivalence`` (|μ| ≥ δ), their Holm adjustments over the table and
    ``p_verdict_holm`` (the smaller one), ``verdict`` (better, worse, equivalent, inconclusive; descriptive below
    3 seeds); with ``correct`` (run folder → per-sample correctness and targets, e.g.
    :func:`~lskd.analysis.inference.read_correct`) the exact McNemar test of each seed: ``mcnemar`` ("3/3 seeds
    p<0.05 (max p 0.012)"), ``mcnemar_n_sig``, ``mcnemar_max_p``, ``mcnemar_seeds`` (b, c, p per seed); teacher
    top-1 (role ``teacher``, same dataset and teacher, last epoch) and CE baseline (role ``baseline``, same dataset and student) last/best top-1 as mean ± std (n).
    """
    sel = selected_runs(runs)
    protocol = protocol_of(runs)
    rows = []
    if correct is not None:
        correct = _cached(correct)
    sweep = sweep_runs(runs)
    for key, arms in sweep.groupby(GROUP, dropna=False, sort=False):
        keys = _key_dict(GROUP, key)
        g = _match(sel, **keys)
        refs = _reference_columns(runs, keys["dataset"], keys["teacher"], keys["student"])
        by_t = {(None if is_missing(t) else t): sub for t, sub in g.groupby("transform", dropna=False, sort=False)}
        arm_runs = _match(_distill(runs), **keys)
        for t in sorted({(None if is_missing(t) else t) for t in arms["transform"]}, key=_transform_rank):
            unhealthy = int((~_healthy(_match(arm_runs, transform=t))).sum())
            common = {**keys, "transform": t, "selection": PROTOCOL_NOTES[protocol], "protocol": protocol,
                      "n_unhealthy": unhealthy,
                      "n_settings": _match(arms, transform=t).groupby(SETTING, dropna=False).ngroups}
            if t not in by_t:  # every setting of this arm (or every stage-2 seed) unhealthy: named, with no number
                grid = _match(arms, transform=t)
                any_ok = any(_healthy(sub).all() for _, sub in grid.groupby(SETTING, dropna=False))
                status = NO_HEALTHY_CONFIRM if protocol == "validation" and any_ok else NO_HEALTHY
                rows.append({**common, "status": status, "n": 0, **refs})
                continue
            sub = by_t[t]
            row: dict[str, Any] = {**common, "temperature": sub["temperature"].iloc[0], "status": HEALTHY,
                                   "kd_weight": sub["kd_weight"].iloc[0]}
            last, best = _summary(sub["last_top1"], "last_top1"), _summary(sub["best_top1"], "best_top1")
            row.update(last)
            row.update({k: v for k, v in best.items() if k != "best_top1_n"})
            row["n"] = row.pop("last_top1_n")
            row["effective_temperature_mean"] = float(sub["effective_temperature"].mean())
            if t != REFERENCE_TRANSFORM and REFERENCE_TRANSFORM in by_t:
                row.update(_paired(sub, by_t[REFERENCE_TRANSFORM], smallest_effect, correct))
            row.update(refs)
            rows.append(row)
    return _verdicts(_sorted(pd.DataFrame(rows, columns=HEADLINE_COLUMNS), [*GROUP, "transform"]))


def _cached(correct: CorrectFn) -> CorrectFn:
    """``correct`` reading each run folder once (a raw run is the reference of several transforms)."""
    seen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    return lambda run_dir: seen[run_dir] if run_dir in seen else seen.setdefault(run_dir, correct(run_dir))


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    order = sorted(range(len(df)), key=lambda i: tuple(
        _transform_rank(df[k].iloc[i]) if k == "transform" else _nan_first(df[k].iloc[i]) for k in keys))
    return df.iloc[order].reset_index(drop=True)


def grid_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Temperature × kd_weight grid: one row per cell without the seed (:data:`CELL`).

    Columns: the keys, ``n``, ``last_top1_{mean,std}``, ``best_top1_{mean,std}``, formatted ``last_top1`` and
    ``best_top1``, ``effective_temperature_mean``, ``selected`` (the setting :func:`headline_table` reports).
    """
    sel = selected_runs(runs)
    chosen = {tuple(_nan_first(v) for v in r) for r in sel[CELL].itertuples(index=False)}
    rows = []
    for key, sub in sweep_runs(runs).groupby(CELL, dropna=False, sort=False):
        keys = _key_dict(CELL, key)
        _check_unique_seeds(sub, keys)
        row: dict[str, Any] = dict(keys)
        finite = sub[sub["last_top1"].notna()]  # a diverged run has no accuracy
        row.update(_summary(finite["last_top1"], "last_top1"))
        row.update({k: v for k, v in _summary(finite["best_top1"], "best_top1").items() if k != "best_top1_n"})
        row.pop("last_top1_n")
        row["n"] = len(sub)
        row["effective_temperature_mean"] = float(sub["effective_temperature"].mean())
        row["selected"] = tuple(_nan_first(keys[k]) for k in CELL) in chosen
        row["split"] = str(sub["split"].iloc[0]) if "split" in sub else "test"
        status = _status(sub)
        row["n_ok"] = int(healthy_mask(status).sum())
        bad = status[~healthy_mask(status)]
        row["status"] = (HEALTHY if bad.empty else bad.iloc[0] if len(bad) == len(sub) and bad.nunique() == 1
                         else ", ".join(f"{s} {int((bad == s).sum())}/{len(sub)}" for s in sorted(set(bad))))
        rows.append(row)
    cols = [*CELL, "n", "last_top1_mean", "last_top1_std", "last_top1", "best_top1_mean", "best_top1_std",
            "best_top1", "effective_temperature_mean", "selected", "split", "status", "n_ok"]
    return _sorted(pd.DataFrame(rows, columns=cols), CELL)


def logit_summary_table(rows: Iterable[Mapping[str, Any]] | pd.DataFrame, *, level: str = "run") -> pd.DataFrame:
    """Teacher-vs-student logit statistics from :func:`lskd.analysis.logit_stats.run_summary` rows.

    Only rows with teacher columns (distilled runs) are kept. ``level="run"``: one row per run with the keys,
    ``seed``, ``run_dir``, ``effective_temperature`` and the :data:`LOGIT_METRICS` present (per-run means over
    the test samples; ``ece`` is the last-epoch ECE in %). ``level="setting"``: aggregated over seeds per
    :data:`CELL` (pair, method, transform, temperature, kd_weight): ``<metric>_mean``, ``<metric>_std`` and ``n``.
    """
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if df.empty and not len(df.columns):  # no healthy distilled run: the table's keys, no rows
        return pd.DataFrame(columns=[*CELL, "seed" if level == "run" else "n"])
    missing = [c for c in [*CELL, "seed"] if c not in df]
    if missing:
        raise ValueError(f"logit_summary_table: rows lack the keys {missing}")
    if "kl_T_mean" not in df:
        return pd.DataFrame(columns=[*CELL, "seed"])
    df = df[df["kl_T_mean"].notna()]
    metrics = {name: key for name, key in LOGIT_METRICS.items() if key in df}
    extra = [c for c in ("run_dir", "effective_temperature") if c in df]
    per_run = df[[*CELL, "seed", *extra, *metrics.values()]].rename(columns={v: k for k, v in metrics.items()})
    if level == "run":
        return _sorted(per_run, [*CELL, "seed"])
    if level != "setting":
        raise ValueError(f"level must be 'run' or 'setting', got {level!r}")
    out = []
    for key, sub in per_run.groupby(CELL, dropna=False, sort=False):
        row: dict[str, Any] = _key_dict(CELL, key)
        row["n"] = len(sub)
        for name in metrics:
            m, s, _ = mean_std_n(sub[name])
            row[f"{name}_mean"], row[f"{name}_std"] = m, s
        out.append(row)
    return _sorted(pd.DataFrame(out), CELL)


def _teacher_model(runs: pd.DataFrame) -> pd.Series:
    """The teacher's architecture (``teacher_model`` from :func:`collect_runs`), else the ``teacher`` label."""
    if "teacher_model" not in runs:
        return runs["teacher"]
    return runs["teacher_model"].where(runs["teacher_model"].notna(), runs["teacher"])


def paper_context_table() -> pd.DataFrame:
    """The paper's Tables 1–3 and 5 as published, every row labelled in ``source`` (context, not our numbers)."""
    df = paper_main_rows()
    return df.assign(protocol=PAPER_PROTOCOL, table="context: the paper's numbers")


def paper_comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Our selected settings next to the paper's matching rows (paper names via :func:`to_paper_model` of the
    teacher's architecture ``teacher_model`` and of the student).

    Ours is reported at the best epoch (``ours_best_top1_*``, to match the paper's protocol, selected on the test
    set) and the last epoch (``ours_last_top1_*``); ``diff_best_minus_paper`` / ``diff_last_minus_paper`` are ours
    minus the paper's. Columns never mix sources: ``ours_*`` are labelled by ``ours_source`` ("this run"),
    ``paper_*`` by ``paper_source`` (e.g. "paper Table 2 (same architecture style)") and ``paper_protocol``.
    When no run matches a paper row, returns :func:`paper_context_table` instead (``table`` says which).
    """
    sel = selected_runs(runs)
    ours = []
    for key, sub in sel.groupby([*GROUP, "transform"], dropna=False, sort=False):
        row: dict[str, Any] = _key_dict([*GROUP, "transform"], key)
        row["teacher_model"] = _teacher_model(sub).iloc[0]
        row.update(temperature=sub["temperature"].iloc[0], kd_weight=sub["kd_weight"].iloc[0])
        row.update({f"ours_{k}": v for k, v in _summary(sub["best_top1"], "best_top1").items()})
        row.update({f"ours_{k}": v for k, v in _summary(sub["last_top1"], "last_top1").items()})
        ours.append(row)
    paper = paper_main_rows().rename(columns={c: f"paper_{c}" for c in ("teacher", "student", "top1", "top5",
                                                                     "teacher_top1", "student_top1", "source")})
    if ours:
        o = pd.DataFrame(ours)
        o["paper_teacher"] = o["teacher_model"].map(to_paper_model)
        o["paper_student"] = o["student"].map(to_paper_model)
        on = ["dataset", "paper_teacher", "paper_student", "method", "transform"]
        merged = o.merge(paper, on=on, how="inner")
    else:
        merged = pd.DataFrame()
    if merged.empty:
        return paper_context_table()
    merged["diff_best_minus_paper"] = merged["ours_best_top1_mean"] - merged["paper_top1"]
    merged["diff_last_minus_paper"] = merged["ours_last_top1_mean"] - merged["paper_top1"]
    merged["ours_source"] = OURS_SOURCE
    merged["paper_protocol"] = PAPER_PROTOCOL
    merged["table"] = "comparison: ours (best epoch, test-set selection as the paper; last epoch too) vs the paper"
    cols = [*GROUP, "transform", "paper_teacher", "paper_student", "temperature", "kd_weight",
            "ours_best_top1_mean", "ours_best_top1_std", "ours_best_top1_n", "ours_best_top1",
            "ours_last_top1_mean", "ours_last_top1_std", "ours_last_top1", "ours_source",
            "paper_top1", "paper_top5", "paper_teacher_top1", "paper_student_top1", "paper_source", "paper_protocol",
            "diff_best_minus_paper", "diff_last_minus_paper", "table"]
    return _sorted(merged[cols], [*GROUP, "transform"])


#: Protocol of each number of :func:`paper_points_table` (its ``*_protocol`` columns say the same per row).
OURS_BEST_PROTOCOL = "paper protocol: best test epoch, mean of {n} seeds"
OURS_LAST_PROTOCOL = "lskd: last epoch, mean of {n} seeds"
LOG_PROTOCOL = "official log: best test epoch of one run"
UNSTATED_NOTE = "unstated: no source states this row's temperature or KD weight, so it has no point to run"
#: Column order of :func:`paper_points_table`.
POINT_COLUMNS: list[str] = [
    "dataset", "teacher", "student", "paper_teacher", "paper_student", "method", "transform",
    "official", "status", "deviation", "status_text", "cells", "ours_cells", "ours_basis",
    "paper_top1", "paper_source", "paper_protocol",
    "log_best", "log_best_epoch", "log_last", "log_runs", "log_n_runs", "log_protocol", "log_source",
    "n", "ours_best_top1_mean", "ours_best_top1_std", "ours_best_top1", "ours_best_protocol",
    "ours_last_top1_mean", "ours_last_top1_std", "ours_last_top1", "ours_last_protocol",
    "best_minus_paper_mean", "best_minus_paper_lo", "best_minus_paper_hi", "best_minus_paper",
    "best_minus_log_mean", "best_minus_log_lo", "best_minus_log_hi", "best_minus_log", "interval",
]


def _text(x: Any) -> str:
    return "" if is_missing(x) else str(x).strip()


def _cell_label(temperature: Any, kd_weight: Any) -> str:
    """The run folder's setting label, ``T2_w9`` / ``Tlearned_w9`` (:attr:`lskd.workflow.grid.Cell.path`)."""
    t = "learned" if is_missing(temperature) else f"{float(temperature):g}"
    return f"T{t}_w{float(kd_weight):g}"


def t_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float, int]:
    """``(mean, lo, hi, n)``: the mean of ``values`` and its Student-t interval over them,
    ``mean ± t_{(1+level)/2, n−1} · s / √n`` (``s`` with ddof=1); ``lo`` and ``hi`` are NaN when ``n < 2``
    (and every entry is NaN when there is no value)."""
    arr = np.asarray(list(values), dtype=np.float64)
    n = int(arr.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(arr.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    from scipy import stats as sps

    half = float(sps.t.ppf((1 + level) / 2, n - 1)) * float(arr.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def _diff_columns(best: pd.Series, reference: Any, prefix: str) -> dict[str, Any]:
    if is_missing(reference) or best.empty:
        return {f"{prefix}_mean": np.nan, f"{prefix}_lo": np.nan, f"{prefix}_hi": np.nan, prefix: ""}
    mean, lo, hi, n = t_interval(best - float(reference))
    text = fmt_ci(mean, lo, hi) if n >= 2 else f"{mean:+.2f} (n=1: no interval)"
    return {f"{prefix}_mean": mean, f"{prefix}_lo": lo, f"{prefix}_hi": hi, prefix: text}


def _ours_cells(point: Mapping[str, Any]) -> tuple[list[str], str]:
    """(labels whose runs are "ours" for one official row, how they were chosen)."""
    status, deviation = point["status"], _text(point.get("deviation"))
    if status == "exact":
        labels = _text(point.get("cells")).split()
        return labels, "official point"
    if status == "unstated":
        return [], "none: no point stated"
    closest = _text(point.get("closest")).split()
    if not closest:
        return [], f"none: no cell near the official setting ({deviation})"
    if len(closest) > 1:
        return [], f"none: {len(closest)} settings are equally close ({', '.join(closest)}); they differ: {deviation}"
    return closest, f"closest cells {closest[0]}, which differ: {deviation}"


def paper_points_table(runs: pd.DataFrame, points: pd.DataFrame, *, dataset: str,
                       teacher_models: Mapping[str, str]) -> pd.DataFrame:
    """Like with like: one row per official setting (the rows of :func:`lskd.analysis.official.compare_cells`,
    with their ``closest`` cells), in their order.

    Columns (:data:`POINT_COLUMNS`): the pair (``teacher`` = the config's teacher id, ``student``, and the
    paper's names ``paper_teacher`` / ``paper_student`` via ``teacher_models`` and :func:`to_paper_model`),
    ``method``, ``transform``; ``official`` (the stated setting), ``status`` (exact / deviates / unstated),
    ``deviation`` (the reason), ``status_text`` (what the report shows); ``cells`` (the cells of exactly that
    setting), ``ours_cells`` (the cells ours is computed from: the exact cells; for a ``deviates`` row the
    single closest setting, empty when there is none or several tie; empty for ``unstated``) and ``ours_basis``;
    ``paper_top1`` (published, NaN where the paper has no number) with ``paper_source`` / ``paper_protocol``;
    ``log_best`` (the best of the official log's runs), ``log_best_epoch``, ``log_last``, ``log_runs`` (the
    log's runs as ``acc@epoch|…``), ``log_n_runs``, ``log_protocol``, ``log_source``; ``n`` (finished seeds of
    ``ours_cells``), ``ours_best_top1_*`` (:data:`OURS_BEST_PROTOCOL`: best test epoch, mean of the seeds) and
    ``ours_last_top1_*`` (:data:`OURS_LAST_PROTOCOL`) with the formatted ``ours_best_top1`` / ``ours_last_top1``;
    ``best_minus_paper_{mean,lo,hi}`` and ``best_minus_log_{mean,lo,hi}``: ours (best epoch) minus the paper /
    the log's best with a 95% Student-t interval over seeds (n−1 degrees of freedom; ``lo``/``hi`` NaN when
    n < 2, the text then says "n=1: no interval"), formatted in ``best_minus_paper`` / ``best_minus_log``;
    ``interval`` says which. When an exact row matches several settings (the source states too little to tell
    them apart), the one with the highest mean last-epoch top-1 on the test set is used and ``ours_basis``
    says so.
    """
    paper = paper_main_rows()
    paper = paper[paper["dataset"] == dataset]
    distill = _distill(runs)
    if "dataset" in distill:
        distill = distill[distill["dataset"] == dataset]
    rows = []
    for point in points.to_dict("records"):
        p_teacher = to_paper_model(teacher_models.get(point["teacher"], point["teacher"]))
        p_student = to_paper_model(point["student"])
        hit = paper[(paper["teacher"] == p_teacher) & (paper["student"] == p_student)
                    & (paper["method"] == point["method"]) & (paper["transform"] == point["transform"])]
        status, deviation = point["status"], _text(point.get("deviation"))
        log_runs = _text(point.get("log_runs"))
        row: dict[str, Any] = {
            "dataset": dataset, "teacher": point["teacher"], "student": point["student"],
            "paper_teacher": p_teacher, "paper_student": p_student, "method": point["method"],
            "transform": point["transform"], "official": point["official"], "status": status,
            "deviation": deviation,
            "status_text": {"exact": "exact", "unstated": UNSTATED_NOTE}.get(status, f"deviates: {deviation}"),
            "cells": _text(point.get("cells")),
            "paper_top1": float(hit["top1"].iloc[0]) if len(hit) else np.nan,
            "paper_source": hit["source"].iloc[0] if len(hit) else "",
            "paper_protocol": PAPER_PROTOCOL,
            "log_best": np.nan if is_missing(point.get("log_best")) else float(point["log_best"]),
            "log_best_epoch": np.nan if is_missing(point.get("log_best_epoch")) else int(point["log_best_epoch"]),
            "log_last": np.nan if is_missing(point.get("log_last")) else float(point["log_last"]),
            "log_runs": log_runs, "log_n_runs": len(log_runs.split("|")) if log_runs else 0,
            "log_protocol": LOG_PROTOCOL + (f" (the best of the log's {len(log_runs.split('|'))} runs)"
                                            if "|" in log_runs else ""),
            "log_source": _text(point.get("source")),
        }
        group = distill[(distill["teacher"] == point["teacher"]) & (distill["student"] == point["student"])
                        & (distill["method"] == point["method"]) & (distill["transform"] == point["transform"])]
        group = group.assign(_label=[_cell_label(t, w) for t, w in zip(group["temperature"], group["kd_weight"])])
        labels, basis = _ours_cells(point)
        found = [lab for lab in labels if (group["_label"] == lab).any()]
        if len(found) > 1:
            chosen = max(found, key=lambda lab: group.loc[group["_label"] == lab, "last_top1"].mean())
            basis += (f" {chosen}, the one of the {len(found)} matching settings ({', '.join(found)}) with the "
                      "highest mean last-epoch top-1 on the test set")
            found = [chosen]
        elif labels and basis == "official point":
            basis += " " + " ".join(labels)
        sub = group[group["_label"].isin(found)]
        _check_unique_seeds(sub, {k: point[k] for k in ("teacher", "student", "method", "transform")})
        n = len(sub)
        row["ours_cells"] = " ".join(found) if n else ""
        row["ours_basis"] = basis + ("" if n or not labels else " (no finished run yet)")
        row["n"] = n
        for what in ("best", "last"):
            summary = _summary(sub[f"{what}_top1"], f"{what}_top1")
            row.update({f"ours_{k}": v for k, v in summary.items() if not k.endswith("_n")})
        row["ours_best_protocol"] = OURS_BEST_PROTOCOL.format(n=n)
        row["ours_last_protocol"] = OURS_LAST_PROTOCOL.format(n=n)
        row.update(_diff_columns(sub["best_top1"], row["paper_top1"], "best_minus_paper"))
        row.update(_diff_columns(sub["best_top1"], row["log_best"], "best_minus_log"))
        row["interval"] = ("" if n == 0 else f"95% t-interval over seeds ({n - 1} df)" if n >= 2
                           else "n=1: no interval (needs at least 2 seeds)")
        rows.append(row)
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def paper_points(runs: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """:func:`paper_points_table` for a validated workflow config: its official rows and their cells
    (:func:`lskd.analysis.official.compare_cells`; it imports the losses, hence torch).
    No row (columns only) when the config's dataset has no official settings."""
    from lskd.analysis.official import compare_cells, official_settings
    from lskd.workflow import Experiment

    dataset = config["dataset"]["name"]
    teacher_models = {tid: t["model"] for tid, t in config["teachers"].items()}
    if official_settings(dataset).empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    points = compare_cells(Experiment(dict(config)))
    return paper_points_table(runs, points, dataset=dataset, teacher_models=teacher_models)


def paper_ablation_comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Our KD grid cells next to the paper's Table 4 (resnet32x4 → resnet8x4, base temperature 2, CE 0.1).

    Matches distilled KD runs on dataset, paper teacher/student names, temperature, ce_weight, kd_weight and
    transform; ours best- and last-epoch top-1 mean ± std (n) with ``ours_source``, the paper's ``paper_top1``
    with ``paper_source``, and their differences. Empty when nothing matches.
    """
    kd = _distill(runs)
    kd = kd[kd["method"] == "kd"].assign(paper_teacher=lambda d: _teacher_model(d).map(to_paper_model),
                                         paper_student=lambda d: d["student"].map(to_paper_model))
    paper = paper_ablation().rename(columns={"teacher": "paper_teacher", "student": "paper_student",
                                             "top1": "paper_top1", "source": "paper_source"})
    on = ["dataset", "paper_teacher", "paper_student", "temperature", "ce_weight", "kd_weight", "transform"]
    rows = []
    for key, sub in kd.groupby(on, dropna=True, sort=False):
        k = _key_dict(on, key)
        hit = paper
        for col, value in k.items():
            hit = hit[np.isclose(hit[col], value)] if isinstance(value, float) else hit[hit[col] == value]
        if hit.empty:
            continue
        _check_unique_seeds(sub, k)
        row: dict[str, Any] = {**k, "teacher": sub["teacher"].iloc[0], "student": sub["student"].iloc[0]}
        row.update({f"ours_{c}": v for c, v in _summary(sub["best_top1"], "best_top1").items()})
        row.update({f"ours_{c}": v for c, v in _summary(sub["last_top1"], "last_top1").items()})
        row.update(ours_source=OURS_SOURCE, paper_top1=float(hit["paper_top1"].iloc[0]),
                   paper_source=hit["paper_source"].iloc[0], paper_protocol=PAPER_PROTOCOL)
        row["diff_best_minus_paper"] = row["ours_best_top1_mean"] - row["paper_top1"]
        row["diff_last_minus_paper"] = row["ours_last_top1_mean"] - row["paper_top1"]
        rows.append(row)
    return _sorted(pd.DataFrame(rows), ["dataset", "teacher", "student", "transform", "kd_weight"])


__all__ = [
    "CELL", "GROUP", "HEADLINE_COLUMNS", "LOGIT_METRICS", "POINT_COLUMNS", "SELECTION_NOTE", "grid_table",
    "headline_table", "logit_summary_table", "paper_ablation_comparison", "paper_comparison", "paper_context_table",
    "paper_points", "paper_points_table", "selected_runs", "t_interval",
]
