"""What the figures and the report read from a results folder, and the small helpers they share.

A results folder is the workflow's ``results/``: run folders under ``runs/`` (the per-run contract of
DESIGN.md, plus ``logit_stats.safetensors`` written by the pipeline) and CSV tables under ``tables/``. Tables
missing from ``tables/`` are recomputed from the run folders (except the logit summary, which needs the
per-sample statistics of every run); per-sample statistics missing from a run folder are recomputed from its
logits.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure as MplFigure

from lskd import layout
from lskd.analysis import (
    read_run_stats,
    selected_runs,
)
from lskd.analysis.diagnostics import dataset_class_names
from lskd.analysis.formatting import fmt_num, is_missing
from lskd.engine.io import read_json, read_tensors
from lskd.layout import STATS as STATS_FILE
from lskd.layout import logits_path

DPI = 130
PAIR = ["dataset", "teacher", "student"]
TRANSFORM_LABELS = {"none": "raw", "zscore": "z-score", "center": "centered", "scale": "scaled"}


@dataclass(frozen=True)
class Figure:
    """One report figure: ``name`` (file stem), ``path`` (the PNG), ``title`` and ``caption`` (what to look at,
    computed from the run's numbers)."""

    name: str
    path: Path
    title: str
    caption: str


# ---------------------------------------------------------------------------------------------- labels
def transform_label(t: Any) -> str:
    return "—" if is_missing(t) else TRANSFORM_LABELS.get(str(t), str(t))


def method_label(m: Any) -> str:
    return "—" if is_missing(m) else str(m).upper()


def setting_label(row: pd.Series) -> str:
    """``"T=1, w=0.9, seed 0"`` (CTKD: the learned temperature)."""
    t = f"learned T≈{row['effective_temperature']:.1f}" if is_missing(row["temperature"]) else \
        f"T={fmt_num(row['temperature'])}"
    return f"{t}, w={fmt_num(row['kd_weight'])}, seed {int(row['seed'])}"


def pair_mask(df: pd.DataFrame, pair: tuple[str, str, str]) -> pd.Series:
    """Rows of ``df`` that belong to ``pair`` = (dataset, teacher, student)."""
    return (df[PAIR].astype(str) == pd.Series(pair, index=PAIR)).all(axis=1)


def span_phrase(values: list[float], unit: str = " points") -> str:
    """``"+0.4 to +1.1 points"`` (or ``"+0.4 points"`` for one value)."""
    lo, hi = min(values), max(values)
    return f"{lo:+.1f}{unit}" if math.isclose(lo, hi, abs_tol=0.05) else f"{lo:+.1f} to {hi:+.1f}{unit}"


# ---------------------------------------------------------------------------------------------- loading
def of_pair(df: pd.DataFrame, pair: tuple[str, str, str]) -> pd.DataFrame:
    """The rows of ``df`` of one (dataset, teacher, student) pair, compared as text."""
    return df[pair_mask(df, pair)]


def locate_run_dir(results_dir: Path, run_dir: str) -> Path:
    """A run folder named in a table (:func:`lskd.layout.resolve_stored`)."""
    return layout.resolve_stored(results_dir, run_dir)


class MissingAnalysisError(FileNotFoundError):
    """An analysis product the report renders is missing; the message names the step that writes it."""


#: The step that writes each analysis product the report reads (the report renders; it never recomputes).
WRITTEN_BY = {layout.RUNS_TABLE: "the collect step (`snakemake ... results/tables/runs.csv`, or `lskd collect`)",
              **{name: "the tables step (`snakemake ... --until tables`, or `lskd tables`)"
                 for name in layout.ANALYSIS_TABLES},
              layout.STATS: "the tables step (`lskd tables` writes each run's logit statistics; or `lskd logit-stats RUN`)",
              layout.CLAIM_TABLES[0]: "the claims step (`snakemake ... --until claims`, or `lskd claims`)"}


def missing(path: Path, product: str) -> MissingAnalysisError:
    return MissingAnalysisError(f"{path} is missing: the report renders what the analysis wrote; run "
                                f"{WRITTEN_BY[product]} first")


@dataclass
class Results:
    """A results folder as the report sees it: the run table, the result tables and cached per-run data."""

    results_dir: Path
    config: dict[str, Any]
    runs: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @cached_property
    def distill(self) -> pd.DataFrame:
        return self.runs[self.runs["role"] == "distill"]

    @cached_property
    def selected(self) -> pd.DataFrame:
        """The runs of the setting each (pair, method, transform) reports (:func:`lskd.analysis.selected_runs`)."""
        return selected_runs(self.runs)

    @cached_property
    def methods(self) -> list[str]:
        """Distilled methods present, in the config's grid order, then any others alphabetically."""
        present = set(self.distill["method"].dropna())
        order = [m for m in self.config.get("grid", {}).get("methods", []) if m in present]
        return order + sorted(present - set(order))

    @cached_property
    def transforms(self) -> list[str]:
        present = set(self.distill["transform"].dropna())
        return [t for t in TRANSFORM_LABELS if t in present] + sorted(present - set(TRANSFORM_LABELS))

    @cached_property
    def pairs(self) -> list[tuple[str, str, str]]:
        keys = self.distill[PAIR].drop_duplicates()
        return sorted(tuple(map(str, r)) for r in keys.itertuples(index=False))

    @cached_property
    def palette(self) -> dict[str, Any]:
        colors = sns.color_palette("colorblind", max(len(self.methods), 1))
        return dict(zip(self.methods, colors))

    @cached_property
    def focus_method(self) -> str | None:
        """The method of the per-sample figures: ``kd`` when present, else the first method."""
        return "kd" if "kd" in self.methods else (self.methods[0] if self.methods else None)

    def representative(self, pair: tuple[str, str, str], method: str, transform: str) -> pd.Series | None:
        """The run of the reported setting of (pair, method, transform) with the smallest seed."""
        sel = self.selected
        mask = (sel["method"] == method) & (sel["transform"] == transform)
        for col, value in zip(PAIR, pair):
            mask &= sel[col].astype(str) == value
        rows = sel[mask].sort_values("seed", kind="mergesort")
        return None if rows.empty else rows.iloc[0]

    def references(self, pair: tuple[str, str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(teacher runs, CE-baseline runs) of a pair."""
        r = self.runs
        dataset, teacher, student = pair
        teachers = r[(r["role"] == "teacher") & (r["dataset"] == dataset) & (r["teacher"].astype(str) == teacher)]
        baselines = r[(r["role"] == "baseline") & (r["dataset"] == dataset) & (r["student"].astype(str) == student)]
        return teachers, baselines

    def teacher_dir(self, pair: tuple[str, str, str]) -> str | None:
        """The teacher run folder of a pair: its collected teacher run, else the folder its students name."""
        teachers, _ = self.references(pair)
        if len(teachers):
            return str(teachers["run_dir"].iloc[0])
        named = self.distill.loc[pair_mask(self.distill, pair), "teacher_dir"].dropna()
        found = [str(locate_run_dir(self.results_dir, d)) for d in named.unique()]
        return next((d for d in found if logits_path(d, "test").exists()), None)

    def first_teacher(self) -> tuple[tuple[str, str, str], np.ndarray, np.ndarray] | None:
        """The first pair with its teacher's test logits and targets (what the primer and the per-sample claim
        figures draw), or ``None`` without a pair or a teacher run."""
        if not self.pairs:
            return None
        teacher_dir = self.teacher_dir(self.pairs[0])
        return None if teacher_dir is None else (self.pairs[0], *self.logits(teacher_dir))

    def _cached(self, kind: str, run_dir: str, load: Any) -> Any:
        key = (kind, str(run_dir))
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def stats(self, run_dir: str) -> pd.DataFrame:
        """Per-sample logit statistics of a run (``logit_stats.safetensors``, written by the tables step)."""
        path = Path(run_dir) / STATS_FILE

        def load() -> pd.DataFrame:
            if not path.exists():
                raise missing(path, layout.STATS)
            return read_run_stats(path)

        return self._cached("stats", run_dir, load)

    def logits(self, run_dir: str) -> tuple[np.ndarray, np.ndarray]:
        """Test logits ``(N, K)`` (float64) and targets ``(N,)`` of a run."""
        def load() -> tuple[np.ndarray, np.ndarray]:
            t = read_tensors(logits_path(run_dir))
            return t["logits"].double().numpy(), t["targets"].long().numpy()

        return self._cached("logits", run_dir, load)

    def history(self, run_dir: str) -> pd.DataFrame:
        return self._cached("history", run_dir, lambda: pd.read_csv(Path(run_dir) / "history.csv"))

    def record(self, run_dir: str) -> dict[str, Any]:
        """A run's ``spec.json``."""
        return self._cached("record", run_dir, lambda: read_json(Path(run_dir) / "spec.json"))

    def class_names(self, dataset: str, k: int) -> list[str]:
        return dataset_class_names(dataset, k)


def load_results(results_dir: str | Path, config: dict[str, Any]) -> Results:
    """Read ``runs.csv`` and the analysis tables the tables step wrote (a missing ``runs.csv`` is an error naming the
    step to run; a missing analysis table leaves its section saying so). Nothing is recomputed here."""
    results_dir = Path(results_dir)
    runs_csv = layout.table_path(results_dir, layout.RUNS_TABLE)
    if not runs_csv.exists():
        raise missing(runs_csv, layout.RUNS_TABLE)
    runs = layout.read_runs(runs_csv)
    tables: dict[str, pd.DataFrame] = {"runs": runs}
    for name in layout.ANALYSIS_TABLES:
        path = layout.table_path(results_dir, name)
        if path.exists():
            tables[name] = pd.read_csv(path)
    return Results(results_dir, config, runs, tables)


# ---------------------------------------------------------------------------------------------- drawing
@contextmanager
def plot_style() -> Any:
    """Seaborn's whitegrid style at a readable size, without touching the caller's global settings."""
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9), \
            mpl.rc_context({"axes.titleweight": "bold", "legend.frameon": False}):
        yield


def new_figure(width: float, height: float) -> MplFigure:
    """A matplotlib figure outside pyplot (no global figure registry, no GUI backend)."""
    return MplFigure(figsize=(width, height), layout="constrained")


def save(fig: MplFigure, out_dir: Path, name: str, title: str, caption: str) -> Figure:
    path = Path(out_dir) / f"{name}.png"
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    return Figure(name=name, path=path, title=title, caption=caption)
