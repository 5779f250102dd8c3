"""Workflow config: schema validation with actionable messages, grid expansion and run specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lskd.engine import RunSpec
from lskd.workflow import ConfigError, Experiment, fmt_num, load_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def raw(name: str = "smoke") -> dict:
    return yaml.safe_load((ROOT / f"configs/{name}.yaml").read_text())


@pytest.mark.parametrize("name", ["default", "smoke", "fmnist_study"])
def test_shipped_configs_validate_and_fill_defaults(name):
    config = validate_config(raw(name), SCHEMA, check_data=False)
    assert config["execution"]["amp"] == "none"
    assert config["resources"]["distill"]["mem_mb"] > 0
    assert config["protocol"]["selection"] == "validation"
    assert config["grid"]["kd_weights"] == (["default"] if name == "smoke" else config["grid"]["kd_weights"])


def test_default_grid_is_the_embedded_demo():
    exp = Experiment(validate_config(raw("default"), SCHEMA, check_data=False))
    cells = exp.cells()
    # stage 1: kd, dkd, mlkd: 2 transforms x 2 temperatures x 2 KD weights x 1 seed; ctkd learns its
    # temperature: 2 transforms x 2 weights; ttm, dist: 2 transforms x 2 temperatures at one weight
    assert len(cells) == 3 * 2 * 2 * 2 + 2 * 2 + 2 * 2 * 2
    assert {c.method for c in cells} == {"kd", "dkd", "ctkd", "mlkd", "ttm", "dist"}
    assert {c.transform for c in cells} == {"none", "zscore"}
    assert {c.temperature for c in cells if c.method == "ctkd"} == {None}
    assert len({c.path for c in cells}) == len(cells)
    assert exp.baselines() == [("cnn_w8d3", 10), ("cnn_w8d3", 11), ("cnn_w8d3", 12)]  # the stage-2 seeds


def test_cell_specs_resolve_per_transform_weights_and_validate():
    exp = Experiment(validate_config(raw("default"), SCHEMA, check_data=False))
    by = {(c.method, c.transform, c.temperature, c.kd_weight, c.seed): c for c in exp.cells()}
    kd_ls = exp.cell_spec(by[("kd", "zscore", 2.0, 9.0, 0)])
    assert kd_ls["hparams"] == {"ce_weight": 0.1, "kd_weight": 9.0, "transform": "zscore", "temperature": 2.0}
    assert kd_ls["teacher_dir"] == "results/runs/teachers/cnn_w24d4"
    assert kd_ls["labels"]["role"] == "distill" and kd_ls["data"]["train_subset"] == 5000
    assert kd_ls["labels"]["stage"] == "sweep" and kd_ls["data"]["eval_split"] == "val"
    kd_raw = exp.cell_spec(by[("kd", "none", 4.0, 1.0, 0)])
    assert kd_raw["hparams"]["kd_weight"] == 1.0 and "transform" not in kd_raw["hparams"]
    assert by[("kd", "zscore", 2.0, 9.0, 0)].path == "runs/cnn_w24d4__cnn_w8d3/kd/zscore/T2_w9/seed0"
    ctkd = exp.cell_spec(by[("ctkd", "zscore", None, 9.0, 0)])
    assert "temperature" not in ctkd["hparams"] and ctkd["hparams"]["curriculum_epochs"] == 2
    for cell in exp.cells():
        RunSpec.from_dict(exp.cell_spec(cell))
    teacher = RunSpec.from_dict(exp.teacher_spec("cnn_w24d4"))
    assert teacher.data.train_subset == 30000 and teacher.data.holdout == 5000 and teacher.method == "ce"


def test_fmt_num():
    assert [fmt_num(x) for x in (2, 2.0, 0.5, 9, 1e-5)] == ["2", "2", "0.5", "9", "1e-05"]


def _mutate(change):
    config = raw()
    change(config)
    return config


BAD = [
    (lambda c: c["grid"]["methods"].append("kdd"), r"grid\.methods\[\d+\]: unknown method 'kdd' \(did you mean 'kd'\?\); registered: (\w+, )*kd, "),
    (lambda c: c["grid"].__setitem__("temperatures", [-1]), r"grid\.temperatures\[0\]: -1 is less than or equal to the minimum of 0"),
    (lambda c: c["pairs"][0].__setitem__("student", "resnet8x5"), r"pairs\[0\]\.student: unknown model 'resnet8x5' \(did you mean 'resnet8x4'"),
    (lambda c: c["pairs"][0].__setitem__("teacher", "big"), r"pairs\[0\]\.teacher: unknown teacher 'big'; defined teachers: cnn_w24d4"),
    (lambda c: c["dataset"].__setitem__("root", "/nonexistent/fmnist"), r"(?s)dataset\.root: Fashion-MNIST not found.*apt-get install dataset-fashion-mnist"),
    (lambda c: c["grid"].__setitem__("tempratures", [2]), r"grid: unknown key 'tempratures' \(did you mean 'temperatures'\?\)"),
    (lambda c: c["grid"].__setitem__("seeds", []), r"grid\.seeds: \[\] should be non-empty"),
    (lambda c: c["student_optim"].pop("epochs"), r"student_optim\.epochs \(or pairs\[0\]\.optim\.epochs\) is required"),
    (lambda c: c["teachers"]["cnn_w24d4"]["optim"].pop("epochs"), r"teachers\.cnn_w24d4\.optim\.epochs is required"),
    (lambda c: c["methods"]["normkd"].pop("grid_transforms"), r"grid\.transforms: normkd is not meaningful with zscore .*"
                                                       r"methods\.normkd\.grid_transforms: \[none\]"),
    (lambda c: c["grid"].__setitem__("transforms", ["zscore", "minmax"]), r"'minmax' is not allowed; allowed: none, center, scale, zscore"),
    (lambda c: c["methods"]["kd"]["hparams"].__setitem__("temprature", 3), r"methods\.kd .*does not take temprature"),
    (lambda c: c["grid"].__setitem__("kd_weights", ["default", 0.9]), r"two settings give the same cell"),
    (lambda c: c["dataset"].__setitem__("name", "mnist"), r"dataset\.name: 'mnist' is not allowed.*allowed: fashion_mnist, digits, cifar100, imagenet"),
    (lambda c: c["teachers"]["cnn_w24d4"].__setitem__("source", "pretrained"), r"teachers\.cnn_w24d4: source pretrained needs"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_configs_name_the_key_and_allowed_values(change, message, monkeypatch):
    monkeypatch.delenv("LSKD_DATA", raising=False)
    config = _mutate(change)
    needs_data = "apt-get" in message
    if needs_data and not Path("/usr/share/datasets/fashion-mnist").exists():
        pytest.skip("needs the dataset-fashion-mnist package")
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA, check_data=needs_data)


def test_malformed_yaml_is_reported(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, SCHEMA)


def test_groups_share_pair_seed_and_method_and_cover_every_cell():
    config = validate_config(raw("default"), SCHEMA, check_data=False)
    exp = Experiment(config)
    groups = exp.groups()
    assert config["execution"]["group_size"] == 8 and len(groups) == 6  # 6 methods x 1 stage-1 seed
    members = [c for cells in groups.values() for c in cells]
    assert sorted(members) == sorted(exp.cells())
    for key, cells in groups.items():
        assert len({(c.pair, c.seed, c.method) for c in cells}) == 1 and len(cells) <= 8
        payload = exp.group_payload(key)
        assert [p["out"] for p in payload] == [exp.run_dir(c.path) for c in cells]
    config["execution"]["group_size"] = 4
    sizes = sorted(len(c) for c in Experiment(config).groups().values())
    assert sizes == [4] * 9  # kd, dkd, mlkd: 8 cells in two groups; ctkd, ttm, dist: 4


def test_cifar100_temperature_family_runs_each_method_at_its_published_setting():
    """configs/cifar100_temperature_family.yaml: one setting per method (the sources are in its comments and each
    method's docstring), KD raw and with LS beside them, 4 seeds, every run spec valid."""
    exp = Experiment(validate_config(raw("cifar100_temperature_family"), SCHEMA, check_data=False))
    settings = {(c.method, c.transform): (c.temperature, c.kd_weight) for c in exp.cells()}
    assert settings == {("kd", "none"): (4.0, 0.9), ("kd", "zscore"): (2.0, 9.0), ("normkd", "none"): (2.0, 0.9),
                        ("ttm", "none"): (10.0, 45.0), ("wttm", "none"): (5.0, 4.0), ("dist", "none"): (4.0, 1.0)}
    assert len(exp.cells()) == 6 * 4
    for cell in exp.cells():
        spec = RunSpec.from_dict(exp.cell_spec(cell))
        assert spec.optim.epochs == 240 and spec.optim.milestones == [150, 180, 210]
