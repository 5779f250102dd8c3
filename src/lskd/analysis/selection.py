"""Stage 1 → stage 2 of the validation protocol: choose each arm's setting on the validation split.

An *arm* is (teacher, student, method, transform); a *setting* is its (temperature, kd_weight). Stage 1 trains
every setting of the grid on the training set minus a held-out validation split and evaluates it there only
(``metrics.json`` with ``split: val``); the test set is never loaded. :func:`select_settings` then picks, per arm,

* among the **healthy** settings (every seed ``ok``: none diverged, single-class, at chance level or not
  converged, :mod:`lskd.analysis.health`),
* the one with the highest **mean last-epoch validation top-1** over its seeds;
* ties (equal means) go to the smaller temperature, then the smaller KD weight (a learned temperature first).

An arm without a healthy setting is kept as a row with status ``no healthy setting`` and no setting, so it is
named in the report rather than silently dropped; stage 2 retrains nothing for it. A configured cell that has not
finished is an error: choosing from an incomplete grid would not be the comparison the config declares.
Stage 2 retrains the chosen settings with fresh seeds and evaluates them on the test set (lskd.workflow.grid).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from lskd.analysis.health import DIVERGED, HEALTHY, NOT_CONVERGED_SHARE, healthy_mask, run_health
from lskd.engine.io import read_json
from lskd.layout import METRICS

ARM = ["teacher", "student", "method", "transform"]
SETTING = ["temperature", "kd_weight"]
RULE = ("highest mean last-epoch validation top-1 over seeds among settings whose every seed is healthy; "
        "ties to the smaller temperature, then the smaller KD weight")
NO_HEALTHY = "no healthy setting"
SELECTION_COLUMNS = [*ARM, *SETTING, "status", "val_top1_mean", "val_top1_std", "n_seeds", "n_settings",
                     "n_healthy_settings", "n_unhealthy", "unhealthy", "rule"]


class SelectionError(ValueError):
    """The stage-1 results cannot be selected from (a cell missing, or a run not evaluated on validation)."""


def _key(x: Any) -> tuple[int, float]:
    """Sort key of a temperature or weight: missing (learned) first, then by value."""
    return (0, 0.0) if x is None or (isinstance(x, float) and math.isnan(x)) else (1, float(x))


def select_settings(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per arm of the stage-1 ``runs`` (columns ``ARM``, ``SETTING``, ``seed``, ``split``, ``status``,
    ``last_top1``): the chosen setting, its mean and std validation top-1, and the counts (see the module
    docstring). Raises :class:`SelectionError` if any run was evaluated on another split than ``val``."""
    wrong = runs[runs["split"] != "val"]
    if len(wrong):
        raise SelectionError(f"selection reads validation metrics only, but {len(wrong)} run(s) were evaluated on "
                             f"{', '.join(sorted(set(wrong['split'])))} (e.g. {wrong.iloc[0].to_dict()})")
    rows = []
    for arm, g in runs.groupby(ARM, dropna=False, sort=False):
        candidates, unhealthy = [], g[~healthy_mask(g["status"])]
        settings = list(g.groupby(SETTING, dropna=False, sort=False))
        for (t, w), sub in settings:
            t = None if pd.isna(t) else float(t)
            if healthy_mask(sub["status"]).all():
                candidates.append((-float(sub["last_top1"].mean()), _key(t), _key(w), t, float(w), sub))
        row: dict[str, Any] = dict(zip(ARM, arm))
        row.update(n_settings=len(settings), n_healthy_settings=len(candidates), n_unhealthy=len(unhealthy),
                   unhealthy="; ".join(f"T {r.temperature} w {r.kd_weight} seed {r.seed}: {r.status}"
                                       for r in unhealthy.itertuples()), rule=RULE)
        if candidates:
            candidates.sort(key=lambda c: c[:3])
            _, _, _, t, w, sub = candidates[0]
            row.update(temperature=t, kd_weight=w, status=HEALTHY, val_top1_mean=float(sub["last_top1"].mean()),
                       val_top1_std=float(sub["last_top1"].std(ddof=1)) if len(sub) > 1 else math.nan,
                       n_seeds=len(sub))
        else:
            row.update(temperature=None, kd_weight=None, status=NO_HEALTHY, val_top1_mean=math.nan,
                       val_top1_std=math.nan, n_seeds=0)
        rows.append(row)
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


def read_stage1(cells: Iterable[Any], results: str | Path, *,
                not_converged_share: float | None = NOT_CONVERGED_SHARE) -> pd.DataFrame:
    """The stage-1 table :func:`select_settings` takes, read from each cell's ``metrics.json``, its history and
    its validation logits for the health check (the cell's identity comes from the config, and nothing of the
    test set is read).
    ``cells``: :class:`lskd.workflow.grid.Cell` objects. Raises :class:`SelectionError` naming a missing cell."""
    rows = []
    for cell in cells:
        path = Path(results) / cell.path / METRICS
        if not path.exists():
            raise SelectionError(f"stage-1 cell {cell.path} has not finished ({path} missing): run the sweep first "
                                 "(snakemake --cores all runs it before the selection)")
        metrics = read_json(path)
        status = run_health(path.parent, metrics, not_converged_share=not_converged_share).status
        top1 = math.nan if status == DIVERGED else float(metrics["last"]["top1"])
        rows.append({"teacher": cell.teacher, "student": cell.student, "method": cell.method,
                     "transform": cell.transform, "temperature": cell.temperature, "kd_weight": cell.kd_weight,
                     "seed": cell.seed, "split": metrics.get("split", "test"), "status": status, "last_top1": top1})
    return pd.DataFrame(rows, columns=[*ARM, *SETTING, "seed", "split", "status", "last_top1"])


def read_selection(path: str | Path) -> pd.DataFrame:
    """A selection table written by ``lskd select`` (empty temperature = learned, or no setting)."""
    df = pd.read_csv(path)
    return df.astype({"temperature": "float64", "kd_weight": "float64"})
