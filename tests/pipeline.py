"""Helpers for tests that run the Snakemake workflow in a temporary copy of the repository's workflow files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lskd.analysis.diagnostics import COST_COLUMNS
from lskd.workflow.runner import SNAKEMAKE, snakemake_env  # noqa: F401  (the tests import them from here)
from lskd.workflow.runner import copy_workflow as copy_workflow_of

ROOT = Path(__file__).resolve().parents[1]
HAS_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist").exists() or bool(os.environ.get("LSKD_DATA"))
# Columns of runs.csv that legitimately differ between two executions of the same runs.
VOLATILE_RUN_COLUMNS = ["wall_seconds", "git_commit"]
#: Per table, the columns that are provenance (wall time, commit), not results: they differ between two executions.
VOLATILE_COLUMNS = {"runs.csv": VOLATILE_RUN_COLUMNS, "diagnostics.csv": list(COST_COLUMNS)}


def copy_workflow(dest: Path) -> Path:
    """Copy Snakefile, workflow/ and configs/ into ``dest`` (a fresh working directory) and return it."""
    return copy_workflow_of(dest, ROOT)


def run_snakemake(workdir: Path, *args: str, timeout: int = 600,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m snakemake ARGS`` in ``workdir``. Put targets before ``--configfile`` (it takes all that follow)."""
    return subprocess.run([*SNAKEMAKE, *args], cwd=workdir, env=env or snakemake_env(), capture_output=True,
                          text=True, timeout=timeout)
