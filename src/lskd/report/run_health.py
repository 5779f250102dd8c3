"""The report's run-health part: how many runs each unhealthy status excluded, and a table of those runs.

Everything comes from ``runs.csv`` (``status`` and ``health_note``, written by the collect step with
:func:`lskd.analysis.health.run_health`); the prose is in the template (``report.md.j2``, Run health).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from markupsafe import Markup

from lskd.analysis.health import (
    CHANCE_SE,
    MEANINGS,
    SINGLE_CLASS_SHARE,
    STATUSES,
    configured_share,
    healthy_mask,
)
from lskd.report.figures_accuracy import column
from lskd.report.figures_common import Results, fmt_num, is_missing, method_label, transform_label

#: The run-health table's columns.
HEADER = ["pair", "method", "logits", "setting", "seed", "stage", "split", "status", "last top-1 (%)",
          "what flagged it"]
REFERENCE_STAGES = {"teacher": "teacher", "baseline": "CE baseline"}


def _stage(row: pd.Series, validation: bool) -> str:
    if row["role"] in REFERENCE_STAGES:
        return REFERENCE_STAGES[row["role"]]
    if row["stage"] == "confirm":
        return "stage 2"
    return "stage 1" if validation else "grid"


def _setting(row: pd.Series) -> str:
    if row["role"] != "distill":
        return ""
    t = "learned T" if is_missing(row["temperature"]) else f"T={fmt_num(row['temperature'])}"
    return f"{t}, w={fmt_num(row['kd_weight'])}"


def _pair(row: pd.Series) -> str:
    student = row["student"] if not is_missing(row["student"]) else ""
    return f"{row['teacher']} → {student}" if student else str(row["teacher"])


def _counts(statuses: pd.Series) -> list[dict[str, Any]]:
    """``[{"status", "n", "meaning"}]`` per unhealthy status present, in precedence order (unknown ones last)."""
    found = statuses[~healthy_mask(statuses)].value_counts()
    order = [s for s in STATUSES if s in found.index] + sorted(set(found.index) - set(STATUSES))
    return [{"status": s, "n": int(found[s]), "meaning": MEANINGS.get(s, "")} for s in order]


def health_table(runs: pd.DataFrame, validation: bool) -> Markup:
    """One row per unhealthy run (references first, then the distillation runs in ``runs.csv`` order)."""
    from lskd.report.render import md_table  # render imports this module

    runs = runs.assign(status=column(runs, "status"), stage=column(runs, "stage"),
                       split=column(runs, "split"), health_note=column(runs, "health_note", ""))
    bad = runs[~healthy_mask(runs["status"])]
    rows = [[_pair(r), method_label(r["method"]) if r["role"] == "distill" else "CE",
             transform_label(r["transform"]) if r["role"] == "distill" else "", _setting(r), int(r["seed"]),
             _stage(r, validation), r["split"], r["status"],
             "" if is_missing(r["last_top1"]) else f"{float(r['last_top1']):.2f}", r["health_note"]]
            for _, r in bad.iterrows()]
    return md_table(rows, HEADER)


def health_context(res: Results, validation: bool) -> dict[str, Any]:
    """The template's ``health``: the number of distillation runs, how many each unhealthy status excluded, the
    unhealthy teacher and CE-baseline runs, the thresholds the rules use, and the table of unhealthy runs."""
    runs = res.runs
    status = column(runs, "status")
    distill = runs["role"] == "distill"
    counts = _counts(status[distill])
    share = configured_share(res.config)
    return {
        "total": int(distill.sum()),
        "excluded": sum(c["n"] for c in counts),
        "counts": counts,
        "references": int((~healthy_mask(status) & ~distill).sum()),
        "any": bool((~healthy_mask(status)).any()),
        "single_class_pct": f"{100 * SINGLE_CLASS_SHARE:g}",
        "chance_se": f"{CHANCE_SE:g}",
        "not_converged_pct": None if share is None else f"{100 * share:g}",
        "table": health_table(runs, validation),
    }
