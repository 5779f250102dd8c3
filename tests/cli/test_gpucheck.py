"""``lskd gpu-check`` (lskd.gpucheck) on the CPU: the quick throughput table and its extrapolations, the refusal of
CUDA without a GPU, the skipped DDP part, the smoke part's Snakemake call, and the DDP command under gloo."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import lskd.gpucheck as gpucheck
from lskd.cli import main as lskd_main
from lskd.engine.io import read_json

HAS_GPU = torch.cuda.is_available()


def _check(out: Path, *args: str) -> int:
    return lskd_main(["gpu-check", "--device", "cpu", "--quick", "--out", str(out), *args])


@pytest.mark.slow
def test_quick_cpu_check_measures_eight_configurations_and_extrapolates(tmp_path, capsys):
    out = tmp_path / "check"
    assert _check(out, "--parts", "env,throughput") == 0
    result = read_json(out / "gpu_check.json")
    assert list(result["parts"]) == ["env", "throughput"] and result["total_seconds"] > 0
    env = result["parts"]["env"]
    assert env["status"] == "ok" and env["torch"] == torch.__version__
    assert env["gpu_count"] == (torch.cuda.device_count() if HAS_GPU else 0)

    part = result["parts"]["throughput"]
    assert part["status"] == "ok" and part["seconds"] > 0
    rows = part["rows"]
    assert sorted((r["cells"], r["amp"], r["data_path"]) for r in rows) == sorted(
        itertools.product((1, 2), ("none", "bf16"), ("dataloader", "device")))
    assert all(r["images_per_s"] > 0 and r["images"] == 32 and r["epochs"] == 1 for r in rows)
    # the two data paths give the same images: every member's metrics.json is the same either way
    for cells, amp in itertools.product((1, 2), ("none", "bf16")):
        loader, device = (out / "throughput" / "runs" / f"{cells}cell_{amp}_{p}" for p in ("dataloader", "device"))
        for member in (f"member{i}/metrics.json" for i in range(cells)):
            assert read_json(loader / member) == read_json(device / member)
    assert all(r["same_metrics_as_dataloader"] for r in rows if r["data_path"] == "device")

    one, grid = part["extrapolations"]
    assert one["run_epochs"] == 240 and one["hours"] == pytest.approx(240 * 50_000 / one["images_per_s"] / 3600)
    assert grid["run_epochs"] > 3000 * 240 and grid["hours"] > 0 and grid["cells"] == 2
    assert part["grid"]["cells"] > 3000 and "rough estimate" in grid["note"]

    table = pd.read_csv(out / "gpu_check.csv")
    assert table["part"].value_counts().to_dict() == {"throughput": 8, "extrapolation": 2}
    assert (table.loc[table.part == "throughput", "images_per_s"] > 0).all()
    printed = capsys.readouterr().out
    assert "images_per_s" in printed and "rough estimate" in printed and "== throughput: ok" in printed


@pytest.mark.skipif(HAS_GPU, reason="a GPU is visible here")
def test_cuda_without_a_gpu_is_refused_before_any_work(tmp_path):
    out = tmp_path / "check"
    with pytest.raises(SystemExit, match=r"gpu-check: error: .*no CUDA GPU is visible to torch"):
        lskd_main(["gpu-check", "--out", str(out)])  # --device cuda is the default
    assert not out.exists()


def test_ddp_part_is_skipped_with_fewer_than_two_gpus(tmp_path, monkeypatch):
    assert _check(tmp_path / "none", "--parts", "ddp") == 0
    visible = torch.cuda.device_count() if HAS_GPU else 0
    if visible < 2:
        status = read_json(tmp_path / "none" / "gpu_check.json")["parts"]["ddp"]["status"]
        assert status == f"skipped: {visible} GPU(s) visible"
    monkeypatch.setattr(gpucheck, "gpu_count", lambda: 1)
    assert _check(tmp_path / "one", "--parts", "ddp") == 0
    assert read_json(tmp_path / "one" / "gpu_check.json")["parts"]["ddp"]["status"] == "skipped: 1 GPU(s) visible"
    assert not (tmp_path / "one" / "ddp").exists()


def test_bad_parts_and_sizes_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="--parts takes a comma list of env,smoke,throughput,ddp"):
        _check(tmp_path, "--parts", "env,speed")
    with pytest.raises(SystemExit, match="--epochs must be >= 1"):
        _check(tmp_path, "--epochs", "0")


def test_smoke_part_runs_the_smoke_config_on_the_device_in_bf16(tmp_path, monkeypatch):
    """A dry run (-n) of the command the smoke part runs: the copied workflow takes the config, and its training
    jobs ask for one GPU each."""
    monkeypatch.setattr(gpucheck, "SNAKEMAKE", [*gpucheck.SNAKEMAKE, "-n"])
    monkeypatch.setattr(gpucheck, "_missing_data", lambda name: None)
    cfg = gpucheck.CheckConfig(out=tmp_path, device="cuda", jobs_per_gpu=3)
    result = gpucheck.smoke_part(cfg, gpucheck.Workspace(cfg))
    assert result["status"] == "failed: no report written" and not result["report"]  # a dry run writes none
    work = tmp_path / "smoke"
    config = yaml.safe_load((work / "configs" / "gpu_check.yaml").read_text())
    assert config["execution"]["device"] == "cuda" and config["execution"]["amp"] == "bf16"
    assert config["pairs"] == yaml.safe_load((work / "configs" / "smoke.yaml").read_text())["pairs"]
    assert f"--resources gpu={max(gpucheck.gpu_count(), 1) * 3}" in result["command"]
    log = (work / "gpu_check_snakemake.log").read_text()
    assert "This was a dry-run" in log and "gpu=1" in log and result["log_tail"] == log[-gpucheck.LOG_TAIL:]


def test_a_failing_smoke_run_keeps_the_log_tail_and_fails_the_check(tmp_path, monkeypatch):
    monkeypatch.setattr(gpucheck, "SNAKEMAKE", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    monkeypatch.setattr(gpucheck, "_missing_data", lambda name: None)
    assert _check(tmp_path, "--parts", "smoke") == 1
    smoke = read_json(tmp_path / "gpu_check.json")["parts"]["smoke"]
    assert smoke["status"] == "failed: snakemake exit status 3" and "boom" in smoke["log_tail"]
    assert not smoke["success"] and smoke["wall_seconds"] > 0
    assert _check(tmp_path / "norepo", "--parts", "smoke", "--repo", str(tmp_path / "nowhere")) == 1
    status = read_json(tmp_path / "norepo" / "gpu_check.json")["parts"]["smoke"]["status"]
    assert status.startswith("error: FileNotFoundError") and "--repo" in status


def test_extrapolations_are_the_fastest_rates_over_the_runs_epochs():
    rows = [{"cells": 1, "images_per_s": 100.0, "configuration": "a"},
            {"cells": 1, "images_per_s": 200.0, "configuration": "b"},
            {"cells": 8, "images_per_s": 1000.0, "configuration": "c"}]
    one, grid = gpucheck.extrapolate(rows, {"run_epochs": 7200})
    assert one["configuration"].endswith(" b") and one["hours"] == pytest.approx(240 * 50_000 / 200 / 3600)
    assert grid["hours"] == pytest.approx(7200 * 50_000 / 1000 / 3600) and grid["cells"] == 8
    assert gpucheck.extrapolate(rows, None)[1]["hours"] is None


@pytest.mark.slow
def test_the_ddp_command_runs_two_processes_over_the_whole_test_set(tmp_path):
    """The DDP part's torchrun command on CPU (gloo), as it runs on two GPUs with --device cuda."""
    cfg = gpucheck.CheckConfig(out=tmp_path, device="cpu", train_images=32, test_images=31, batch_size=32,
                               epochs=1, group=2)
    result = gpucheck.run_ddp(gpucheck.Workspace(cfg), "cpu")
    assert result["status"] == "ok", result["log_tail"]
    assert result["command"].startswith("torchrun --standalone --nproc_per_node 2 -m lskd.cli distill")
    run = tmp_path / "ddp" / "run"
    assert read_json(run / "metrics.json")["num_test"] == 31  # the whole (odd-sized) test set
    assert read_json(run / "spec.json")["resolved"]["parallel"]["processes"] == 2
