"""Read finished run folders (the per-run contract of DESIGN.md) into one tidy row per run.

A run folder holds ``spec.json``, ``metrics.json``, ``history.csv``, ``timing.json`` and
``test_logits.safetensors``. Fields come from ``spec.labels`` when the workflow attached them, else from the
spec itself:

=================  ================================================================================
column             source (labels first, then the fallback)
=================  ================================================================================
role               ``labels.role``; else inferred: method ``ce`` → ``teacher`` when another collected run
                   names this folder as its ``teacher_dir``, otherwise ``baseline``; any other method →
                   ``distill``
dataset            ``labels.dataset`` | ``spec.data.name``
teacher, student   ``labels`` | teacher role: ``teacher = model``, ``student`` empty; otherwise
                   ``student = model`` and ``teacher`` = the model in ``teacher_dir/spec.json``
                   (the workflow's ``labels.teacher`` is the config's teacher key, which may be an alias)
teacher_model      the architecture of the teacher: the teacher run's ``spec.model`` (teacher role: ``model``),
                   else ``teacher``; used to match the paper's rows
method             ``labels.method`` | ``spec.method``
transform          ``labels.transform`` | ``resolved.hparams.transform`` (empty for CE runs)
temperature        ``labels.temperature`` | ``resolved.hparams.temperature``; empty for CTKD (learned) and CE
kd_weight          ``labels.kd_weight`` | ``resolved.hparams.kd_weight`` (empty for CE)
effective_temp...  the temperature the loss used at the end: CTKD → last ``temperature`` of ``history.csv``;
                   CE runs → 1.0; otherwise ``temperature`` (1.0 for a method without one)
stage              ``labels.stage``: ``sweep`` (the grid; stage 1 of the validation protocol) or ``confirm``
                   (stage 2: a selected setting retrained with a fresh seed); empty for teachers and baselines
split              ``metrics.json``'s ``split``: where ``last_*``/``best_*`` were measured, ``test`` or ``val``
status             :func:`lskd.analysis.health.run_health`: ``ok``, ``diverged``, ``single-class``,
                   ``chance-level`` or ``not converged`` (a diverged run has no accuracy: its metric columns are
                   empty); ``health_note`` the statistic that flagged an unhealthy run; ``majority_share`` (share
                   of the eval predictions in the most frequent class) and ``last_epoch_share`` (share of the
                   rise above chance made in the last epoch), the two statistics measured for every run
=================  ================================================================================

Metrics are ``metrics.json``'s ``last`` (headline) and ``best`` (the paper's protocol) blocks; any NaN/inf there
raises :class:`ValueError`, so no NaN reaches a table except the empty accuracy of a run recorded as diverged.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from lskd.analysis.health import NOT_CONVERGED_SHARE, run_health
from lskd.engine.io import read_json, read_tensors
from lskd.layout import logits_path
from lskd.losses import method_class

ROLES: tuple[str, ...] = ("teacher", "baseline", "distill")

RUN_COLUMNS: tuple[str, ...] = (
    "run_dir", "role", "dataset", "teacher", "teacher_model", "student", "model", "method", "transform",
    "temperature", "kd_weight", "ce_weight", "effective_temperature", "seed", "last_top1", "last_top5", "last_nll", "last_ece",
    "best_top1", "best_top5", "best_epoch", "epochs", "wall_seconds", "num_params", "num_test", "teacher_dir",
    "cell", "git_commit", "stage", "split", "status", "health_note", "majority_share", "last_epoch_share",
    "num_classes", "num_eval", "val_top1",
)

SORT_KEYS: tuple[str, ...] = (
    "dataset", "teacher", "student", "method", "transform", "temperature", "kd_weight", "seed", "run_dir",
)

_METRIC_KEYS = ("epoch", "top1", "top5", "nll", "ece")


def resolve_teacher_dir(run_dir: str | os.PathLike, teacher_dir: str | None) -> Path | None:
    """The teacher folder of a run: absolute as given; a relative one (the workflow writes paths relative to
    its working directory) is looked up from the working directory, then from the run folder and each of its
    parents; if none exists, the path relative to the working directory is returned."""
    if not teacher_dir:
        return None
    p = Path(teacher_dir)
    if p.is_absolute() or p.exists():
        return p.resolve()
    run = Path(run_dir).resolve()
    for base in (run, *run.parents):
        if (base / p).exists():
            return (base / p).resolve()
    return p.resolve()


def last_history_value(run_dir: str | os.PathLike, column: str) -> float | None:
    """Last non-empty value of ``column`` in ``history.csv`` (``None`` if the file or column is missing)."""
    path = Path(run_dir) / "history.csv"
    if not path.exists():
        return None
    hist = pd.read_csv(path)
    if column not in hist or hist[column].dropna().empty:
        return None
    return float(hist[column].dropna().iloc[-1])


def _check_finite(run_dir: Path, metrics: dict[str, Any]) -> None:
    bad = []
    for block in ("last", "best"):
        if block not in metrics:
            raise ValueError(f"{run_dir}/metrics.json has no {block!r} block")
        for key in _METRIC_KEYS:
            value = metrics[block].get(key)
            if value is None or not math.isfinite(float(value)):
                bad.append(f"{block}.{key}={value!r}")
    if bad:
        raise ValueError(f"run {run_dir} has non-finite or missing metrics ({', '.join(bad)}); refusing to tabulate it")


def _label(labels: dict[str, Any], key: str, fallback: Any) -> Any:
    return labels[key] if key in labels else fallback


def _spec_teacher_model(teacher_dir: Path | None) -> str | None:
    if teacher_dir is None or not (teacher_dir / "spec.json").exists():
        return None
    return read_json(teacher_dir / "spec.json")["spec"]["model"]


def read_run(run_dir: str | os.PathLike, *, is_teacher: bool | None = None,
             not_converged_share: float | None = NOT_CONVERGED_SHARE) -> dict[str, Any]:
    """One run folder as a flat dict with the keys :data:`RUN_COLUMNS` (see the module docstring).

    ``is_teacher``: whether another run uses this folder as its teacher (only used to infer the role of a CE run
    without ``labels.role``; ``None`` counts as ``False``); ``not_converged_share``: the health check's threshold
    (None: off; :func:`lskd.analysis.health.assess`). Raises ``FileNotFoundError`` for an unfinished run
    (no ``metrics.json``) and ``ValueError`` for non-finite metrics.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} has no metrics.json: the run is not finished")
    record = read_json(run_dir / "spec.json")
    metrics = read_json(run_dir / "metrics.json")
    diverged = metrics.get("status") == "diverged"
    if diverged:
        metrics = {**metrics, **{b: dict.fromkeys(_METRIC_KEYS, math.nan) for b in ("last", "best")}}
    else:
        _check_finite(run_dir, metrics)
    timing = read_json(run_dir / "timing.json") if (run_dir / "timing.json").exists() else {}
    spec, resolved = record["spec"], record.get("resolved", {})
    labels: dict[str, Any] = spec.get("labels") or {}
    hparams: dict[str, Any] = resolved.get("hparams") or spec.get("hparams") or {}
    method = _label(labels, "method", spec["method"])
    teacher_dir = resolve_teacher_dir(run_dir, spec.get("teacher_dir"))

    role = labels.get("role")
    if role is None:
        role = ("teacher" if is_teacher else "baseline") if spec["method"] == "ce" else "distill"
    if role not in ROLES:
        raise ValueError(f"{run_dir}: unknown role {role!r}; allowed: {', '.join(ROLES)}")
    model = spec["model"]
    teacher_model = model if role == "teacher" else _spec_teacher_model(teacher_dir)
    teacher = _label(labels, "teacher", teacher_model)
    teacher_model = teacher_model or teacher
    student = _label(labels, "student", None if role == "teacher" else model)

    cls = method_class(spec["method"])
    learned, distils = cls.learns_temperature, cls.needs_teacher
    temperature = hparams.get("temperature") if distils and not learned else None
    temperature = _label(labels, "temperature", temperature)
    if learned:  # the method logs the temperature it has learned
        effective = last_history_value(run_dir, "temperature")
    elif not distils:
        effective = 1.0
    else:
        effective = hparams.get("temperature", temperature)
    effective = 1.0 if effective is None else float(effective)

    health = run_health(run_dir, metrics, resolved.get("num_classes"), not_converged_share=not_converged_share)
    wall = timing.get("wall_seconds")
    if wall is not None and not math.isfinite(float(wall)):
        raise ValueError(f"run {run_dir} has non-finite wall_seconds {wall!r}")
    return {
        "run_dir": str(run_dir),
        "role": role,
        "dataset": _label(labels, "dataset", spec["data"]["name"]),
        "teacher": teacher,
        "teacher_model": teacher_model,
        "student": student,
        "model": model,
        "method": method,
        "transform": _label(labels, "transform", hparams.get("transform")),
        "temperature": None if temperature is None else float(temperature),
        "kd_weight": _label(labels, "kd_weight", hparams.get("kd_weight") if spec["method"] != "ce" else None),
        "ce_weight": hparams.get("ce_weight"),
        "effective_temperature": effective,
        "seed": int(_label(labels, "seed", spec.get("seed", 0))),
        **{f"last_{k}": float(metrics["last"][k]) for k in ("top1", "top5", "nll", "ece")},
        "best_top1": float(metrics["best"]["top1"]),
        "best_top5": float(metrics["best"]["top5"]),
        "best_epoch": math.nan if diverged else int(metrics["best"]["epoch"]),
        "epochs": int(timing["epochs"]) if "epochs" in timing else int(metrics["last"]["epoch"]),
        "wall_seconds": None if wall is None else float(wall),
        "num_params": resolved.get("num_params"),
        "num_test": metrics.get("num_test"),
        "num_eval": metrics.get("num_eval", metrics.get("num_test")),
        "teacher_dir": None if teacher_dir is None else str(teacher_dir),
        "cell": spec.get("cell", ""),
        "git_commit": record.get("git_commit", "unknown"),
        "stage": labels.get("stage", "sweep" if role == "distill" else None),
        "split": metrics.get("split", "test"),
        "status": health.status,
        "health_note": health.note,
        "majority_share": health.majority_share,
        "last_epoch_share": health.last_epoch_share,
        "num_classes": resolved.get("num_classes"),
        "val_top1": _val_top1(run_dir, metrics),
    }


def _val_top1(run_dir: Path, metrics: dict[str, Any]) -> float:
    """Last-epoch top-1 (%) on the held-out validation split: a stage-1 run's own metric, or for a teacher or CE
    baseline evaluated on the test set the accuracy of its kept ``val_logits``; NaN without a validation split."""
    if metrics.get("split") == "val":
        return float(metrics["last"]["top1"])
    path = logits_path(run_dir, "val")
    if not path.exists():
        return math.nan
    t = read_tensors(path)
    return 100.0 * float((t["logits"].argmax(-1) == t["targets"]).double().mean())


def sort_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Deterministic order: role (teacher, baseline, distill), then :data:`SORT_KEYS` (empty values first)."""
    order = df["role"].map({r: i for i, r in enumerate(ROLES)})
    keys = [k for k in SORT_KEYS if k in df]
    out = df.assign(_role_order=order).sort_values(["_role_order", *keys], na_position="first", kind="mergesort")
    return out.drop(columns="_role_order").reset_index(drop=True)


def collect_runs(run_dirs: Iterable[str | os.PathLike], *,
                 not_converged_share: float | None = NOT_CONVERGED_SHARE) -> pd.DataFrame:
    """One row per finished run folder (columns :data:`RUN_COLUMNS`), sorted by :func:`sort_runs`.

    Roles missing from ``spec.labels`` are inferred with the teacher links among the given folders (a CE run
    that some other given run uses as ``teacher_dir`` is a ``teacher``, else a ``baseline``). Raises
    ``ValueError`` when a run's metrics contain NaN/inf or a folder is listed twice.
    """
    dirs = [Path(d) for d in run_dirs]
    resolved = [d.resolve() for d in dirs]
    if len(set(resolved)) != len(resolved):
        raise ValueError("collect_runs: a run folder is listed more than once")
    teachers: set[Path] = set()
    for d in dirs:
        spec = read_json(d / "spec.json")["spec"]
        t = resolve_teacher_dir(d, spec.get("teacher_dir"))
        if t is not None:
            teachers.add(t)
    rows = [read_run(d, is_teacher=r in teachers, not_converged_share=not_converged_share)
            for d, r in zip(dirs, resolved)]
    df = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    df["best_epoch"] = pd.to_numeric(df["best_epoch"], errors="raise").astype("Int64")  # empty when diverged
    for col in ("temperature", "kd_weight", "ce_weight", "effective_temperature", "wall_seconds"):
        df[col] = pd.to_numeric(df[col], errors="raise").astype("float64")
    return sort_runs(df)
