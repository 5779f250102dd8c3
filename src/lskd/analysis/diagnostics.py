"""The diagnostics KD papers report, per arm of the headline (its selected runs: stage 2 under the validation
protocol): gain over the CE-only student, share of the teacher–student gap closed, calibration before and after
temperature scaling, cost, and the per-class accuracy change of standardized over raw logits.

* **Gain over CE** (points of top-1): the student's last-epoch top-1 minus the CE-only student's. Paired by seed
  when every seed of the arm has a CE student of the same seed (``gain_pairing = "paired by seed"``), with the
  Student-t interval of :func:`lskd.analysis.inference.t_interval`; otherwise the student's seeds minus the mean
  of the CE students (``"vs CE mean"``: the interval then ignores the CE mean's own noise).
* **Gap closed**: :math:`(s - c)/(t - c)` with s the student's, c the CE student's and t the teacher's top-1
  (:func:`gap_closed`): 0 = no better than CE, 1 = as good as the teacher, < 0 worse than CE. Its interval is the
  gain's interval divided by the gap (the teacher–CE gap taken as fixed).
* **Calibration** (:func:`calibration`): ECE (15 equal-width bins, %, :func:`lskd.engine.metrics.
  expected_calibration_error`) of the test logits, before and after temperature scaling (Guo et al., 2017): one
  temperature T per run minimising the NLL of softmax(z / T) (:func:`fit_temperature`, scipy's bounded scalar
  minimiser over log T), fitted on the run's validation logits when it kept them (``ts_fit_split = "val"``), else
  cross-fitted on the test set (``"test-2fold"``: each half is scaled with the temperature fitted on the other
  half, so no sample's temperature was fitted on itself).
* **Cost**: wall time (``timing.json``) per student. Students trained in lockstep share one job and every student
  of the job records the job's wall time, so ``students_in_job`` counts the runs of the same stage and seed with
  exactly that wall time and ``seconds_per_student`` is the job's wall time divided by it (an even split: teacher
  forwards are shared). It is measured on the arm's grid runs (stage 1 under the validation protocol), whose jobs
  hold one method each (``cost_basis``); stage-2 jobs mix methods, so they are used only when an arm has no grid
  run. ``images_per_s`` = training images × epochs / ``seconds_per_student``; ``cost_vs_kd_raw`` =
  ``seconds_per_student`` over KD raw's in the same pair.
* **Per class** (:func:`per_class_table`): for each method with raw and standardized arms, per class and seed the
  standardized student's top-1 on that class minus the raw student's of the same seed, averaged over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import log_softmax

from lskd.analysis import inference
from lskd.analysis.health import HEALTHY, healthy_mask

GROUP = ["dataset", "teacher", "student", "method"]
ARM = [*GROUP, "transform"]
RAW, LS = "none", "zscore"
#: Temperature-scaling search range (log T in [log 1/20, log 20]).
T_BOUNDS = (0.05, 20.0)
PAIRED, UNPAIRED = "paired by seed", "vs CE mean"

#: Column order of :func:`diagnostics_table`.
#: Columns measured from wall time: they change from one execution of the same runs to the next (provenance of the
#: run, like runs.csv's ``wall_seconds``), while every other column is a result.
COST_COLUMNS: tuple[str, ...] = ("wall_seconds_mean", "students_in_job", "seconds_per_student_mean",
                                 "images_per_s_mean", "cost_vs_kd_raw")
DIAGNOSTIC_COLUMNS: list[str] = [
    *ARM, "temperature", "kd_weight", "protocol", "n", "seeds", "last_top1_mean",
    "ce_top1_mean", "ce_n", "teacher_top1_mean",
    "gain_ce_mean", "gain_ce_lo", "gain_ce_hi", "gain_ce_n", "gain_pairing",
    "gap_closed_mean", "gap_closed_lo", "gap_closed_hi",
    "ece_mean", "ece_ts_mean", "ts_temperature_mean", "ts_fit_split",
    "cost_basis", "cost_n", "wall_seconds_mean", "students_in_job", "seconds_per_student_mean", "train_images",
    "epochs", "images_per_s_mean", "cost_vs_kd_raw",
]
PER_CLASS_COLUMNS: list[str] = [*GROUP, "transform", "class", "class_name", "n", "raw_top1_mean", "ls_top1_mean",
                                 "change_mean"]


# ---------------------------------------------------------------------------------------------- pure functions
def gap_closed(student: float, ce: float, teacher: float) -> float:
    """Share of the teacher–CE gap the student closes, :math:`(s - c)/(t - c)`; NaN when the teacher is no better
    than the CE student (no gap to close)."""
    gap = teacher - ce
    return (student - ce) / gap if gap > 0 else math.nan


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of softmax(logits / temperature)."""
    lp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-lp[np.arange(len(targets)), np.asarray(targets)].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray, bounds: tuple[float, float] = T_BOUNDS) -> float:
    """The temperature T > 0 minimising :func:`nll` of softmax(z / T) (temperature scaling, Guo et al. 2017)."""
    lo, hi = (math.log(b) for b in bounds)
    res = optimize.minimize_scalar(lambda u: nll(logits, targets, math.exp(u)), bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-6})
    return float(math.exp(res.x))


def ece(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """ECE (%) of softmax(logits / temperature), 15 equal-width bins (:mod:`lskd.engine.metrics`)."""
    import torch

    from lskd.engine.metrics import expected_calibration_error

    z = torch.from_numpy(np.asarray(logits, dtype=np.float64) / temperature)
    return expected_calibration_error(z, torch.from_numpy(np.asarray(targets, dtype=np.int64)))


#: ``ts_fit_split`` when no validation logits exist: T fitted on one half of the test set, scored on the other.
CROSS_FIT = "test-2fold"


def calibration(logits: np.ndarray, targets: np.ndarray, fit_logits: np.ndarray | None = None,
                fit_targets: np.ndarray | None = None) -> dict[str, Any]:
    """``ece`` and ``ece_ts`` (after temperature scaling, %), ``ts_temperature`` and ``ts_fit_split``.

    With ``fit_logits`` (the run's validation logits) T is fitted there (``"val"``). Without, the test samples are
    cross-fitted (:data:`CROSS_FIT`): the even-indexed half's T scales the odd-indexed half and vice versa, so no
    sample is scored with a temperature fitted on itself; ``ts_temperature`` is the mean of the two fits."""
    if fit_logits is not None and fit_targets is not None:
        t = fit_temperature(fit_logits, fit_targets)
        return {"ece": ece(logits, targets), "ece_ts": ece(logits, targets, t), "ts_temperature": t,
                "ts_fit_split": "val"}
    halves = (np.arange(len(targets)) % 2 == 0, np.arange(len(targets)) % 2 == 1)
    fits = [fit_temperature(logits[h], targets[h]) for h in halves]
    scaled = np.empty_like(logits, dtype=np.float64)
    for h, t_other in zip(halves, fits[::-1]):
        scaled[h] = logits[h] / t_other
    return {"ece": ece(logits, targets), "ece_ts": ece(scaled, targets), "ts_temperature": float(np.mean(fits)),
            "ts_fit_split": CROSS_FIT}


def per_class_accuracy(logits: np.ndarray, targets: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Top-1 (%) per true class (NaN for a class without samples)."""
    targets = np.asarray(targets)
    k = num_classes or int(np.asarray(logits).shape[1])
    correct = np.asarray(logits).argmax(axis=1) == targets
    hits = np.bincount(targets, weights=correct, minlength=k)
    counts = np.bincount(targets, minlength=k).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, 100.0 * hits / counts, np.nan)


def gain_over_ce(student: Mapping[int, float], ce: Mapping[int, float]) -> tuple[inference.TInterval, str]:
    """(interval of student − CE top-1 in points, pairing): paired by seed when every student seed has a CE
    student, else each student seed minus the CE mean."""
    if not student or not ce:
        raise ValueError("need student and CE accuracies")
    if set(student) <= set(ce):
        return inference.t_interval(student[s] - ce[s] for s in sorted(student)), PAIRED
    mean_ce = float(np.mean(list(ce.values())))
    return inference.t_interval(v - mean_ce for v in student.values()), UNPAIRED


def students_in_job(runs: pd.DataFrame) -> pd.Series:
    """Per run, how many runs of the same stage and seed recorded exactly its wall time (its lockstep job)."""
    stage = runs["stage"].fillna("sweep") if "stage" in runs else pd.Series("sweep", index=runs.index)
    key = pd.DataFrame({"stage": stage, "seed": runs["seed"], "wall": runs["wall_seconds"]})
    return key.groupby(["stage", "seed", "wall"], dropna=False)["wall"].transform("size").astype(int)


# ---------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class RunEval:
    """What the diagnostics read from a run folder: test logits and targets, validation logits and targets when
    kept, the training images per epoch (``spec.json``'s ``data.train_subset``; None when the whole split)."""

    logits: np.ndarray
    targets: np.ndarray
    val_logits: np.ndarray | None
    val_targets: np.ndarray | None
    train_images: int | None


def read_run_eval(run_dir: str | Path) -> RunEval:
    """The :class:`RunEval` of a finished run folder (``lskd.layout``'s logits files and ``spec.json``)."""
    from lskd.engine.io import read_json, read_tensors
    from lskd.layout import SPEC, logits_path

    test = read_tensors(logits_path(run_dir, "test"))
    val_path = logits_path(run_dir, "val")
    val = read_tensors(val_path) if val_path.exists() else None
    spec = read_json(Path(run_dir) / SPEC).get("spec", {})
    subset = (spec.get("data") or {}).get("train_subset")
    return RunEval(test["logits"].double().numpy(), test["targets"].long().numpy(),
                   None if val is None else val["logits"].double().numpy(),
                   None if val is None else val["targets"].long().numpy(),
                   int(subset) if subset else None)


# ---------------------------------------------------------------------------------------------- tables
def _mean(values: Iterable[float]) -> float:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else math.nan


def _references(runs: pd.DataFrame, dataset: Any, teacher: Any, student: Any) -> tuple[dict[int, float], float]:
    """({seed: CE student top-1}, teacher top-1 mean) of a pair."""
    ok = runs[healthy_mask(runs["status"])] if "status" in runs else runs
    ce = ok[(ok["role"] == "baseline") & (ok["dataset"] == dataset) & (ok["student"] == student)]
    t = ok[(ok["role"] == "teacher") & (ok["dataset"] == dataset) & (ok["teacher"] == teacher)]
    return dict(zip(ce["seed"].astype(int), ce["last_top1"].astype(float))), _mean(t["last_top1"])


def _cost(runs: pd.DataFrame, images: int | None) -> dict[str, Any]:
    """Wall time per job and per student, and training images per second, of runs with ``students_in_job``."""
    runs = runs[runs["wall_seconds"].notna()]
    per_student = runs["wall_seconds"] / runs["students_in_job"]
    epochs = int(runs["epochs"].max()) if "epochs" in runs and runs["epochs"].notna().any() else None
    return {"cost_n": len(runs), "wall_seconds_mean": _mean(runs["wall_seconds"]),
            "students_in_job": int(runs["students_in_job"].max()) if len(runs) else 0,
            "seconds_per_student_mean": _mean(per_student), "train_images": images, "epochs": epochs,
            "images_per_s_mean": _mean(images * runs["epochs"] / per_student) if images and epochs else math.nan}


def _arm_row(key: tuple, sub: pd.DataFrame, runs: pd.DataFrame, protocol: str,
             evals: Mapping[str, RunEval], cost_runs: pd.DataFrame) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(ARM, key))
    row.update(temperature=sub["temperature"].iloc[0], kd_weight=sub["kd_weight"].iloc[0], protocol=protocol,
               n=len(sub), seeds=" ".join(str(int(s)) for s in sorted(sub["seed"])),
               last_top1_mean=_mean(sub["last_top1"]))
    ce, teacher = _references(runs, row["dataset"], row["teacher"], row["student"])
    row.update(ce_top1_mean=_mean(ce.values()), ce_n=len(ce), teacher_top1_mean=teacher)
    if ce:
        ci, pairing = gain_over_ce(dict(zip(sub["seed"].astype(int), sub["last_top1"].astype(float))), ce)
        gap = teacher - row["ce_top1_mean"]
        row.update(gain_ce_mean=ci.mean, gain_ce_lo=ci.lo, gain_ce_hi=ci.hi, gain_ce_n=ci.n, gain_pairing=pairing,
                   gap_closed_mean=gap_closed(row["last_top1_mean"], row["ce_top1_mean"], teacher),
                   gap_closed_lo=ci.lo / gap if gap > 0 else math.nan,
                   gap_closed_hi=ci.hi / gap if gap > 0 else math.nan)
    cal = [calibration(e.logits, e.targets, e.val_logits, e.val_targets) for e in (evals[d] for d in sub["run_dir"])]
    row.update(ece_mean=_mean(c["ece"] for c in cal), ece_ts_mean=_mean(c["ece_ts"] for c in cal),
               ts_temperature_mean=_mean(c["ts_temperature"] for c in cal),
               ts_fit_split=" ".join(sorted({c["ts_fit_split"] for c in cal})))
    row.update(_cost(cost_runs if len(cost_runs) else sub, evals[sub["run_dir"].iloc[0]].train_images))
    row["cost_basis"] = "grid runs (one method per job)" if len(cost_runs) else "reported runs (jobs mix methods)"
    return row


def diagnostics_table(runs: pd.DataFrame, selected: pd.DataFrame, *, protocol: str,
                      load: Callable[[str], RunEval] = read_run_eval) -> pd.DataFrame:
    """One row per arm of ``selected`` (:func:`lskd.analysis.tables.selected_runs`: the headline's healthy runs)
    with the columns of :data:`DIAGNOSTIC_COLUMNS` (see the module docstring); ``runs`` is the whole runs table
    (CE students, teacher, and every run for :func:`students_in_job`)."""
    if selected.empty:
        return pd.DataFrame(columns=DIAGNOSTIC_COLUMNS)
    runs = runs.assign(students_in_job=students_in_job(runs))
    selected = selected.assign(students_in_job=runs["students_in_job"].reindex(selected.index).fillna(1).astype(int))
    stage = runs["stage"].fillna("sweep") if "stage" in runs else pd.Series("sweep", index=runs.index)
    status = runs["status"] if "status" in runs else pd.Series(HEALTHY, index=runs.index)
    grid = runs[(runs["role"] == "distill") & (stage != "confirm") & healthy_mask(status)]
    evals = {d: load(d) for d in selected["run_dir"]}
    rows = []
    for key, sub in selected.groupby(ARM, dropna=False, sort=False):
        mask = pd.Series(True, index=grid.index)
        for col, value in zip(ARM, key):
            mask &= grid[col] == value
        rows.append(_arm_row(key, sub, runs, protocol, evals, grid[mask]))
    out = pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)
    for _, g in out.groupby(["dataset", "teacher", "student"], sort=False):
        kd = g[(g["method"] == "kd") & (g["transform"] == RAW)]["seconds_per_student_mean"]
        if len(kd) and kd.iloc[0] > 0:
            out.loc[g.index, "cost_vs_kd_raw"] = g["seconds_per_student_mean"] / kd.iloc[0]
    return out


def per_class_table(selected: pd.DataFrame, *, load: Callable[[str], RunEval] = read_run_eval,
                    class_names: Callable[[str, int], list[str]] | None = None) -> pd.DataFrame:
    """Per method with raw and standardized (``zscore``) arms and per class: the standardized student's top-1 on
    the class minus the raw student's of the same seed, mean over the seeds both have (:data:`PER_CLASS_COLUMNS`;
    ``transform`` names the standardized arm)."""
    rows = []
    for key, g in selected.groupby(GROUP, dropna=False, sort=False):
        raw = g[g["transform"] == RAW].set_index("seed")["run_dir"]
        ls = g[g["transform"] == LS].set_index("seed")["run_dir"]
        seeds = sorted(set(raw.index) & set(ls.index))
        if not seeds:
            continue
        acc_raw, acc_ls = [], []
        for s in seeds:
            a, b = load(raw[s]), load(ls[s])
            if not np.array_equal(a.targets, b.targets):
                raise ValueError(f"seed {s}: {raw[s]} and {ls[s]} were scored on different samples")
            k = max(a.logits.shape[1], b.logits.shape[1])
            acc_raw.append(per_class_accuracy(a.logits, a.targets, k))
            acc_ls.append(per_class_accuracy(b.logits, b.targets, k))
        r, z = np.mean(acc_raw, axis=0), np.mean(acc_ls, axis=0)
        names = class_names(str(key[0]), len(r)) if class_names else [str(c) for c in range(len(r))]
        for c in range(len(r)):
            rows.append({**dict(zip(GROUP, key)), "transform": LS, "class": c, "class_name": names[c],
                         "n": len(seeds), "raw_top1_mean": r[c], "ls_top1_mean": z[c], "change_mean": z[c] - r[c]})
    return pd.DataFrame(rows, columns=PER_CLASS_COLUMNS)


def dataset_class_names(dataset: str, k: int) -> list[str]:
    """The dataset's class names (:func:`lskd.data.get_spec`), or ``0 … k-1`` when unknown or mismatched."""
    try:
        from lskd.data import get_spec

        names = list(get_spec(dataset).class_names)
    except (ValueError, KeyError, ImportError):
        names = []
    return names if len(names) == k else [str(i) for i in range(k)]


__all__ = ["COST_COLUMNS", "DIAGNOSTIC_COLUMNS", "PER_CLASS_COLUMNS", "RunEval", "calibration", "diagnostics_table", "ece",
           "fit_temperature", "gain_over_ce", "gap_closed", "nll", "per_class_accuracy", "per_class_table",
           "read_run_eval", "students_in_job"]
