"""Paper-track fidelity: every setting the official code ran is a cell of the paper configs, with exactly its
hyper-parameters and solver (read through ``lskd cells``), and the machinery that makes that possible (per-pair
``points``, ``overrides`` rules, solver-aware groups). The official rows are read here with the csv module and
parsed by this file's own small rules, not by :mod:`lskd.analysis.official`, so both are checked."""

from __future__ import annotations

import copy
import csv
import json
import math
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from lskd.analysis.official import compare_cells, official_settings
from lskd.workflow import ConfigError, Experiment, validate_config
from lskd.workflow.cells import cells_table

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
NAMES = {"ShuffleV2": "shufflenet_v2", "MobileNetV2": "mobilenet_v2", "ResNet50": "resnet50"}


def config(name: str) -> dict:
    return validate_config(yaml.safe_load((ROOT / f"configs/{name}.yaml").read_text()), SCHEMA, runtime=False)


@pytest.fixture(scope="module")
def cifar_cells():
    return cells_table(config("cifar100"))


def _csv_rows(name: str) -> list[dict[str, str]]:
    with files("lskd").joinpath("data", "paper", name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _num(text: str) -> float | None:
    m = re.match(r"([0-9.]+)", text)
    return float(m.group(1)) if m else None


def _teacher_ids(cfg: dict) -> dict[str, str]:
    """Paper model name of each config teacher → its id (cifar_resnet50 → resnet50)."""
    return {t["model"].removeprefix("cifar_"): tid for tid, t in cfg["teachers"].items()}


def _expected(row: dict[str, str]) -> dict[str, float]:
    """The settings a raw CSV row states, under lskd's names (CTKD's LS tau is the floor t_min)."""
    out = {}
    tau = _num(row["tau_or_T"])
    if tau is not None:
        out["t_min" if row["method"] == "CTKD" else "temperature"] = tau
    for src, dst in (("kd_weight", "kd_weight"), ("ce_weight", "ce_weight"), ("alpha", "alpha"), ("beta", "beta"),
                     ("epochs", "epochs"), ("lr", "lr"), ("batch", "batch_size")):
        if _num(row[src]) is not None:
            out[dst] = _num(row[src])
    return out


def _matching(cells, cfg, row: dict[str, str]):
    teacher = _teacher_ids(cfg)[NAMES.get(row["teacher"], row["teacher"])]
    student = NAMES.get(row["student"], row["student"])
    sel = cells[(cells.teacher == teacher) & (cells.student == student) & (cells.method == row["method"].lower())
                & (cells["transform"] == ("zscore" if row["ls"] == "1" else "none"))]
    for key, want in _expected(row).items():
        column = sel[key].map(lambda v: float("nan") if v in ("", "learned", None) else float(v))
        sel = sel[column.map(lambda v: math.isclose(v, want, rel_tol=1e-9)).astype(bool)]
    steps = re.match(r"\[([0-9,]*)\]", row["lr_decay"])
    if steps:  # a log-read decay list shows only the first steps: the cell's milestones must start with them
        logged = steps.group(1).split(",")
        sel = sel[sel.milestones.map(lambda m: m.split()[:len(logged)] == logged).astype(bool)]
    return sel


def test_cifar100_has_a_cell_for_every_logged_setting(cifar_cells):
    cfg = config("cifar100")
    rows = _csv_rows("official_settings.csv")
    assert len(rows) == 112
    stated = [r for r in rows if _num(r["tau_or_T"]) is not None or _num(r["kd_weight"]) is not None]
    assert len(stated) == 110  # MLKD + LS of resnet56 -> resnet20 and wrn_40_2 -> MobileNetV2 state no tau / w
    missing = []
    for row in stated:
        sel = _matching(cifar_cells, cfg, row)
        if sorted(set(sel.seed)) != cfg["grid"]["seeds"]:
            missing.append(f"{row['teacher']}->{row['student']} {row['method']} ls={row['ls']}: {_expected(row)}")
    assert not missing, "\n".join(missing)


def test_cifar100_rows_without_a_logged_point_still_get_the_official_solver(cifar_cells):
    cfg = config("cifar100")
    for row in _csv_rows("official_settings.csv"):
        if _num(row["tau_or_T"]) is None and _num(row["kd_weight"]) is None:
            sel = _matching(cifar_cells, cfg, row)  # filters on ce_weight, epochs, lr, batch only
            assert len(sel) > 0 and set(sel.epochs) == {480}, row


def test_dkd_beta_is_stated_before_the_ls_scaling_and_follows_the_log_name(cifar_cells):
    c = cifar_cells
    vgg = c[(c.teacher == "vgg13") & (c.student == "vgg8") & (c.method == "dkd")]
    assert set(vgg[vgg["transform"] == "none"].beta) == {6.0}          # mdistiller's raw DKD config
    assert set(vgg[vgg["transform"] == "zscore"].beta) == {2.0}        # the LS log name "dkd,vgg13,vgg8,2,15,2"
    r8 = c[(c.teacher == "resnet32x4") & (c.student == "resnet8x4") & (c.method == "dkd")]
    assert set(r8.beta) == {8.0}


def test_ctkd_floor_is_tau_with_ls_and_one_without(cifar_cells):
    ctkd = cifar_cells[cifar_cells.method == "ctkd"]
    assert set(ctkd[ctkd["transform"] == "zscore"].t_min) == {2.0}
    assert set(ctkd[ctkd["transform"] == "none"].t_min) == {1.0}
    assert set(ctkd.temperature) == {"learned"}


def test_mlkd_runs_as_published(cifar_cells):
    mlkd = cifar_cells[cifar_cells.method == "mlkd"]
    assert set(mlkd.weighting) == {"official"} and set(mlkd.strong_view) == {"strong_fixmatch"}
    sv2 = mlkd[mlkd.student == "shufflenet_v2"]
    assert set(sv2.epochs) == {960} and set(sv2.lr) == {0.01}
    ls = mlkd[(mlkd["transform"] == "zscore") & (mlkd.student != "shufflenet_v2")]
    assert set(ls.epochs) == {480}


def test_compare_cells_agrees_and_catches_a_deviation():
    cfg = config("cifar100")
    table = compare_cells(Experiment(cfg))
    assert len(table) == 112
    assert table.status.value_counts().to_dict() == {"exact": 110, "unstated": 2}
    changed = copy.deepcopy(cfg)
    rule = {"method": "mlkd", "transform": "zscore", "optim": {"epochs": 480}}
    changed["overrides"] = [r for r in changed["overrides"] if r != rule]
    dev = compare_cells(Experiment(changed))
    bad = dev[dev.status == "deviates"]
    # every MLKD + LS row but ShuffleNetV2 (960 epochs) and the two MobileNetV2 pairs with a per-pair 480
    assert len(bad) == 11 and set(bad.method) == {"mlkd"} and set(bad["transform"]) == {"zscore"}
    assert set(bad.deviation) == {"epochs 240 (official 480)"}


def test_official_settings_keep_the_logs_best_and_last_accuracy():
    table = official_settings("cifar100")
    row = table[(table.teacher == "resnet32x4") & (table.student == "shufflenet_v2") & (table.method == "ctkd")
                & (table["transform"] == "zscore")].iloc[0]
    assert (row.log_best, row.log_best_epoch, row.log_last) == (76.65, 231, 76.56)  # two runs in one log: the best
    assert row.log_runs == "76.47@228|76.65@231"


def test_ablation_config_is_table4_with_the_official_solver():
    cfg = config("cifar100_ablation")
    cells = cells_table(cfg)
    for row in _csv_rows("paper_ablation_table4.csv"):
        sel = cells[(cells["transform"] == row["transform"]) & (cells.kd_weight == float(row["kd_weight"]))
                    & (cells.temperature == f"{float(row['base_temperature']):g}")
                    & (cells.ce_weight == float(row["ce_weight"]))]
        assert sorted(set(sel.seed)) == [0, 1, 2, 3], row
        assert set(sel.epochs) == {240} and set(sel.lr) == {0.05} and set(sel.batch_size) == {64}
        assert set(sel.milestones) == {"150 180 210"}


def test_imagenet_config_runs_the_stated_recipes():
    cfg = config("imagenet")
    cells = cells_table(cfg)
    for row in _csv_rows("official_settings_imagenet.csv"):
        assert len(_matching(cells, cfg, row)) > 0, row
    ctkd = cells[cells.method == "ctkd"]
    assert set(ctkd.curriculum_epochs) == {5} and set(ctkd.epochs) == {120} and set(ctkd.batch_size) == {256}
    assert set(ctkd[ctkd["transform"] == "zscore"].kd_weight) == {2.0}
    assert set(ctkd[ctkd["transform"] == "none"].kd_weight) == {1.0}
    r18 = cells[(cells.method == "mlkd") & (cells.student == "resnet18")]
    assert set(r18.lr) == {0.1}
    assert table_status(cfg) == {"exact": 3, "unstated": 2}  # MLKD's rows state only the lr


def table_status(cfg: dict) -> dict[str, int]:
    return compare_cells(Experiment(cfg)).status.value_counts().to_dict()


# ------------------------------------------------------------------------------------------ points and rules
def _smoke(**changes) -> dict:
    raw = yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())
    raw.update(changes)
    return raw


def test_points_add_cells_once_per_seed_and_a_point_on_the_grid_adds_nothing():
    raw = _smoke()
    base = len(Experiment(validate_config(copy.deepcopy(raw), SCHEMA, runtime=False)).cells())
    raw["pairs"][0]["points"] = [{"method": "kd", "transform": "zscore", "temperature": 3, "kd_weight": 1},
                                 {"method": "kd", "transform": "zscore", "temperature": 2},  # on the grid
                                 {"method": "ctkd", "transform": "none", "kd_weight": 2}]
    exp = Experiment(validate_config(raw, SCHEMA, runtime=False))
    added = exp.cells()[base:]
    assert len(exp.cells()) == base + 2  # two off-grid points x one stage-1 seed
    assert {c.path.split("/", 2)[2].rsplit("/", 1)[0] for c in added} == {"kd/zscore/T3_w1", "ctkd/none/Tlearned_w2"}
    assert len({c.path for c in exp.cells()}) == len(exp.cells())


@pytest.mark.parametrize("point,message", [
    ({"method": "crd", "transform": "zscore", "temperature": 2}, "pairs[0].points[0].method: unknown method 'crd'; registered:"),
    ({"method": "kd", "transform": "zscore"}, "'temperature' is required"),
    ({"method": "ctkd", "transform": "zscore", "temperature": 2}, "ctkd learns its temperature"),
])
def test_bad_points_name_the_key(point, message):
    raw = _smoke()
    raw["pairs"][0]["points"] = [point]
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(raw, SCHEMA, runtime=False)


def test_points_and_rules_of_what_a_subset_does_not_run_select_nothing():
    raw = _smoke(overrides=[{"teacher": "resnet32x4", "method": "dkd", "hparams": {"beta": 2}},
                            {"student": "resnet8x4", "optim": {"lr": 0.1}}])
    raw["pairs"][0]["points"] = [{"method": "kd", "transform": "center", "temperature": 2}]
    base = Experiment(validate_config(_smoke(), SCHEMA, runtime=False))
    exp = Experiment(validate_config(raw, SCHEMA, runtime=False))
    assert [exp.cell_spec(c) for c in exp.cells()] == [base.cell_spec(c) for c in base.cells()]


@pytest.mark.parametrize("rule,message", [
    ({"method": "mlkdd", "optim": {"lr": 0.1}}, "did you mean 'mlkd'"),
    ({"method": "kd"}, "sets nothing"),
    ({"transform": "zscore", "hparams": {"kd_weight": 3}}, "need a method selector"),
])
def test_bad_overrides_name_the_key(rule, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(_smoke(overrides=[rule]), SCHEMA, runtime=False)


def test_overrides_apply_in_order_to_the_runs_they_select_and_not_to_baselines():
    raw = _smoke(overrides=[{"method": "mlkd", "optim": {"epochs": 3, "lr": 0.2}},
                            {"method": "mlkd", "transform": "zscore", "optim": {"lr": 0.3}, "hparams": {"ce_weight": 0.5}},
                            {"method": "ce", "optim": {"lr": 0.07}}])
    exp = Experiment(validate_config(raw, SCHEMA, runtime=False))
    spec = {(c.method, c.transform): exp.cell_spec(c) for c in exp.cells()}
    assert spec[("mlkd", "none")]["optim"]["lr"] == 0.2 and spec[("mlkd", "zscore")]["optim"]["lr"] == 0.3
    assert spec[("mlkd", "zscore")]["optim"]["epochs"] == 3 and spec[("mlkd", "zscore")]["hparams"]["ce_weight"] == 0.5
    assert spec[("kd", "none")]["optim"] == raw["student_optim"]
    assert exp.baseline_spec("cnn_w8d3", 0)["optim"]["lr"] == 0.07


def test_groups_never_mix_solvers():
    raw = _smoke()
    raw["overrides"] = [{"method": "mlkd", "transform": "zscore", "optim": {"epochs": raw["student_optim"]["epochs"] + 1}}]
    raw["execution"]["group_size"] = 8
    exp = Experiment(validate_config(raw, SCHEMA, runtime=False))
    for key, cells in exp.groups().items():
        assert len({(exp.cell_optim(c)["epochs"], exp.cell_optim(c)["batch_size"]) for c in cells}) == 1, key
    mlkd = [k for k in exp.groups() if k.startswith("groups/cnn_w24d4__cnn_w8d3/seed0/mlkd")]
    assert mlkd == ["groups/cnn_w24d4__cnn_w8d3/seed0/mlkd-g0", "groups/cnn_w24d4__cnn_w8d3/seed0/mlkd-g1"]


@pytest.mark.slow
def test_lskd_cells_prints_every_cell_with_its_settings():
    out = subprocess.run([sys.executable, "-m", "lskd.cli", "cells", "configs/smoke.yaml", "--format", "json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == len(Experiment(config("smoke")).cells())
    assert list(rows[0])[:7] == ["teacher", "student", "method", "transform", "temperature", "kd_weight", "seed"]
    dkd = next(r for r in rows if r["method"] == "dkd" and r["transform"] == "zscore")
    optim = config("smoke")["student_optim"]
    assert (dkd["beta"], dkd["kd_weight"], dkd["epochs"], dkd["batch_size"]) == (8.0, 9.0, optim["epochs"], 128)
    kd = next(r for r in rows if r["method"] == "kd")
    assert kd["beta"] is None and kd["official"] is False
    csv_out = subprocess.run([sys.executable, "-m", "lskd.cli", "cells", "configs/smoke.yaml", "--format", "csv"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert csv_out.stdout.splitlines()[0].startswith("teacher,student,method,transform,temperature,kd_weight,seed,")
