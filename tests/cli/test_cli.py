"""The ``lskd`` command line end to end on scikit-learn's digits: train-teacher, distill, evaluate, list."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lskd.cli import main
from lskd.engine.io import read_json
from lskd.models import SMALL_STUDENT, SMALL_TEACHER

COMMON = ["--dataset", "digits", "--train-subset", "300", "--test-subset", "100", "--epochs", "1",
          "--batch-size", "32", "--threads", "1", "--no-progress"]


def test_train_teacher_distill_and_evaluate(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    assert main(["train-teacher", "--model", SMALL_TEACHER, "--out", str(teacher), *COMMON]) == 0
    student = tmp_path / "kd_zscore"
    assert main(["distill", "--teacher", str(teacher), "--model", SMALL_STUDENT, "--method", "dkd",
                 "--transform", "zscore", "--temperature", "2", "--kd-weight", "9", "--hparam", "warmup=1",
                 "--hparam", "beta=6", "--out", str(student), *COMMON[2:]]) == 0
    record = read_json(student / "spec.json")
    assert record["spec"]["data"]["name"] == "digits"  # taken from the teacher's spec
    assert record["spec"]["hparams"] == {"transform": "zscore", "temperature": 2.0, "kd_weight": 9.0, "warmup": 1, "beta": 6}
    assert record["resolved"]["hparams"]["alpha"] == 1.0
    capsys.readouterr()
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(student), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["top1"] == pytest.approx(read_json(student / "metrics.json")["last"]["top1"])
    assert read_json(out) == printed


def test_spec_file_with_flag_overrides(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"model: {SMALL_STUDENT}\ndata: {{name: digits, train_subset: 200, test_subset: 50}}\n"
                    "optim: {epochs: 1, batch_size: 64}\nseed: 3\n")
    assert main(["train-teacher", "--spec", str(spec), "--seed", "4", "--threads", "1", "--no-progress",
                 "--out", str(tmp_path / "run")]) == 0
    record = read_json(tmp_path / "run/spec.json")
    assert record["spec"]["seed"] == 4 and record["spec"]["optim"]["batch_size"] == 64


@pytest.mark.parametrize("argv,message", [
    (["distill", "--model", SMALL_STUDENT, "--dataset", "digits", "--method", "kd", "--epochs", "1"], "needs a teacher"),
    (["train-teacher", "--model", "resnet9000", "--dataset", "digits", "--epochs", "1"], "unknown model 'resnet9000'"),
    (["distill", "--model", SMALL_STUDENT, "--dataset", "digits", "--method", "ce", "--temperature", "4", "--epochs",
      "1"], "does not take temperature"),
    (["train-teacher", "--model", SMALL_STUDENT, "--dataset", "digits"], "how many epochs\\? give --epochs N"),
])
def test_bad_arguments_fail_before_training(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        main([*argv, "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_console_script_help_and_list():
    out = subprocess.run([sys.executable, "-m", "lskd.cli", "distill", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--transform" in out.stdout and "zscore" in out.stdout
    listing = subprocess.run([sys.executable, "-m", "lskd.cli", "list"], capture_output=True, text=True).stdout
    assert "fashion_mnist" in listing and "resnet8x4" in listing and "mlkd" in listing
