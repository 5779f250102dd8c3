"""End to end: the smoke config through Snakemake in a temporary copy of the workflow."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from pipeline import HAS_FASHION_MNIST
from pipeline import copy_workflow as _copy_workflow
from pipeline import run_snakemake as _snakemake

pytestmark = pytest.mark.skipif(not HAS_FASHION_MNIST, reason="needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")


def test_smoke_pipeline_produces_every_table(smoke_run):
    tables = smoke_run / "results/tables"
    runs = pd.read_csv(tables / "runs.csv")
    # 1 teacher + 2 CE baselines + (kd, dkd, mlkd: 2 transforms x 2 temperatures + ctkd: 2 transforms) x 2 seeds
    assert len(runs) == 1 + 2 + (3 * 2 * 2 + 2) * 2
    assert set(runs["role"]) == {"teacher", "baseline", "distill"}
    assert runs[["last_top1", "best_top1"]].notna().all().all()
    for name in ("headline", "grid", "logit_summary", "logit_runs", "paper_comparison"):
        table = pd.read_csv(tables / f"{name}.csv")
        assert len(table) > 0, name
    headline = pd.read_csv(tables / "headline.csv")
    assert {"kd", "dkd", "ctkd", "mlkd"} <= set(headline["method"])
    from lskd.analysis import read_run_stats

    for run_dir in runs["run_dir"]:  # paths relative to the workflow's working directory
        stats = read_run_stats(smoke_run / run_dir / "logit_stats.safetensors")
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
    assert set(claims["claim"]) == {"logit_shift", "variance_match", "relations", "authentic_eval", "teacher_size",
                                    "effective_temp"}
    assert claims.set_index("claim").loc["teacher_size", "verdict"] == "not applicable"  # one teacher
    assert (claims.loc[claims["claim"] == "logit_shift", "unit"] == "seeds").all()
    for name in ("logit_shift", "variance_match", "relations", "authentic_eval", "effective_temp"):
        assert f"](figures/claim_{name}.png)" in section, name
    assert len(pd.read_csv(smoke_run / "results/tables/claims_runs.csv")) == (3 * 2 * 2 + 2) * 2
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
    ("grid.methods", ["kdd"], r"grid\.methods\[0\]: 'kdd' is not allowed \(did you mean 'kd'\?\); allowed: kd, dkd, ctkd, mlkd"),
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
    """execution.group_size > 1 trains a pair/seed/method's cells in one lockstep job: same numbers, fewer jobs."""
    import yaml

    work = _copy_workflow(tmp_path)
    config = yaml.safe_load((work / "configs/smoke.yaml").read_text())
    config["execution"]["group_size"] = 4
    (work / "configs/grouped.yaml").write_text(yaml.safe_dump(config))
    dry = _snakemake(work, "-n", "--configfile", "configs/grouped.yaml")
    assert re.search(r"distill_group\s+8\b", dry.stdout) and not re.search(r"^distill\s", dry.stdout, re.M)
    out = _snakemake(work, "results/tables/runs.csv", "--cores", "2", "--configfile", "configs/grouped.yaml")
    assert out.returncode == 0, out.stderr[-3000:]
    cols = ["run_dir", "last_top1", "best_top1", "last_nll", "last_ece", "best_epoch"]
    grouped = pd.read_csv(work / "results/tables/runs.csv")[cols].set_index("run_dir").sort_index()
    alone = pd.read_csv(smoke_run / "results/tables/runs.csv")[cols].set_index("run_dir").sort_index()
    pd.testing.assert_frame_equal(grouped, alone)
