"""The README's account of a run, generated from that run's tables so that it cannot drift from them.

``lskd readme-block RESULTS --out report/default`` copies the run's tables that the account quotes
(:data:`KEPT_TABLES`) into ``--out`` with a ``run.json`` (commit, machine, wall time), and prints the account; with
``--readme README.md`` it also replaces the text between :data:`BEGIN` and :data:`END` in the README. The README's
test regenerates the account from the kept files and fails when the README says anything else.

The account (:func:`run_account`) states, from the tables alone: the commit and machine, the protocol and the
number of seeds, the teacher's and the CE-only student's accuracy, per method the z-score − raw difference of
last-epoch test top-1 with its Student-t 95% interval and verdict at the smallest effect of interest (the
headline's, :mod:`lskd.analysis.inference`), the raw arms' accuracies, how many runs the health gate excluded and
why (:mod:`lskd.analysis.health`), and the claims audit's tally (:mod:`lskd.claims`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from lskd.analysis.formatting import is_missing
from lskd.analysis.health import HEALTHY
from lskd.layout import table_path

#: The tables the account reads, kept beside the README's figure.
KEPT_TABLES: tuple[str, ...] = ("headline", "runs", "claims")
RUN_FILE = "run.json"
BEGIN = "<!-- lskd:default-run -->"
END = "<!-- /lskd:default-run -->"


def _pts(x: float) -> str:
    """``−8.82``: two decimals with a typographic minus."""
    return f"{x:+.2f}".replace("-", "−")


def _method(name: str) -> str:
    return name.upper() if len(name) <= 5 else name


def run_account(headline: pd.DataFrame, runs: pd.DataFrame, claims: pd.DataFrame, run: dict[str, Any]) -> str:
    """The README's paragraph on a run (see the module docstring), from its tables and ``run`` (``commit``,
    ``machine``, optional ``wall_seconds``)."""
    ls = headline[headline["transform"] == "zscore"].sort_values("method")
    raw = headline[headline["transform"] == "none"].set_index("method")
    first = headline.iloc[0]
    n = int(ls["n"].max())
    delta = float(ls["delta"].dropna().iloc[0]) if "delta" in ls and ls["delta"].notna().any() else float("nan")
    parts = []
    for _, r in ls.iterrows():
        if is_missing(r.get("diff_last_mean")):
            parts.append(f"{_method(r['method'])} {r['status']}")
            continue
        interval = "" if is_missing(r["diff_last_lo"]) else f" [{_pts(r['diff_last_lo'])}, {_pts(r['diff_last_hi'])}]"
        parts.append(f"{_method(r['method'])} {_pts(r['diff_last_mean'])}{interval} ({r['verdict']})")
    raw_acc = ", ".join(f"{_method(m)} {raw.loc[m, 'last_top1_mean']:.2f}" for m in ls["method"] if m in raw.index
                        and not is_missing(raw.loc[m, "last_top1_mean"]))
    distill = runs[runs["role"] == "distill"]
    bad = distill[distill["status"] != HEALTHY]["status"].value_counts()
    health = (f"{int(bad.sum())} of {len(distill)} distillation runs failed the health gate ("
              + ", ".join(f"{int(k)} {s}" for s, k in bad.items()) + ") and were left out"
              if len(bad) else f"all {len(distill)} distillation runs passed the health gate")
    tally = claims["verdict"].value_counts()
    claims_text = ", ".join(f"{int(tally[v])} {v}" for v in tally.index)
    wall = run.get("wall_seconds")
    took = f", {int(wall)} s" if wall else ""
    analysed = run.get("analysis_commit", run["commit"])
    tables = "its tables" if analysed[:7] == run["commit"][:7] else f"its tables (analysis at {analysed[:7]})"
    return (
        f"*The default run (`snakemake --cores all`, commit {run['commit'][:7]}, {run['machine']}{took}), generated "
        f"from {tables} by `lskd readme-block`: {first['protocol']} protocol, each arm's chosen setting retrained "
        f"with {n} fresh seeds and evaluated on the test set (teacher {first['teacher_top1_mean']:.2f}%, CE-only "
        f"student {first['baseline_last_top1_mean']:.2f} ± {first['baseline_last_top1_std']:.2f}%). z-score − raw, "
        f"last-epoch top-1 in points, Student-t 95% interval over the {n} seeds and the verdict at δ = "
        f"{delta:.2f} (Holm over the headline at α 0.025): {'; '.join(parts)}. Raw arms: {raw_acc}%. Run health: {health}. "
        f"Claims audit: {claims_text}. `report/default/` keeps the tables these numbers come from.*"
    )


def read_kept(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The kept tables and ``run.json`` of a folder written by :func:`keep_run`."""
    folder = Path(folder)
    tables = [pd.read_csv(folder / f"{name}.csv") for name in KEPT_TABLES]
    return (*tables, json.loads((folder / RUN_FILE).read_text()))


def run_facts(runs: pd.DataFrame, results: Path, wall_seconds: float | None) -> dict[str, Any]:
    """Commit and machine of a results folder (from a run's ``spec.json``: every run records both), and the commit
    of the checkout holding the results folder, whose pipeline wrote the tables (later than the runs' when only
    the analysis was rerun)."""
    from lskd.layout import SPEC, resolve_stored

    commits = sorted(set(runs["git_commit"].astype(str)))
    spec = json.loads((resolve_stored(results, runs["run_dir"].iloc[0]) / SPEC).read_text())
    hw = spec.get("hardware", {})
    machine = f"{hw.get('cpu_count', '?')} cores, {hw.get('cpu', 'unknown CPU')}" + (
        f", {len(hw['gpus'])} GPU" if hw.get("gpus") else ", no GPU")
    from lskd.engine.provenance import git_commit

    commit = commits[0] if len(commits) == 1 else "+".join(c[:7] for c in commits)
    analysed = git_commit(Path(results).resolve())  # the checkout whose pipeline wrote the results and tables
    return {"commit": commit, "machine": machine, "analysis_commit": commit if analysed == "unknown" else analysed,
            **({"wall_seconds": float(wall_seconds)} if wall_seconds else {})}


def keep_run(results: str | Path, out: str | Path, wall_seconds: float | None = None) -> str:
    """Copy :data:`KEPT_TABLES` of ``results`` into ``out`` with ``run.json``; returns the account."""
    results, out = Path(results), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in KEPT_TABLES:
        shutil.copyfile(table_path(results, name), out / f"{name}.csv")
    runs = pd.read_csv(out / "runs.csv")
    (out / RUN_FILE).write_text(json.dumps(run_facts(runs, results, wall_seconds), indent=2) + "\n")
    return run_account(*read_kept(out))


def replace_block(text: str, account: str) -> str:
    """``text`` with the part between :data:`BEGIN` and :data:`END` replaced by ``account``."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"the README has no {BEGIN} … {END} block to replace")
    head, rest = text.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{account}\n{END}{rest.split(END, 1)[1]}"


def block_of(text: str) -> str:
    """The account between :data:`BEGIN` and :data:`END` of ``text``."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


__all__ = ["BEGIN", "END", "KEPT_TABLES", "block_of", "keep_run", "read_kept", "replace_block", "run_account"]
