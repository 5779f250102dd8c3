"""Helpers for tests that run the Snakemake workflow in a temporary copy of the repository's workflow files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
HAS_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist").exists() or bool(os.environ.get("LSKD_DATA"))
# Columns of runs.csv that legitimately differ between two executions of the same runs.
VOLATILE_RUN_COLUMNS = ["wall_seconds", "git_commit"]


def copy_workflow(dest: Path) -> Path:
    """Copy Snakefile, workflow/ and configs/ into ``dest`` (a fresh working directory) and return it."""
    for name in ("Snakefile", "workflow", "configs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def snakemake_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The test interpreter's environment, offline, with its console scripts (``lskd``) first on PATH."""
    env = dict(os.environ if base is None else base, HF_HUB_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def run_snakemake(workdir: Path, *args: str, timeout: int = 600,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m snakemake ARGS`` in ``workdir``. Put targets before ``--configfile`` (it takes all that follow)."""
    return subprocess.run([*SNAKEMAKE, *args], cwd=workdir, env=env or snakemake_env(), capture_output=True,
                          text=True, timeout=timeout)
