"""Fixtures shared by test modules."""

from __future__ import annotations

import time

import pytest
from pipeline import HAS_FASHION_MNIST, copy_workflow, run_snakemake


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke config run locally through Snakemake once per session (tests/test_workflow.py, test_slurm.py)."""
    if not HAS_FASHION_MNIST:
        pytest.skip("needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    work = copy_workflow(tmp_path_factory.mktemp("smoke"))
    start = time.perf_counter()
    out = run_snakemake(work, "--cores", "2", "--configfile", "configs/smoke.yaml")
    seconds = time.perf_counter() - start
    assert out.returncode == 0, out.stderr[-4000:]
    print(f"smoke pipeline: {seconds:.1f} s")
    return work
