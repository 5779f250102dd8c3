"""The smoke pipeline through a real single-node SLURM with the shipped profile (workflow/profiles/slurm).

The cluster (munged, slurmctld, slurmd; Debian's SLURM 22.05, no accounting daemon) is started from a private
folder by tests/slurm_cluster.py and stopped by PID afterwards. Without root or the Debian packages these tests
skip; with ``LSKD_REQUIRE_SLURM=1`` (set by .ci/run, which installs the packages) they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time

import pandas as pd
import pytest
import torch
import yaml
from pipeline import HAS_FASHION_MNIST, SNAKEMAKE, VOLATILE_COLUMNS, copy_workflow, run_snakemake, snakemake_env
from slurm_cluster import SlurmCluster, missing_requirements

from lskd.engine.checkpoint import MANIFEST

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


# ------------------------------------------------------------------ preemption: SIGTERM, retry, resume mid-epoch
PREEMPT_CONFIG = {
    "title": "preemption test", "results": "results", "report": "report",
    "dataset": {"name": "fashion_mnist", "train_subset": 2000, "test_subset": 300},
    "execution": {"device": "cpu", "threads": 1, "group_size": 1},
    "teachers": {"cnn_w24d4": {"model": "cnn_w24d4", "train_subset": 1000,
                               "optim": {"epochs": 1, "batch_size": 128, "lr": 0.05, "schedule": "cosine"}}},
    "student_optim": {"epochs": 8, "batch_size": 32, "lr": 0.05, "schedule": "cosine"},
    "pairs": [{"teacher": "cnn_w24d4", "student": "cnn_w8d3"}],
    "grid": {"methods": ["kd"], "transforms": ["zscore"], "temperatures": [2], "seeds": [0]},
    "methods": {"kd": {"hparams": {"ce_weight": 0.1, "kd_weight": 9}}},
}
PREEMPT_CELL = "results/runs/cnn_w24d4__cnn_w8d3/kd/zscore/T2_w9/seed0"


def _squeue(cluster) -> list[tuple[str, str]]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %k"], env=cluster.env(), capture_output=True, text=True,
                         timeout=30)
    return [tuple(line.split(" ", 1)) for line in out.stdout.splitlines() if " " in line]


GPU_TARGET = "results/runs/teachers/cnn_w24d4/metrics.json"


class Background:
    """Jobs started at the beginning of the module so that their waits overlap the SLURM smoke run's (the
    plugin's status polling, not compute, is most of each): the local run the smoke is compared with, a 2-GPU
    submission, and the preemption scenario (in a thread: start, wait for the first epoch, SIGTERM, finish)."""

    def __init__(self, cluster, root) -> None:
        env = cluster.env(snakemake_env())
        self.cluster = cluster
        self.local = copy_workflow(_mkdir(root / "local-kd"))
        _kd_smoke(self.local)
        self.local_proc = _popen(self.local, "--cores", "2", "--configfile", "configs/slurm.yaml")

        self.gpu = copy_workflow(_mkdir(root / "gpu"))
        config = yaml.safe_load((self.gpu / "configs/smoke.yaml").read_text())
        config["execution"].update(device="cuda", processes_per_job=2)
        (self.gpu / "configs/gpu.yaml").write_text(yaml.safe_dump(config))
        self.gpu_proc = _popen(self.gpu, GPU_TARGET, *PROFILE, *FAST_STATUS, "--retries", "0", "--verbose",
                               "--configfile", "configs/gpu.yaml", env=env)

        self.preempt = copy_workflow(_mkdir(root / "preempt"))
        (self.preempt / "configs/preempt.yaml").write_text(yaml.safe_dump(PREEMPT_CONFIG, sort_keys=False))
        self.preempt_result: dict = {}
        self.preempt_thread = threading.Thread(target=self._preempt, args=(env,), daemon=True)
        self.preempt_thread.start()

    def _preempt(self, env) -> None:
        out = self.preempt_result
        try:
            proc = _popen(self.preempt, f"{PREEMPT_CELL}/metrics.json", *PROFILE, *FAST_STATUS, "--verbose",
                          "--configfile", "configs/preempt.yaml", env=env)
            manifest, deadline = self.preempt / PREEMPT_CELL / MANIFEST, time.time() + 900
            while not manifest.exists():  # the distillation job has finished its first epoch
                if proc.poll() is not None or time.time() > deadline:
                    out["error"] = "the job ended before it could be signalled"
                    break
                time.sleep(0.2)
            else:
                jobs = [i for i, comment in _squeue(self.cluster) if comment.startswith("rule_distill_wildcards")]
                out["jobs"] = jobs
                for job in jobs:
                    subprocess.run(["scancel", "--signal=TERM", job], env=self.cluster.env(), check=True, timeout=30)
            out["log"], _ = proc.communicate(timeout=1200)
            out["returncode"] = proc.returncode
        except Exception as err:  # noqa: BLE001  (reported by the test)
            out["error"] = repr(err)


def _mkdir(path):
    path.mkdir(parents=True)
    return path


def _popen(work, *args, env=None) -> subprocess.Popen:
    return subprocess.Popen([*SNAKEMAKE, *args], cwd=work, env=env or snakemake_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def background(cluster, tmp_path_factory):
    return Background(cluster, tmp_path_factory.mktemp("background"))


# What goes through SLURM: the smoke config's KD arms (its pipeline, in fewer jobs). The same config runs locally:
# seeded runs do not depend on where they were scheduled, so every table must match bit for bit. (The per-cell
# `distill` rule goes through SLURM in the preemption test below.)
def _kd_smoke(work, group_size: int = 8) -> None:
    config = yaml.safe_load((work / "configs/smoke.yaml").read_text())
    config["grid"]["methods"] = ["kd"]
    config["execution"]["group_size"] = group_size
    (work / "configs/slurm.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def local_kd_smoke(background):
    log, _ = background.local_proc.communicate(timeout=1800)
    assert background.local_proc.returncode == 0, log[-4000:]
    return background.local


@pytest.fixture(scope="module")
def slurm_smoke(cluster, background, tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("slurm"))
    _kd_smoke(work)
    start = time.perf_counter()
    out = run_snakemake(work, *PROFILE, *FAST_STATUS, "--verbose", "--configfile", "configs/slurm.yaml",
                        env=cluster.env(snakemake_env()), timeout=1800)
    seconds = time.perf_counter() - start
    log = out.stdout + out.stderr
    (work / "snakemake-slurm.log").write_text(log)
    assert out.returncode == 0, log[-4000:] + "\n" + cluster.logs()
    print(f"smoke pipeline (KD arms) through SLURM: {seconds:.1f} s")
    return work, log


def test_smoke_pipeline_through_slurm_matches_the_local_run(slurm_smoke, local_kd_smoke):
    work, _ = slurm_smoke
    local_root = local_kd_smoke
    tables = sorted(p.name for p in (local_root / "results/tables").glob("*.csv"))
    assert "selection.csv" in tables and tables == sorted(p.name for p in (work / "results/tables").glob("*.csv"))
    for name in tables:
        local = pd.read_csv(local_root / "results/tables" / name)
        slurm = pd.read_csv(work / "results/tables" / name)
        volatile = VOLATILE_COLUMNS.get(name, [])  # wall time and the code's commit are provenance, not results
        local, slurm = local.drop(columns=volatile), slurm.drop(columns=volatile)
        if name == "runs.csv":
            for df, root in ((local, local_root), (slurm, work)):  # absolute paths: relative to each working dir
                df["teacher_dir"] = df["teacher_dir"].str.removeprefix(f"{root}/")
        pd.testing.assert_frame_equal(slurm, local, check_exact=True, obj=name)
    assert (work / "report/report.html").stat().st_size > 10_000


def test_every_job_went_through_sbatch_with_the_profile_settings(slurm_smoke):
    work, log = slurm_smoke
    calls = _sbatch_calls(log)
    ran = set(re.findall(r"^(?:rule|checkpoint) (\w+):", log, re.MULTILINE))  # every job but the target `all`
    assert {"check_data", "train_teacher", "train_baseline", "distill_group", "select", "confirm_group", "tables",
            "report"} <= ran
    assert set(calls) == ran
    for rule, lines in calls.items():
        for line in lines:  # device: cpu ⇒ no rule asks for a GPU, all go to the cpu partition
            assert " -p cpu " in line and "--gpus" not in line and "--gres" not in line, line
            assert "--requeue" in line and "--mem " in line and " -t " in line, line
            assert "--signal=TERM@120" in line, line  # the SIGTERM before the time limit
    smoke = yaml.safe_load((work / "configs/slurm.yaml").read_text())
    grid, protocol = smoke["grid"], smoke["protocol"]
    assert len(calls["distill_group"]) == len(grid["seeds"])  # stage 1: KD's 2 x 2 cells, one group per seed
    assert len(calls["confirm_group"]) == len(protocol["confirm_seeds"])  # stage 2: both arms' choices per seed
    # per-job sbatch logs where the profile puts them, kept after success
    assert len(list((work / "logs/slurm").glob("rule_*/**/*.log"))) >= sum(map(len, calls.values()))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the check relies on the job finding no GPU")
def test_a_two_gpu_rule_asks_slurm_for_two_gpus_and_lands_in_the_gpu_partition(background):
    """execution.device: cuda with processes_per_job: 2 ⇒ training rules carry gpu=2, which the plugin turns into
    ``--gpus=2`` and the partition file into ``-p gpu``, and run under torchrun (one task, two processes);
    CPU-only rules stay in ``cpu``. The test node's GPUs are count-only stand-ins, so the job then stops with
    lskd's clear "no CUDA GPU" message instead of a torch traceback."""
    log, _ = background.gpu_proc.communicate(timeout=1200)
    calls = _sbatch_calls(log)
    assert background.gpu_proc.returncode != 0, "no GPU here: the teacher job must fail"
    (gpu_call,) = calls["train_teacher"]
    (cpu_call,) = calls["check_data"]
    print("sbatch line of the 2-GPU rule:", gpu_call.split(" --wrap=")[0])
    # one task (SLURM's default: no --ntasks-per-gpu) holding both processes' threads
    assert " -p gpu " in gpu_call and "--gpus=2" in gpu_call and "ntasks" not in gpu_call, gpu_call
    assert "--cpus-per-task=2" in gpu_call, gpu_call
    assert " -p cpu " in cpu_call and "--gpus" not in cpu_call, cpu_call
    teacher_log = (background.gpu / "logs/teachers/cnn_w24d4.log").read_text()
    assert "no CUDA GPU is visible" in teacher_log and "torch.distributed" in teacher_log, teacher_log[-2000:]


def test_a_sigtermed_job_is_retried_and_resumes_mid_epoch_to_the_same_result(background, tmp_path, monkeypatch):
    """SIGTERM to a running distillation job's processes, as SLURM sends it before the time limit (the profile's
    `--signal=TERM@120`; `scancel --signal=TERM` does the same now): lskd writes a checkpoint at its current step
    and exits 143, the profile's retries submit the job again, and the new job resumes mid-epoch; its results
    equal the same spec trained here without interruption."""
    from lskd.engine import RunSpec, train_one

    background.preempt_thread.join(timeout=1500)
    result, work = background.preempt_result, background.preempt
    assert "error" not in result, result.get("error")
    log = result["log"]
    (work / "snakemake-slurm.log").write_text(log)
    assert len(result["jobs"]) == 1, result["jobs"]
    assert result["returncode"] == 0, log[-4000:] + "\n" + background.cluster.logs()
    assert len(_sbatch_calls(log)["distill"]) == 2, "the SIGTERMed job was not submitted again"
    rerun = (work / "logs/runs/cnn_w24d4__cnn_w8d3/kd/zscore/T2_w9/seed0.log").read_text()
    assert "resuming in epoch" in rerun, rerun[-2000:]
    monkeypatch.chdir(work)  # the spec names its teacher relative to the working directory
    spec = RunSpec.from_dict(json.loads((work / PREEMPT_CELL / "spec.json").read_text())["spec"])
    train_one(spec, tmp_path / "uninterrupted", progress=False)
    for name in ("metrics.json", "model.safetensors", "test_logits.safetensors"):
        assert (work / PREEMPT_CELL / name).read_bytes() == (tmp_path / "uninterrupted" / name).read_bytes(), name
