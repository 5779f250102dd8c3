"""``lskd cells CONFIG``: every cell of a config with its resolved settings, before any GPU hour is spent.

One row per cell: ``teacher, student, method, transform, temperature, kd_weight, seed``, then one column per
method hyper-parameter under its own name (as the config states it: DKD's ``beta`` before the LS scaling; blank
where a method does not take it), the solver (``epochs, lr, batch_size, milestones``), whether the cell runs an
official setting exactly (``official``: the settings of ``lskd.analysis.official``), and its run folder.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: The leading columns, in order; method hyper-parameters and the solver follow.
CELL_COLUMNS = ["teacher", "student", "method", "transform", "temperature", "kd_weight", "seed"]
SOLVER_COLUMNS = ["epochs", "lr", "batch_size", "milestones"]


def cells_table(config: dict[str, Any]) -> pd.DataFrame:
    """The cells of a validated config (see the module docstring)."""
    from lskd.analysis.official import cell_settings, compare_cells
    from lskd.workflow.grid import Experiment

    exp = Experiment(config)
    official = compare_cells(exp)
    exact = {(r.teacher, r.student, r.method, r.transform, label)
             for r in official[official.status == "exact"].itertuples() for label in r.cells.split()}
    rows, hparam_names = [], []
    for cell in exp.cells():
        settings = cell_settings(exp, cell)
        optim = exp.cell_optim(cell)
        hparams = {k: v for k, v in settings.items() if k not in ("temperature", "kd_weight", *SOLVER_COLUMNS, "gamma")}
        hparam_names.extend(k for k in hparams if k not in hparam_names)
        label = cell.path.split("/")[-2]
        rows.append({
            "teacher": cell.teacher, "student": cell.student, "method": cell.method, "transform": cell.transform,
            "temperature": cell.temperature_label, "kd_weight": cell.kd_weight, "seed": cell.seed, **hparams,
            "epochs": optim.get("epochs"), "lr": optim.get("lr"), "batch_size": optim.get("batch_size"),
            "milestones": " ".join(map(str, optim.get("milestones", []))),
            "official": (cell.teacher, cell.student, cell.method, cell.transform, label) in exact,
            "path": cell.path,
        })
    columns = [*CELL_COLUMNS, *hparam_names, *SOLVER_COLUMNS, "official", "path"]
    return pd.DataFrame(rows).reindex(columns=columns)
