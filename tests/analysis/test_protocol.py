"""The fair two-stage protocol: the held-out validation split, run health, recorded divergence, the selection
step (ties, an unhealthy arm, a missing cell) and the files it reads."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from lskd.analysis.health import chance_threshold, run_status
from lskd.analysis.selection import NO_HEALTHY, SelectionError, read_stage1, select_settings
from lskd.data import build_dataset
from lskd.engine import DataSpec, OptimSpec, RunSpec, train
from lskd.engine.io import write_tensors
from lskd.engine.trainer import train_one
from lskd.models import SMALL_MODELS
from lskd.workflow import ConfigError, Experiment, validate_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
TEACHER_ARCH, STUDENT_ARCH = SMALL_MODELS[0], SMALL_MODELS[1]


# ---------------------------------------------------------------- the validation split
def test_validation_split_is_class_balanced_disjoint_and_never_trained_on():
    val = build_dataset("digits", "val", holdout=300, holdout_seed=1)
    train = build_dataset("digits", "train", holdout=300, holdout_seed=1)
    full = build_dataset("digits", "train")
    assert len(val) == 300 and len(train) == len(full) - 300
    assert not set(val.indices.tolist()) & set(train.indices.tolist())
    counts = torch_bincount(val.targets)
    assert counts.max() - counts.min() <= 1  # 30 per class
    # its own seed: another seed draws another split; a train subset is drawn from the rest only
    other = build_dataset("digits", "val", holdout=300, holdout_seed=2)
    assert set(other.indices.tolist()) != set(val.indices.tolist())
    sub = build_dataset("digits", "train", holdout=300, holdout_seed=1, subset=200, seed=0)
    assert not set(sub.indices.tolist()) & set(val.indices.tolist())
    with pytest.raises(ValueError, match="holdout"):
        build_dataset("digits", "val")


def torch_bincount(t):
    import torch

    return torch.bincount(t.long())


# ---------------------------------------------------------------- health
def test_chance_threshold_is_chance_plus_three_standard_errors():
    # 10 classes, 10,000 images: 10% + 3 * sqrt(0.1 * 0.9 / 10000) = 10.9%
    assert chance_threshold(10, 10_000) == pytest.approx(10.9)
    assert run_status({"last": {"top1": 10.8}, "num_eval": 10_000}, 10) == "chance-level"
    assert run_status({"last": {"top1": 11.0}, "num_eval": 10_000}, 10) == "ok"
    assert run_status({"status": "diverged", "last": None}, 10) == "diverged"


def _spec(model, method="ce", *, teacher=None, eval_split="test", lr=0.05, epochs=1, **hp) -> RunSpec:
    return RunSpec(model=model, data=DataSpec(name="digits", train_subset=400, test_subset=200, holdout=200,
                                              eval_split=eval_split),
                   optim=OptimSpec(epochs=epochs, batch_size=32, lr=lr), method=method, hparams=hp,
                   teacher_dir=str(teacher) if teacher else None, threads=1, cell=f"{method}-{lr:g}")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    train_one(_spec(TEACHER_ARCH, epochs=2), out, progress=False)
    return out


def test_teacher_keeps_validation_logits_and_stage1_students_never_see_the_test_set(teacher, tmp_path):
    assert (teacher / "test_logits.safetensors").exists() and (teacher / "val_logits.safetensors").exists()
    metrics = train_one(_spec(STUDENT_ARCH, "kd", teacher=teacher, eval_split="val", temperature=2.0), tmp_path,
                        progress=False)
    assert metrics["split"] == "val" and metrics["num_eval"] == 200 and "num_test" not in metrics
    assert not (tmp_path / "test_logits.safetensors").exists() and (tmp_path / "val_logits.safetensors").exists()
    history = pd.read_csv(tmp_path / "history.csv")
    assert "val_top1" in history and not any(c.startswith("test_") for c in history)


def test_a_diverged_member_is_recorded_and_its_group_trains_on(teacher, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    specs = [_spec(STUDENT_ARCH, "kd", teacher=teacher, temperature=4.0),
             _spec(STUDENT_ARCH, "kd", teacher=teacher, lr=1e12, temperature=4.0)]
    out = train(specs, [good, bad], progress=False, record_divergence=True)
    assert out[0]["status"] == "ok" and out[1]["status"] == "diverged"
    assert out[1]["last"] is None and "non-finite" in out[1]["diverged"]["message"]
    assert (good / "test_logits.safetensors").exists() and not (bad / "test_logits.safetensors").exists()
    from lskd.analysis import collect_runs

    runs = collect_runs([good, bad])
    row = runs.set_index("cell").loc["kd-1e+12"]
    assert row["status"] == "diverged" and math.isnan(row["last_top1"])
    # finished: a rerun trains nothing
    again = train(specs, [good, bad], progress=False, record_divergence=True)
    assert again == out


# ---------------------------------------------------------------- the selection step
def _stage1(rows: list[tuple]) -> pd.DataFrame:
    cols = ["teacher", "student", "method", "transform", "temperature", "kd_weight", "seed", "split", "status",
            "last_top1"]
    return pd.DataFrame([("t", "s", *r) for r in rows], columns=cols)


def test_selection_takes_the_best_mean_and_breaks_ties_to_the_smaller_temperature_then_weight():
    runs = _stage1([
        ("kd", "none", 4.0, 1.0, 0, "val", "ok", 80.0), ("kd", "none", 4.0, 1.0, 1, "val", "ok", 82.0),
        ("kd", "none", 1.0, 9.0, 0, "val", "ok", 81.0), ("kd", "none", 1.0, 9.0, 1, "val", "ok", 81.0),
        ("kd", "none", 1.0, 1.0, 0, "val", "ok", 70.0), ("kd", "none", 1.0, 1.0, 1, "val", "ok", 92.0),
        ("kd", "zscore", 2.0, 9.0, 0, "val", "ok", 85.0), ("kd", "zscore", 0.5, 9.0, 0, "val", "ok", 85.0),
        ("kd", "zscore", 0.5, 1.0, 0, "val", "ok", 85.0),
    ])
    sel = select_settings(runs).set_index("transform")
    # none: three settings tie at a mean of 81; the smaller temperature wins, then the smaller weight
    assert (sel.loc["none", "temperature"], sel.loc["none", "kd_weight"]) == (1.0, 1.0)
    assert sel.loc["none", "val_top1_mean"] == 81.0 and sel.loc["none", "n_seeds"] == 2
    assert (sel.loc["zscore", "temperature"], sel.loc["zscore", "kd_weight"]) == (0.5, 1.0)
    assert (sel["n_settings"] == 3).all() and (sel["status"] == "ok").all()


def test_an_unhealthy_setting_is_never_chosen_and_a_fully_unhealthy_arm_is_named():
    runs = _stage1([
        ("mlkd", "none", 1.0, 1.0, 0, "val", "chance-level", 10.2),
        ("mlkd", "none", 1.0, 1.0, 1, "val", "ok", 95.0),  # one unhealthy seed disqualifies the setting
        ("mlkd", "none", 4.0, 1.0, 0, "val", "ok", 60.0), ("mlkd", "none", 4.0, 1.0, 1, "val", "ok", 61.0),
        ("mlkd", "zscore", 0.5, 1.0, 0, "val", "single-class", 10.0),
        ("mlkd", "zscore", 2.0, 1.0, 0, "val", "diverged", float("nan")),
    ])
    sel = select_settings(runs).set_index("transform")
    assert sel.loc["none", "temperature"] == 4.0 and sel.loc["none", "n_unhealthy"] == 1
    assert sel.loc["zscore", "status"] == NO_HEALTHY and pd.isna(sel.loc["zscore", "temperature"])
    assert sel.loc["zscore", "n_unhealthy"] == 2 and "diverged" in sel.loc["zscore", "unhealthy"]


def test_selection_refuses_test_set_metrics():
    with pytest.raises(SelectionError, match="validation metrics only"):
        select_settings(_stage1([("kd", "none", 1.0, 1.0, 0, "test", "ok", 80.0)]))


def _validation_config(tmp_path: Path) -> dict:
    config = yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())
    config["results"] = str(tmp_path / "results")
    return validate_config(config, SCHEMA, runtime=False)


def test_a_missing_stage1_cell_stops_the_selection_naming_it(tmp_path):
    exp = Experiment(_validation_config(tmp_path))
    cells = exp.cells()
    for cell in cells[1:]:
        _fake_metrics(tmp_path / "results" / cell.path, 50.0)
    with pytest.raises(SelectionError, match=rf"{cells[0].path} has not finished"):
        read_stage1(cells, exp.results)


def _fake_metrics(run: Path, top1: float, split: str = "val") -> None:
    run.mkdir(parents=True, exist_ok=True)
    block = {"epoch": 1, "top1": top1, "top5": 99.0, "nll": 1.0, "ece": 0.1}
    (run / "metrics.json").write_text(json.dumps({"status": "ok", "split": split, "last": block, "best": block,
                                                  "num_eval": 300, "num_classes": 10}))


AUDIT = """
import json, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and isinstance(args[0], str) else None)
from lskd.cli import main
try:
    main(sys.argv[2:])
finally:
    json.dump(opened, open(sys.argv[1], "w"))
"""


def test_the_selection_step_reads_only_stage1_validation_metrics(tmp_path):
    """No test-set accuracy can influence the choice: `lskd select` opens the stage-1 cells' metrics.json, and
    their history.csv and validation logits for the run-health check, and nothing else of the results tree (not a
    teacher, a baseline, a stage-2 run, a test logits file or a table)."""
    config = _validation_config(tmp_path)
    exp = Experiment(config)
    results = tmp_path / "results"
    stage1 = set()
    for i, cell in enumerate(exp.cells()):
        run = results / cell.path
        _fake_metrics(run, 40.0 + i)
        (run / "history.csv").write_text(f"epoch,val_top1\n1,{40.0 + i}\n2,{40.0 + i}\n")
        write_tensors(run / "val_logits.safetensors", {"logits": torch.eye(10).repeat(30, 1),
                                                        "targets": torch.arange(300) % 10})
        stage1 |= {(run / name).resolve() for name in ("metrics.json", "history.csv", "val_logits.safetensors")}
    for planted in ("runs/teachers/cnn_w24d4", "runs/baselines/cnn_w8d3/seed1",
                    "runs/confirm/cnn_w24d4__cnn_w8d3/kd/none/T2_w0.9/seed1"):
        _fake_metrics(results / planted, 99.0, split="test")
        (results / planted / "test_logits.safetensors").write_bytes(b"planted")
    log = tmp_path / "opened.json"
    out = results / "tables/selection.csv"
    subprocess.run([sys.executable, "-c", AUDIT, str(log), "select", "--config-json", json.dumps(config),
                    "--out", str(out)], check=True, capture_output=True, text=True)
    opened = {Path(p).resolve() for p in json.loads(log.read_text()) if str(results) in str(Path(p).resolve())}
    expected = {(results / c.path / "metrics.json").resolve() for c in exp.cells()}
    assert expected <= opened
    assert opened - stage1 <= {out.resolve()} | {p for p in opened if p.name.startswith(".selection.csv")}
    selection = pd.read_csv(out)
    arms = {(c.method, c.transform) for c in exp.cells()}  # one selection row per arm of the config
    assert len(selection) == len(arms) and set(selection["status"]) == {"ok"}
    assert {c.path for c in exp.confirm_cells(str(out))} == {
        c.path for c in exp.confirm_cells(selection.astype({"temperature": "float64"}))}


def test_stage2_retrains_each_chosen_setting_with_every_fresh_seed_on_the_test_set(tmp_path):
    config = _validation_config(tmp_path)
    exp = Experiment(config)
    selection = pd.DataFrame([
        {"teacher": "cnn_w24d4", "student": "cnn_w8d3", "method": "kd", "transform": "zscore",
         "temperature": 0.5, "kd_weight": 9.0, "status": "ok"},
        {"teacher": "cnn_w24d4", "student": "cnn_w8d3", "method": "ctkd", "transform": "none",
         "temperature": float("nan"), "kd_weight": 0.9, "status": "ok"},
        {"teacher": "cnn_w24d4", "student": "cnn_w8d3", "method": "mlkd", "transform": "zscore",
         "temperature": float("nan"), "kd_weight": float("nan"), "status": NO_HEALTHY},
    ])
    cells = exp.confirm_cells(selection)
    assert sorted({c.seed for c in cells}) == config["protocol"]["confirm_seeds"]
    assert not {c.seed for c in cells} & set(config["grid"]["seeds"])
    assert len(cells) == 2 * 3 and all(c.path.startswith("runs/confirm/") for c in cells)
    spec = exp.cell_spec(cells[0])
    assert spec["data"]["eval_split"] == "test" and spec["data"]["holdout"] == 300
    assert exp.cell_spec(exp.cells()[0])["data"]["eval_split"] == "val"
    assert exp.teacher_spec("cnn_w24d4")["data"]["holdout"] == 300  # the teacher never sees the split either
    assert [s for _, s in exp.baselines()] == config["protocol"]["confirm_seeds"]
    # KD and CTKD read the same view with the same solver: one lockstep job per seed (one teacher forward)
    groups = exp.confirm_groups(selection)
    assert sorted(groups) == [f"groups/confirm/cnn_w24d4__cnn_w8d3/seed{s}/g0" for s in (1, 2, 3)]
    assert all({c.method for c in cells} == {"kd", "ctkd"} for cells in groups.values())
    mixed = selection.assign(status="ok", temperature=[0.5, float("nan"), 2.0], kd_weight=[9.0, 0.9, 9.0])
    by_views = {tuple(sorted({c.method for c in cells})) for cells in exp.confirm_groups(mixed).values()}
    assert by_views == {("ctkd", "kd"), ("mlkd",)}  # MLKD's strong view trains apart


@pytest.mark.parametrize("change,message", [
    ({"confirm_seeds": [0, 5, 6]}, r"protocol.confirm_seeds: \[0\] also in grid.seeds"),
    ({"validation_size": None}, "protocol.validation_size is required"),
    ({"confirm_seeds": [7, 8]}, "confirm_seeds"),
])
def test_protocol_errors_name_the_key(tmp_path, change, message):
    config = yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())
    for key, value in change.items():
        if value is None:
            config["protocol"].pop(key)
        else:
            config["protocol"][key] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA, runtime=False)


def test_paper_protocol_specs_are_unchanged_by_the_validation_keys():
    """Paper tracks keep their run folders and fingerprints: no holdout, no stage label, test evaluation."""
    config = validate_config(yaml.safe_load((ROOT / "configs/cifar100.yaml").read_text()), SCHEMA, runtime=False)
    exp = Experiment(config)
    spec = exp.cell_spec(exp.cells()[0])
    assert "holdout" not in spec["data"] and "stage" not in spec["labels"]
    assert not exp.validation and exp.cells()[0].path.startswith("runs/") and "confirm" not in exp.cells()[0].path


def test_the_default_tunes_both_arms_of_every_method_alike():
    """Same number of settings per arm; the z-score temperatures fit 10 classes; MLKD's own weight range."""
    config = validate_config(yaml.safe_load((ROOT / "configs/default.yaml").read_text()), SCHEMA, runtime=False)
    exp = Experiment(config)
    assert exp.validation and len(exp.confirm_seeds) >= 3
    settings: dict[tuple[str, str], set] = {}
    for c in exp.cells():
        settings.setdefault((c.method, c.transform), set()).add((c.temperature, c.kd_weight))
    for method in config["grid"]["methods"]:
        assert len(settings[method, "none"]) == len(settings[method, "zscore"]) >= 2, method
    assert {t for t, _ in settings["kd", "zscore"]} == {0.5, 2.0}
    assert {w for _, w in settings["mlkd", "none"]} == {w for _, w in settings["mlkd", "zscore"]} == {0.1, 1.0}
    assert {w for _, w in settings["kd", "none"]} == {w for _, w in settings["kd", "zscore"]} == {1.0, 9.0}
    dkd_ls = next(c for c in exp.cells() if (c.method, c.transform) == ("dkd", "zscore"))
    assert exp.cell_spec(dkd_ls)["hparams"]["beta"] == 2.0  # as the official LS logs run DKD
