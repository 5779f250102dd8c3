"""What the official code ran, as data, and how a config's cells compare with it.

``lskd/data/paper/official_settings.csv`` (CIFAR-100, 14 pairs × KD/DKD/CTKD/MLKD × with and without LS) and
``official_settings_imagenet.csv`` hold, per (teacher, student, method, LS), the setting of the official log or
config (see ``SOURCE.md`` there for the sources). :func:`official_settings` reads them with lskd's names;
:func:`expected_settings` turns one row into the cell settings it implies; :func:`compare_cells` finds, for every
row of the pairs a config runs, the cells that run exactly that setting, or says what differs. The paper-track
tests, ``lskd cells`` and the report's paper comparison all use these functions, so they read one source.

Conventions (from the official code, ``shared/reference/official_settings.md``):

* ``tau_or_T`` is the base temperature τ with LS and T without. CTKD learns its temperature: its LS rows' τ is
  the learned temperature's floor (``t_min``), as the official logs sit at T ≈ 2.0.
* DKD's ``alpha`` / ``beta`` are the values *before* the official code multiplies both by the KD weight under LS
  (lskd's DKD does the same multiplication), so they compare with the config's hyper-parameters directly.
* A value written ``0.05(log,2dp)`` was read off a log with two decimals; ``[150,180](log,...)`` lists only the
  decay steps the log shows, so the config's milestones must start with them.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from importlib.resources import files
from typing import Any

import pandas as pd

from lskd.analysis.formatting import is_missing

FILES = {"cifar100": "official_settings.csv", "imagenet": "official_settings_imagenet.csv"}
#: The official repositories' model names → lskd's pair names.
NAMES = {"ShuffleV2": "shufflenet_v2", "MobileNetV2": "mobilenet_v2", "ResNet50": "resnet50"}
KEY = ["teacher", "student", "method", "transform"]
#: Row fields → cell settings, in the order ``lskd cells`` and the report show them.
HPARAM_FIELDS = ("temperature", "kd_weight", "ce_weight", "alpha", "beta", "t_min")
OPTIM_FIELDS = ("epochs", "lr", "batch_size", "milestones", "gamma")


def _number(text: Any) -> float | None:
    """``"0.05(log,2dp)"`` → 0.05; empty → None."""
    if is_missing(text):
        return None
    match = re.match(r"\s*([-+0-9.eE]+)", str(text))
    return float(match.group(1)) if match else None


def _decay(text: Any) -> tuple[tuple[int, ...] | None, float | None, bool]:
    """``"[150,180,210]x0.1"`` → ((150, 180, 210), 0.1, complete); a log-read list is a prefix (incomplete)."""
    if is_missing(text) or not str(text).strip():
        return None, None, True
    match = re.match(r"\[([0-9, ]*)\](?:x([0-9.]+))?(.*)", str(text))
    if not match:
        return None, None, True
    steps = tuple(int(s) for s in match.group(1).split(",") if s.strip())
    gamma = float(match.group(2)) if match.group(2) else None
    return steps, gamma, "(log" not in match.group(3)


def _accuracy(text: Any) -> tuple[float | None, int | None, str]:
    """``"76.47@228|76.65@231"`` → (76.65, 231, the text): the best run of a log that holds several."""
    if is_missing(text) or not str(text).strip():
        return None, None, ""
    runs = [part.split("@") for part in str(text).split("|")]
    acc, epoch = max(((float(a), int(e)) for a, e in runs), key=lambda r: r[0])
    return acc, epoch, str(text)


@lru_cache(maxsize=None)
def official_settings(dataset: str = "cifar100") -> pd.DataFrame:
    """The official settings of ``dataset`` with lskd names: :data:`KEY`, then ``temperature`` (τ / T; NaN when
    the method learns it or no source states it), ``kd_weight``, ``ce_weight``, ``alpha``, ``beta``, ``epochs``,
    ``lr``, ``batch_size``, ``milestones`` (tuple or None), ``gamma``, ``milestones_complete``, ``log_best``,
    ``log_best_epoch``, ``log_last``, ``log_runs`` (the raw text), ``source``."""
    if dataset not in FILES:
        return pd.DataFrame(columns=[*KEY, "source"])
    with files("lskd").joinpath("data", "paper", FILES[dataset]).open("r", encoding="utf-8") as fh:
        raw = pd.read_csv(fh, dtype=str, keep_default_na=False)
    rows = []
    for r in raw.to_dict("records"):
        milestones, gamma, complete = _decay(r["lr_decay"])
        best, best_epoch, runs = _accuracy(r["log_best_acc"])
        last, _, _ = _accuracy(r["log_last_acc"])
        rows.append({
            "teacher": NAMES.get(r["teacher"], r["teacher"]), "student": NAMES.get(r["student"], r["student"]),
            "method": r["method"].lower(), "transform": "zscore" if r["ls"] == "1" else "none",
            "temperature": _number(r["tau_or_T"]), "kd_weight": _number(r["kd_weight"]),
            "ce_weight": _number(r["ce_weight"]), "alpha": _number(r["alpha"]), "beta": _number(r["beta"]),
            "epochs": _number(r["epochs"]), "lr": _number(r["lr"]), "batch_size": _number(r["batch"]),
            "milestones": milestones, "gamma": gamma, "milestones_complete": complete,
            "log_best": best, "log_best_epoch": best_epoch, "log_last": last, "log_runs": runs,
            "source": r["source_path"],
        })
    return pd.DataFrame(rows)


def expected_settings(row: dict[str, Any], learned_temperature: bool = False) -> dict[str, Any]:
    """The cell settings an official row states (only those it states): hyper-parameters under their lskd names
    (``temperature``, ``kd_weight``, ``ce_weight``, ``alpha``, ``beta``; ``t_min`` = τ for a learned temperature
    under LS) and solver keys (``epochs``, ``lr``, ``batch_size``, ``milestones``, ``gamma``). DKD has no KD
    weight without LS (lskd's is 1, a no-op)."""
    out: dict[str, Any] = {}
    tau = row.get("temperature")
    if tau is not None and not is_missing(tau):
        if learned_temperature:
            if row["transform"] != "none":
                out["t_min"] = float(tau)
        else:
            out["temperature"] = float(tau)
    for key in ("kd_weight", "ce_weight", "alpha", "beta", "epochs", "lr", "batch_size", "gamma"):
        value = row.get(key)
        if value is not None and not is_missing(value):
            out[key] = int(value) if key in ("epochs", "batch_size") else float(value)
    if row.get("milestones"):
        out["milestones"] = tuple(row["milestones"])
    return out


def cell_settings(experiment: Any, cell: Any) -> dict[str, Any]:
    """A cell's resolved settings as the config states them (DKD's β before the LS scaling): every method
    hyper-parameter (library defaults filled in), ``temperature`` and ``kd_weight`` of the cell, and the solver."""
    from lskd.losses import method_hparams

    pair = experiment.pair_config(cell.teacher, cell.student)
    hparams = {k: v for k, v in method_hparams(cell.method).items() if k not in ("transform", "std", "eps")}
    hparams.update({k: v for k, v in experiment.hparams(pair, cell.method, cell.transform).items() if k != "transform"})
    hparams["kd_weight"] = cell.kd_weight
    if cell.temperature is not None:
        hparams["temperature"] = cell.temperature
    else:
        hparams.pop("temperature", None)
    optim = experiment.cell_optim(cell)
    return {**hparams, **{k: optim[k] for k in OPTIM_FIELDS if k in optim}}


def differences(expected: dict[str, Any], actual: dict[str, Any], milestones_complete: bool = True) -> list[str]:
    """``"lr 0.05 (official 0.025)"`` for every stated field the cell does not match (milestones read off a log
    need only start with the logged steps)."""
    out = []
    for key, want in expected.items():
        have = actual.get(key)
        if key == "milestones":
            have_t = tuple(have or ())
            ok = have_t == want if milestones_complete else have_t[:len(want)] == want
        elif have is None:
            ok = False
        else:
            ok = math.isclose(float(have), float(want), rel_tol=1e-9, abs_tol=1e-12)
        if not ok:
            out.append(f"{key} {_show(have)} (official {_show(want)})")
    return out


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    return f"{float(value):g}" if isinstance(value, (int, float)) else str(value)


def _official_rows(experiment: Any) -> list[tuple[dict[str, Any], str]]:
    """Official rows of the pairs and methods a config runs, with the config's teacher id of each."""
    from lskd.analysis.paper import to_paper_model

    table = official_settings(experiment.config["dataset"]["name"])
    if table.empty:
        return []
    grid = experiment.config["grid"]
    out = []
    for pair in experiment.config["pairs"]:
        teacher = to_paper_model(experiment.config["teachers"][pair["teacher"]]["model"])
        student = to_paper_model(pair["student"])
        mine = table[(table.teacher == teacher) & (table.student == student)]
        for row in mine.to_dict("records"):
            if row["method"] in grid["methods"] and row["transform"] in grid["transforms"]:
                out.append((row, pair["teacher"]))
    return out


def _scored(experiment: Any):
    """Per official row of the config's pairs: (row, teacher id, stated settings, [(differences, cell)]) over
    the cells of that pair, method and transform."""
    by_group: dict[tuple[str, str, str, str], list[Any]] = {}
    for cell in experiment.cells():
        by_group.setdefault((cell.teacher, cell.student, cell.method, cell.transform), []).append(cell)
    for row, teacher_id in _official_rows(experiment):
        expected = expected_settings(row, experiment.learned(row["method"]))
        cells = by_group.get((teacher_id, row["student"], row["method"], row["transform"]), [])
        yield row, teacher_id, expected, [
            (differences(expected, cell_settings(experiment, c), row["milestones_complete"]), c) for c in cells]


def _label(cell: Any) -> str:
    return cell.path.split("/")[-2]


def compare_cells(experiment: Any) -> pd.DataFrame:
    """One row per official setting of the config's pairs: :data:`KEY` (teacher = the config's teacher id),
    ``official`` (the stated settings as text), ``status`` (``exact``: cells run exactly that setting;
    ``deviates``: the closest cell differs, see ``deviation``; ``unstated``: no source states the row's
    temperature or KD weight, so no cell is its point, but cells agree with all it states, e.g. the solver),
    ``cells`` (the matching cells' ``T…_w…`` labels), ``seeds``, ``deviation``, ``closest`` (labels of the
    cells that differ from the official setting in the fewest stated fields: an exact row's cells, a deviating
    row's nearest; empty when the config has no cell of that pair, method and transform),
    ``closest_differences`` (that number of fields, NaN without a cell), ``log_best``, ``log_best_epoch``,
    ``log_last``, ``log_runs``, ``source``."""
    rows = []
    for row, teacher_id, expected, scored in _scored(experiment):
        stated = any(key in expected for key in ("temperature", "t_min", "kd_weight"))
        consistent = [c for diff, c in scored if not diff]
        exact = consistent if stated else []
        fewest = min((len(diff) for diff, _ in scored), default=None)
        closest = next((diff for diff, _ in scored if len(diff) == fewest), ["no cell of this pair, method and transform"])
        rows.append({
            "teacher": teacher_id, "student": row["student"], "method": row["method"], "transform": row["transform"],
            "official": ", ".join(f"{k} {_show(v)}" for k, v in expected.items()) or "(no setting stated)",
            "status": "exact" if exact else ("unstated" if consistent else "deviates"),
            "cells": " ".join(sorted({_label(c) for c in exact})),
            "seeds": len({c.seed for c in exact}),
            "deviation": "" if consistent else "; ".join(closest),
            "closest": " ".join(sorted({_label(c) for diff, c in scored if len(diff) == fewest})),
            "closest_differences": math.nan if fewest is None else fewest,
            **{k: row[k] for k in ("log_best", "log_best_epoch", "log_last", "log_runs", "source")},
        })
    return pd.DataFrame(rows, columns=[*KEY, "official", "status", "cells", "seeds", "deviation", "closest",
                                       "closest_differences", "log_best", "log_best_epoch", "log_last", "log_runs",
                                       "source"])
