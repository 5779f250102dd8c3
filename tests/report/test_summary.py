"""The summary figure and the report's opening, drawn from synthetic tables (no training)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lskd.report.figures_common import Results, plot_style
from lskd.report.figures_summary import paper_gains, summary
from lskd.report.render import verdict_lines

PAIR = {"dataset": "d", "teacher": "t", "student": "s"}


def _results(tmp_path, *, paper: pd.DataFrame | None = None) -> Results:
    head = pd.DataFrame([
        {**PAIR, "method": "kd", "transform": "none", "diff_last_mean": np.nan},
        {**PAIR, "method": "kd", "transform": "zscore", "diff_last_mean": 1.2, "diff_last_lo": 0.8,
         "diff_last_hi": 1.6, "diff_n": 3, "delta": 0.5, "verdict": "better", "p_verdict_holm": 0.01,
         "protocol": "validation"},
        {**PAIR, "method": "dkd", "transform": "zscore", "diff_last_mean": -0.1, "diff_last_lo": -0.3,
         "diff_last_hi": 0.1, "diff_n": 3, "delta": 0.5, "verdict": "equivalent", "p_verdict_holm": 0.02,
         "protocol": "validation"},
    ])
    diag = pd.DataFrame([{**PAIR, "method": m, "transform": "none", "gain_ce_mean": g, "gain_ce_lo": g - 1,
                          "gain_ce_hi": g + 1} for m, g in (("kd", 3.0), ("dkd", 2.0))])
    runs = pd.DataFrame([{**PAIR, "role": "distill", "method": m, "transform": "none"} for m in ("kd", "dkd")])
    tables = {"headline": head, "diagnostics": diag}
    if paper is not None:
        tables["paper_comparison"] = paper
    return Results(tmp_path, {"grid": {"methods": ["kd", "dkd"]}}, runs, tables)


def test_summary_figure_from_a_synthetic_headline(tmp_path):
    with plot_style():
        fig = summary(_results(tmp_path), tmp_path)
    assert fig is not None and fig.path.exists() and fig.name == "summary"
    assert "KD +1.20 [+0.80, +1.60]; DKD -0.10 [-0.30, +0.10]" in fig.caption
    assert "KD +3.00 [+2.00, +4.00]" in fig.caption and "±δ = ±0.50" in fig.caption
    assert "1 of 2 LS − raw intervals lie wholly outside it" in fig.caption
    assert "No setting of this config matches a paper setting" in fig.caption


def test_paper_gains_overlaid_where_the_config_matches(tmp_path):
    paper = pd.DataFrame([{**PAIR, "method": "kd", "transform": t, "paper_top1": v, "paper_student_top1": 70.0,
                           "table": "comparison: ours vs the paper"} for t, v in (("none", 73.0), ("zscore", 74.5))])
    res = _results(tmp_path, paper=paper)
    gains = paper_gains(res).iloc[0]
    assert gains["paper_ls"] == 1.5 and gains["paper_ce"] == 3.0
    with plot_style():
        fig = summary(res, tmp_path)
    assert "White diamonds: the paper's gains" in fig.caption


def test_opening_verdict_lines_name_protocol_n_and_delta(tmp_path):
    lines = verdict_lines(_results(tmp_path))
    assert len(lines) == 2
    assert lines[0].startswith("KD + LS vs raw logits (validation protocol, n = 3 seeds, δ = 0.50 points)")
    assert "better by more than 0.50" in lines[0] and "equivalent within ±0.50" in lines[1]
