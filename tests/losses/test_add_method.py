"""Adding a method: a toy method registered from a module outside lskd (tests/plugins/toy_method.py) is listed,
checked, trained by `lskd distill` and carried through the pipeline's tables, with no lskd file edited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pipeline import HAS_FASHION_MNIST, copy_workflow, run_snakemake, snakemake_env

from lskd.losses import registry
from lskd.models import SMALL_STUDENT, SMALL_TEACHER

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def _env() -> dict[str, str]:
    env = snakemake_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH")]))
    env[registry.PLUGINS_ENV] = "toy_method"
    return env


def _lskd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lskd.cli", *args], env=_env(), capture_output=True, text=True,
                          timeout=300)


def test_a_plugin_method_registers_and_describes_itself(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv(registry.PLUGINS_ENV, "toy_method")
    info = registry.method_info("toy_mse")
    assert info["hparams"]["temperature"] == {"default": 4.0, "help": "softmax temperature"}
    assert info["transforms"] == ("none", "center", "scale", "zscore") and not info["learns_temperature"]
    assert "toy_mse" in registry.distillation_methods()
    monkeypatch.setenv(registry.PLUGINS_ENV, "no_such_module")
    with pytest.raises(ImportError, match="LSKD_PLUGINS names 'no_such_module'"):
        registry.load_plugins()


@pytest.mark.slow
def test_lskd_distill_trains_the_plugin_method(tmp_path):
    listing = _lskd("list")
    assert listing.returncode == 0 and "toy_mse: Squared distance between softened distributions" in listing.stdout
    common = ["--dataset", "digits", "--train-subset", "300", "--test-subset", "100", "--batch-size", "32",
              "--epochs", "1", "--threads", "1", "--no-progress"]
    teacher = tmp_path / "teacher"
    assert _lskd("train-teacher", "--model", SMALL_TEACHER, "--out", str(teacher), *common).returncode == 0
    out = tmp_path / "toy"
    run = _lskd("distill", "--teacher", str(teacher), "--model", SMALL_STUDENT, "--method", "toy_mse",
                "--temperature", "2", "--transform", "zscore", "--out", str(out), *common)
    assert run.returncode == 0, run.stderr[-2000:]
    history = pd.read_csv(out / "history.csv")
    assert {"loss_ce", "loss_mse"} <= set(history.columns) and history["loss_mse"].gt(0).all()
    spec = json.loads((out / "spec.json").read_text())
    assert spec["spec"]["method"] == "toy_mse" and spec["resolved"]["hparams"]["temperature"] == 2.0
    assert json.loads((out / "metrics.json").read_text())["status"] == "ok"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_FASHION_MNIST, reason="needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")
def test_the_pipeline_carries_the_plugin_method_to_its_tables(tmp_path):
    """The smoke config with one more line (grid.methods: the toy method beside KD) runs both stages and the tables
    step: the toy method's cells, its selected settings and its headline row appear like KD's."""
    work = copy_workflow(tmp_path)
    config = yaml.safe_load((work / "configs/smoke.yaml").read_text())
    config["grid"]["methods"] = ["kd", "toy_mse"]
    config["teachers"]["cnn_w24d4"]["train_subset"] = 2000
    (work / "configs/toy.yaml").write_text(yaml.safe_dump(config))
    out = run_snakemake(work, "--cores", "2", "results/tables/headline.csv", "--configfile", "configs/toy.yaml",
                        env=_env(), timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = pd.read_csv(work / "results/tables/runs.csv")
    toy = runs[runs["method"] == "toy_mse"]
    assert len(toy) == len(runs[runs["method"] == "kd"]) > 0
    assert set(toy["transform"]) == {"none", "zscore"}
    headline = pd.read_csv(work / "results/tables/headline.csv")
    assert set(headline["method"]) == {"kd", "toy_mse"}
