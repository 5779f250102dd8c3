"""The names of the files in a run folder (the per-run contract of DESIGN.md) and of the results folder's tables,
spelled in one place: the Snakemake rules, the command line, the analysis and the report import them.

A finished run folder holds ``spec.json``, ``metrics.json``, ``history.csv``, ``timing.json``,
``model.safetensors`` and the logits of the split it was evaluated on, ``<split>_logits.safetensors``:
``test_logits`` for the paper protocol, stage-2 runs, teachers and CE baselines; ``val_logits`` for stage-1 runs
of the validation protocol, which never see the test set (teachers and baselines also keep their ``val_logits``
when a validation split is held out, so stage-1 students can be compared with their teacher on the same images).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SPEC = "spec.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
TIMING = "timing.json"
MODEL = "model.safetensors"
STATS = "logit_stats.safetensors"
DIVERGENCE = "divergence.json"
#: Where a run is evaluated: the test set, or the validation split held out of the training set.
EVAL_SPLITS: tuple[str, ...] = ("test", "val")

#: The results folder's tables (``<results>/tables/<name>.csv``): ``runs`` from the collect step, the rest from the
#: tables step (``lskd tables``), in the order the workflow lists them.
TABLES_DIR = "tables"
RUNS_TABLE = "runs"
ANALYSIS_TABLES: tuple[str, ...] = ("headline", "grid", "logit_summary", "logit_runs", "paper_comparison", "official",
                                    "diagnostics", "per_class")
TABLES: tuple[str, ...] = (RUNS_TABLE, *ANALYSIS_TABLES)
#: The claims step's tables (``lskd claims``).
CLAIM_TABLES: tuple[str, ...] = ("claims", "claims_runs")
#: The validation protocol's selection (the checkpoint between its two stages).
SELECTION_TABLE = "selection"


def table_path(results: str | os.PathLike, name: str) -> Path:
    """``<results>/tables/<name>.csv`` for a table named above."""
    if name not in (*TABLES, *CLAIM_TABLES, SELECTION_TABLE):
        raise ValueError(f"unknown table {name!r}")
    return Path(results) / TABLES_DIR / f"{name}.csv"


def logits_file(split: str = "test") -> str:
    """``test_logits.safetensors`` or ``val_logits.safetensors``."""
    if split not in EVAL_SPLITS:
        raise ValueError(f"split must be one of {', '.join(EVAL_SPLITS)}, got {split!r}")
    return f"{split}_logits.safetensors"


def run_split(run_dir: str | os.PathLike) -> str:
    """The split a finished run was evaluated on (``metrics.json``'s ``split``; runs written before the
    validation protocol existed were evaluated on the test set)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return "test"
    return str(json.loads(path.read_text()).get("split", "test"))


def logits_path(run_dir: str | os.PathLike, split: str | None = None) -> Path:
    """The logits file of ``run_dir`` for ``split`` (default: the split the run was evaluated on)."""
    return Path(run_dir) / logits_file(split or run_split(run_dir))


# ------------------------------------------------------------------ paths inside tables
#: Table columns that hold run folders: stored relative to the results folder, so a moved or copied results folder
#: still matches its tables.
PATH_COLUMNS: tuple[str, ...] = ("run_dir", "teacher_dir")


def results_of(table: str | os.PathLike) -> Path:
    """The results folder of a table file (``<results>/tables/<name>.csv``)."""
    return Path(table).resolve().parent.parent


def stored_path(results: str | os.PathLike, path: str | os.PathLike) -> str:
    """How a table stores ``path``: relative to ``results`` (POSIX) when inside it, else absolute."""
    p, root = Path(path).resolve(), Path(results).resolve()
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)


def resolve_stored(results: str | os.PathLike, stored: str | os.PathLike) -> Path:
    """The folder a table names: relative entries under ``results``; an absolute one as written, or, when it is gone
    (a table written before paths were stored relative, then moved), the same path re-rooted at ``results`` from
    its last ``runs`` component on."""
    p = Path(stored)
    if not p.is_absolute():
        return Path(results) / p
    if p.exists():
        return p
    parts = p.parts
    last = max((i for i, part in enumerate(parts) if part == "runs"), default=None)
    return Path(results).joinpath(*parts[last:]) if last is not None else p


def store_paths(df: Any, results: str | os.PathLike) -> Any:
    """``df`` with its :data:`PATH_COLUMNS` stored relative to ``results`` (missing values kept)."""
    out = df.copy()
    for col in (c for c in PATH_COLUMNS if c in out):
        out[col] = [v if not isinstance(v, str) or not v else stored_path(results, v) for v in out[col]]
    return out


def resolve_paths(df: Any, results: str | os.PathLike) -> Any:
    """``df`` with its :data:`PATH_COLUMNS` resolved to folders (see :func:`resolve_stored`)."""
    out = df.copy()
    for col in (c for c in PATH_COLUMNS if c in out):
        out[col] = [v if not isinstance(v, str) or not v else str(resolve_stored(results, v)) for v in out[col]]
    return out


def read_runs(table: str | os.PathLike) -> Any:
    """``runs.csv`` (or any table with run folders) with its folders resolved against its results folder."""
    import pandas as pd

    return resolve_paths(pd.read_csv(table), results_of(table))
