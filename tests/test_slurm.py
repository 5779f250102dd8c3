"""The smoke pipeline through a real single-node SLURM with the shipped profile (workflow/profiles/slurm).

The cluster (munged, slurmctld, slurmd; Debian's SLURM 22.05, no accounting daemon) is started from a private
folder by tests/slurm_cluster.py and stopped by PID afterwards. Without root or the Debian packages these tests
skip; with ``LSKD_REQUIRE_SLURM=1`` (set by .ci/run, which installs the packages) they fail instead.
"""

from __future__ import annotations

import os
import re
import time

import pandas as pd
import pytest
import torch
import yaml
from pipeline import HAS_FASHION_MNIST, VOLATILE_RUN_COLUMNS, copy_workflow, run_snakemake, snakemake_env
from slurm_cluster import SlurmCluster, missing_requirements

REASON = missing_requirements() or (None if HAS_FASHION_MNIST else "needs Fashion-MNIST")
if REASON and os.environ.get("LSKD_REQUIRE_SLURM") == "1":
    raise RuntimeError(f"LSKD_REQUIRE_SLURM=1 but the SLURM test cannot run: {REASON}")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=f"SLURM test: {REASON}")]

PROFILE = ["--workflow-profile", "workflow/profiles/slurm"]
# A local test cluster answers at once; the profile's 20 s first status check suits a busy real one.
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "2"]


@pytest.fixture(scope="module")
def cluster():
    with SlurmCluster() as c:
        yield c


def _sbatch_calls(log: str) -> dict[str, list[str]]:
    """The plugin's logged ``sbatch call: ...`` lines (``--verbose``), by rule (``--comment rule_<name>``)."""
    calls: dict[str, list[str]] = {}
    for line in log.splitlines():
        if line.startswith("sbatch call:"):
            rule = re.search(r"--comment rule_(\w+?)(_wildcards_\S*)?\s", line)
            calls.setdefault(rule.group(1) if rule else "?", []).append(line.removeprefix("sbatch call: "))
    return calls


@pytest.fixture(scope="module")
def slurm_smoke(cluster, tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("slurm"))
    start = time.perf_counter()
    out = run_snakemake(work, *PROFILE, *FAST_STATUS, "--verbose", "--configfile", "configs/smoke.yaml",
                        env=cluster.env(snakemake_env()), timeout=1800)
    seconds = time.perf_counter() - start
    log = out.stdout + out.stderr
    (work / "snakemake-slurm.log").write_text(log)
    assert out.returncode == 0, log[-4000:] + "\n" + cluster.logs()
    print(f"smoke pipeline through SLURM: {seconds:.1f} s")
    return work, log


def test_smoke_pipeline_through_slurm_matches_the_local_run(slurm_smoke, smoke_run):
    work, _ = slurm_smoke
    tables = sorted(p.name for p in (smoke_run / "results/tables").glob("*.csv"))
    assert tables == sorted(p.name for p in (work / "results/tables").glob("*.csv"))
    for name in tables:
        local = pd.read_csv(smoke_run / "results/tables" / name)
        slurm = pd.read_csv(work / "results/tables" / name)
        if name == "runs.csv":  # wall time and the code's commit are provenance, not results
            local, slurm = local.drop(columns=VOLATILE_RUN_COLUMNS), slurm.drop(columns=VOLATILE_RUN_COLUMNS)
            for df, root in ((local, smoke_run), (slurm, work)):  # absolute paths: relative to each working dir
                df["teacher_dir"] = df["teacher_dir"].str.removeprefix(f"{root}/")
        pd.testing.assert_frame_equal(slurm, local, check_exact=True, obj=name)
    assert (work / "report/report.html").stat().st_size > 10_000


def test_every_job_went_through_sbatch_with_the_profile_settings(slurm_smoke):
    work, log = slurm_smoke
    calls = _sbatch_calls(log)
    ran = set(re.findall(r"^rule (\w+):", log, re.MULTILINE))  # every job but the local target rule `all`
    assert {"check_data", "train_teacher", "train_baseline", "distill", "tables", "report"} <= ran
    assert set(calls) == ran
    for rule, lines in calls.items():
        for line in lines:  # device: cpu ⇒ no rule asks for a GPU, all go to the cpu partition
            assert " -p cpu " in line and "--gpus" not in line and "--gres" not in line, line
            assert "--requeue" in line and "--mem " in line and " -t " in line, line
    assert len(calls["distill"]) == 28
    # per-job sbatch logs where the profile puts them, kept after success
    assert len(list((work / "logs/slurm").glob("rule_*/**/*.log"))) >= sum(map(len, calls.values()))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the check relies on the job finding no GPU")
def test_a_gpu_rule_asks_slurm_for_a_gpu_and_lands_in_the_gpu_partition(cluster, tmp_path):
    """execution.device: cuda ⇒ training rules carry gpu=1, which the plugin turns into ``--gpus=1`` and the
    partition file into ``-p gpu``; CPU-only rules stay in ``cpu``. The test node's GPU is a count-only
    stand-in, so the job then stops with lskd's clear "no CUDA GPU" message instead of a torch traceback."""
    work = copy_workflow(tmp_path)
    config = yaml.safe_load((work / "configs/smoke.yaml").read_text())
    config["execution"]["device"] = "cuda"
    (work / "configs/gpu.yaml").write_text(yaml.safe_dump(config))
    teacher = "results/runs/teachers/cnn_w24d4/metrics.json"
    out = run_snakemake(work, teacher, *PROFILE, *FAST_STATUS, "--retries", "0", "--verbose",
                        "--configfile", "configs/gpu.yaml", env=cluster.env(snakemake_env()), timeout=600)
    calls = _sbatch_calls(out.stdout + out.stderr)
    assert out.returncode != 0, "no GPU here: the teacher job must fail"
    (gpu_call,) = calls["train_teacher"]
    (cpu_call,) = calls["check_data"]
    print("sbatch line of the GPU rule:", gpu_call.split(" --wrap=")[0])
    assert " -p gpu " in gpu_call and "--gpus=1" in gpu_call, gpu_call
    assert " -p cpu " in cpu_call and "--gpus" not in cpu_call, cpu_call
    assert "no CUDA GPU is visible" in (work / "logs/teachers/cnn_w24d4.log").read_text()
