"""Per-sample logit statistics, per-run summaries and result tables.

Public API::

    from lskd.analysis import (collect_runs, run_logit_stats, write_run_stats, read_run_stats, run_summary,
                               headline_table, grid_table, logit_summary_table, paper_comparison)
    runs = collect_runs(run_dirs)                 # one row per finished run folder
    headline_table(runs)                          # raw vs z-score, selected setting, paired Δ with bootstrap CI
    grid_table(runs)                              # temperature × kd_weight
    logit_summary_table([run_summary(d) for d in distill_dirs], level="setting")
    paper_comparison(runs)                        # ours (best & last epoch) next to the paper's numbers
    paper_points(runs, config)                    # each official setting: paper, official log, ours at that point
"""

from lskd.analysis.collect import RUN_COLUMNS, collect_runs, read_run, resolve_teacher_dir, sort_runs
from lskd.analysis.logit_stats import (
    BASIC_COLUMNS,
    PAIR_COLUMNS,
    per_sample_stats,
    read_run_stats,
    rowwise_kendall,
    rowwise_pearson,
    rowwise_spearman,
    run_logit_stats,
    run_summary,
    summarize_stats,
    teacher_stats,
    write_run_stats,
    write_stats_table,
)
from lskd.analysis.paper import (
    PAPER_PROTOCOL,
    paper_ablation,
    paper_main_rows,
    paper_results,
    paper_teachers,
    to_paper_model,
)
from lskd.analysis.stats import BootstrapCI, fmt_ci, fmt_mean_std, mean_std_n, paired_bootstrap_ci
from lskd.analysis.tables import (
    LOGIT_METRICS,
    POINT_COLUMNS,
    SELECTION_NOTE,
    grid_table,
    headline_table,
    logit_summary_table,
    paper_ablation_comparison,
    paper_comparison,
    paper_context_table,
    paper_points,
    paper_points_table,
    selected_runs,
    t_interval,
)

__all__ = [
    "BASIC_COLUMNS", "LOGIT_METRICS", "PAIR_COLUMNS", "PAPER_PROTOCOL", "POINT_COLUMNS", "RUN_COLUMNS",
    "SELECTION_NOTE", "BootstrapCI", "collect_runs", "fmt_ci", "fmt_mean_std", "grid_table", "headline_table",
    "logit_summary_table", "mean_std_n", "paired_bootstrap_ci", "paper_ablation", "paper_ablation_comparison",
    "paper_comparison", "paper_context_table", "paper_main_rows", "paper_points", "paper_points_table",
    "paper_results", "paper_teachers", "per_sample_stats", "read_run", "read_run_stats", "resolve_teacher_dir",
    "rowwise_kendall", "rowwise_pearson", "rowwise_spearman", "run_logit_stats", "run_summary", "selected_runs",
    "sort_runs", "summarize_stats", "t_interval", "teacher_stats", "to_paper_model", "write_run_stats",
    "write_stats_table",
]
