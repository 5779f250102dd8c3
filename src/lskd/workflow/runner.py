"""Running the Snakemake workflow from Python: find the checkout, copy its workflow files into a fresh working
directory, and the environment a run gets (offline, this interpreter's console scripts first). ``lskd gpu-check``
and the tests that drive the pipeline use it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
#: What a working copy of the workflow needs from the checkout.
WORKFLOW_FILES = ("Snakefile", "workflow", "configs")


def find_repo(repo: Path | None = None) -> Path:
    """The repository root holding ``Snakefile``, ``workflow/`` and ``configs/``: ``repo``, else the checkout of the
    installed package (an editable install: ``src/lskd/workflow`` is three levels below the root)."""
    root = (repo or Path(__file__).resolve().parents[3]).resolve()
    missing = [name for name in WORKFLOW_FILES if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(f"{root} has no {', '.join(missing)}: give the repository root with --repo "
                                "(the package is not an editable install of a checkout)")
    return root


def copy_workflow(dest: Path, root: Path) -> Path:
    """Copy ``Snakefile``, ``workflow/`` and ``configs/`` of the checkout ``root`` into ``dest`` (a fresh working
    directory) and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = root / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def snakemake_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """This interpreter's environment, offline, with its console scripts (``lskd``) first on PATH."""
    env = dict(os.environ if base is None else base, HF_HUB_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env
