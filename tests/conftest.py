"""Fixtures shared by test modules."""

from __future__ import annotations

import time

import pytest
from pipeline import HAS_FASHION_MNIST, copy_workflow, run_snakemake


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke config run locally through Snakemake once per session (tests/workflow/test_workflow.py, test_slurm.py)."""
    if not HAS_FASHION_MNIST:
        pytest.skip("needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    work = copy_workflow(tmp_path_factory.mktemp("smoke"))
    start = time.perf_counter()
    out = run_snakemake(work, "--cores", "2", "--configfile", "configs/smoke.yaml")
    seconds = time.perf_counter() - start
    assert out.returncode == 0, out.stderr[-4000:]
    print(f"smoke pipeline: {seconds:.1f} s")
    return work


# The longest test files first: with `-n 2 --dist loadfile` (the README's test command) each file runs on one
# worker, and starting the long ones first keeps both workers busy to the end (longest-first scheduling).
LONGEST_FIRST = ("test_slurm.py", "test_workflow.py", "test_paper_track_e2e.py", "test_reliability.py",
                 "test_distributed.py", "test_tracks.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: in-file order is kept
