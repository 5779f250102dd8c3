"""End to end: the smoke config through Snakemake in a temporary copy of the workflow."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml
from pipeline import HAS_FASHION_MNIST, ROOT
from pipeline import copy_workflow as _copy_workflow
from pipeline import run_snakemake as _snakemake

from lskd.analysis.health import STATUSES
from lskd.claims import registered_claims
from lskd.workflow import SCHEMA, Experiment, validate_config

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not HAS_FASHION_MNIST, reason="needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")]


def _smoke_experiment() -> Experiment:
    config = yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())
    return Experiment(validate_config(config, SCHEMA, check_data=False))


def test_smoke_pipeline_produces_every_table(smoke_run):
    tables = smoke_run / "results/tables"
    runs = pd.read_csv(tables / "runs.csv")
    selection = pd.read_csv(tables / "selection.csv")
    # stage 1: every cell of the smoke grid (each method x the transforms it runs x its temperatures) x 1 seed, on
    # the validation split; one selection row per arm (method, transform)
    experiment = _smoke_experiment()
    sweep = runs[runs["stage"] == "sweep"]
    assert len(sweep) == len(experiment.sweep_cells()) and set(sweep["split"]) == {"val"}
    arms = {(c.method, c.transform) for c in experiment.sweep_cells()}
    assert len(selection) == len(arms) and set(selection["status"]) <= {"ok", "no healthy setting"}
    # stage 2: every chosen setting once per fresh seed, on the test set; CE baselines on the same seeds
    confirm = runs[runs["stage"] == "confirm"]
    assert len(confirm) == 3 * int((selection["status"] == "ok").sum()) and set(confirm["split"]) == {"test"}
    assert set(confirm["seed"]) == {1, 2, 3} and not set(confirm["seed"]) & set(sweep["seed"])
    assert len(runs) == 1 + 3 + len(sweep) + len(confirm)
    assert set(runs["role"]) == {"teacher", "baseline", "distill"}
    assert set(runs["status"]) <= set(STATUSES)
    ok = runs[runs["status"] != "diverged"]
    assert ok[["last_top1", "best_top1"]].notna().all().all()
    for name in ("headline", "grid", "logit_summary", "logit_runs", "paper_comparison"):
        table = pd.read_csv(tables / f"{name}.csv")
        assert len(table) > 0, name
    headline = pd.read_csv(tables / "headline.csv")
    assert set(headline["method"]) == {m for m, _ in arms} and len(headline) == len(arms)
    assert set(headline["protocol"]) == {"validation"}
    healthy = headline[headline["status"] == "ok"]
    assert (healthy["n"] >= 1).all() and headline.loc[headline["status"] != "ok", "last_top1_mean"].isna().all()
    grid = pd.read_csv(tables / "grid.csv")
    assert len(grid) == len(sweep) and set(grid["split"]) == {"val"} and "status" in grid
    from lskd.analysis import read_run_stats

    for run_dir in ok["run_dir"]:  # paths relative to the results folder, so it can be moved or copied
        assert run_dir.startswith("runs/"), run_dir
        stats = read_run_stats(smoke_run / "results" / run_dir / "logit_stats.safetensors")
        assert len(stats) == 300 and stats["std"].notna().all(), run_dir


def test_smoke_pipeline_writes_a_self_contained_report(smoke_run):
    report = smoke_run / "report"
    md = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    summary = md.split("\n## ", 1)[0]
    assert "z-score − raw" in summary and "95% interval" in summary and "teacher" in summary
    for section in ("Setup", "Results", "Figures", "Background", "Limitations", "Reproduce"):
        assert re.search(rf"^#+ .*{section}", md, re.M), section
    for table in ("Headline", "Comparison with the paper"):
        assert re.search(rf"^#+ .*{table}", md, re.M | re.I), table
    figures = sorted((report / "figures").glob("*.png"))
    assert len(figures) >= 5
    section = md.split("## Does the paper's explanation hold here?\n", 1)[1].split("\n## ", 1)[0]
    assert "| claim | paper | scope | statistic θ | θ (95% CI) | predicted | n | verdict |" in section
    claims = pd.read_csv(smoke_run / "results/tables/claims.csv")
    assert set(claims["claim"]) == {c.id for c in registered_claims()}  # every registered claim has its rows
    assert claims.set_index("claim").loc["teacher_size", "verdict"] == "not applicable"  # one teacher
    shift = claims[claims["claim"] == "logit_shift"]
    tested_arms = shift["verdict"] != "not applicable"  # an arm with no healthy student is named, not tested
    assert tested_arms.any() and (shift.loc[tested_arms, "unit"] == "seeds").all()
    assert shift.loc[~tested_arms, "evidence"].str.contains("no healthy").all()
    for name in ("logit_shift", "premise", "relations", "authentic_eval", "effective_temp"):
        assert f"](figures/claim_{name}.png)" in section, name
    runs = pd.read_csv(smoke_run / "results/tables/runs.csv")
    tested = runs[(runs["role"] == "distill") & (runs["status"] == "ok")]  # every healthy student, both stages
    assert len(pd.read_csv(smoke_run / "results/tables/claims_runs.csv")) == len(tested)
    for fig in figures:
        assert f"figures/{fig.name}" in md
    assert html.count("data:image/png;base64") >= len(figures)
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://|url\(\s*["']?https?://""", html)


def test_second_invocation_has_nothing_to_do(smoke_run):
    out = _snakemake(smoke_run, "-n", "--configfile", "configs/smoke.yaml")
    assert out.returncode == 0
    assert "Nothing to be done" in out.stdout + out.stderr


def test_snakemake_report_collects_figures_and_tables(smoke_run):
    out = _snakemake(smoke_run, "--report", "report/snakemake-report.html", "--configfile", "configs/smoke.yaml")
    assert out.returncode == 0, out.stderr[-2000:]
    page = (smoke_run / "report/snakemake-report.html").read_text()
    for item in ("accuracy_vs_temperature.png", "headline.csv", "claims.csv", "claim_logit_shift.png", "report.html",
                 "Figures", "Tables"):
        assert item in page, item


def _set(config: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for key in path:
        config = config[int(key)] if key.isdigit() else config[key]
    config[last] = value


@pytest.mark.parametrize("key,value,message", [
    ("grid.methods", ["kdd"], r"grid\.methods\[0\]: unknown method 'kdd' \(did you mean 'kd'\?\); registered: (\w+, )*kd, "),
    ("grid.temperatures", [-1], r"grid\.temperatures\[0\]: -1 is less than or equal to the minimum of 0"),
    ("pairs.0.student", "resnet8x5", r"pairs\[0\]\.student: unknown model 'resnet8x5'"),
    ("dataset.root", "/nonexistent/data", r"dataset\.root: Fashion-MNIST not found"),
])
def test_bad_config_stops_before_any_job(tmp_path, key, value, message):
    import yaml

    work = _copy_workflow(tmp_path)
    config = yaml.safe_load((work / "configs/smoke.yaml").read_text())
    _set(config, key, value)
    (work / "configs/bad.yaml").write_text(yaml.safe_dump(config))
    out = _snakemake(work, "--cores", "1", "--configfile", "configs/bad.yaml", timeout=120)
    assert out.returncode != 0
    assert re.search(message, out.stdout + out.stderr), (out.stdout + out.stderr)[-2000:]
    assert not (work / "results").exists()


def test_grouped_cells_match_the_ungrouped_pipeline(smoke_run, tmp_path):
    """execution.group_size > 1 trains a pair/seed/method's cells in one lockstep job: same numbers, fewer jobs.
    Checked on stage 1 and its selection (the smoke config groups; here every cell is its own job)."""
    import yaml

    work = _copy_workflow(tmp_path)
    config = yaml.safe_load((work / "configs/smoke.yaml").read_text())
    config["execution"]["group_size"] = 1
    config["grid"]["methods"] = methods = ["kd", "mlkd"]  # one-view and two-view methods: 8 cells alone
    (work / "configs/alone.yaml").write_text(yaml.safe_dump(config))
    dry = _snakemake(work, "-n", "--configfile", "configs/smoke.yaml")
    groups = len(_smoke_experiment().groups())  # one stage-1 job per method (pair, seed) in the smoke config
    assert re.search(rf"distill_group\s+{groups}\b", dry.stdout) and not re.search(r"^distill\s", dry.stdout, re.M)
    out = _snakemake(work, "results/tables/selection.csv", "--cores", "2", "--configfile", "configs/alone.yaml")
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"^distill\s+8\b", out.stdout + out.stderr, re.M)
    alone = pd.read_csv(work / "results/tables/selection.csv")
    grouped = pd.read_csv(smoke_run / "results/tables/selection.csv")
    grouped = grouped[grouped["method"].isin(methods)].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, grouped)
    import json

    cells = [p for m in methods for p in (smoke_run / "results/runs/cnn_w24d4__cnn_w8d3" / m).glob("*/*/seed0/metrics.json")]
    assert len(cells) == 8
    for cell_metrics in sorted(cells):
        twin = work / cell_metrics.relative_to(smoke_run)
        assert json.loads(twin.read_text()) == json.loads(cell_metrics.read_text()), cell_metrics
