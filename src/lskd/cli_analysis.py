"""``lskd`` commands of the analysis stages: per-run logit statistics, the runs table, result tables, report.

Each is a thin wrapper over :mod:`lskd.analysis` / :mod:`lskd.report`; the workflow's analysis rules call them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

STATS_FILE = "logit_stats.safetensors"
TABLES = ("headline", "grid", "logit_summary", "logit_runs", "paper_comparison")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logit-stats", help="per-sample logit statistics of a finished run (vs its teacher)")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--out", type=Path, help=f"output file (default RUN/{STATS_FILE})")
    p = sub.add_parser("collect", help="one row per finished run: metrics, labels, timing -> CSV")
    p.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    p.add_argument("--out", type=Path, required=True, help="CSV to write (e.g. results/tables/runs.csv)")
    p = sub.add_parser("tables", help="headline, temperature x KD-weight grid, logit statistics, paper comparison")
    p.add_argument("--runs-csv", type=Path, required=True, help="the table written by `lskd collect`")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for the CSV tables")
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples for the paired intervals")
    p = sub.add_parser("bench", help="measure the engine against a per-cell reference loop, grouping and z-score cost")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--teacher-model", default="cnn_w24d4")
    p.add_argument("--student", default="cnn_w8d3")
    p.add_argument("--train-subset", type=int, default=10_000, help="images per epoch in every measurement")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, help="write the table as CSV")
    p = sub.add_parser("report", help="figures and the Markdown + self-contained HTML report")
    p.add_argument("--results", type=Path, required=True, help="results folder (runs/ and tables/)")
    p.add_argument("--config", type=Path, help="the workflow config (YAML), validated")
    p.add_argument("--config-json", help="the validated config as JSON (used by the workflow)")
    p.add_argument("--out-dir", type=Path, required=True, help="report folder (report.md, report.html, figures/)")
    p.add_argument("--command", dest="reproduce", default="snakemake --cores all",
                   help="the command shown under 'Reproduce'")


def ensure_stats(run_dir: Path, teacher_dir: str | None = None) -> Path:
    """The run's per-sample statistics file, (re)computed when missing or older than the logits it is built
    from. One process computes them for every run (in ``lskd tables``): a job per run would spend most of its
    time importing torch."""
    from lskd.analysis import write_run_stats

    out = run_dir / STATS_FILE
    sources = [run_dir / "test_logits.safetensors"]
    if isinstance(teacher_dir, str) and teacher_dir:
        sources.append(Path(teacher_dir) / "test_logits.safetensors")
    newest = max(p.stat().st_mtime_ns for p in sources if p.exists())
    if not out.exists() or out.stat().st_mtime_ns < newest:
        write_run_stats(run_dir, out)
    return out


def _bench(args: argparse.Namespace) -> int:
    from lskd.bench import BenchConfig, run_bench
    from lskd.engine.io import write_text
    from lskd.engine.provenance import provenance

    cfg = BenchConfig(dataset=args.dataset, teacher=args.teacher_model, student=args.student,
                      train_subset=args.train_subset, batch_size=args.batch_size, threads=args.threads)
    table = run_bench(cfg)
    hw = provenance()["hardware"]
    print(f"lskd bench on {hw['cpu']} ({hw['cpu_count']} CPUs, torch threads {args.threads}, GPUs: {hw['gpus'] or 'none'})")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        write_text(args.out, table.to_csv(index=False))
    return 0


def _logit_stats(args: argparse.Namespace) -> int:
    from lskd.analysis import write_run_stats

    out = write_run_stats(args.run, args.out or args.run / STATS_FILE)
    print(out)
    return 0


def _collect(args: argparse.Namespace) -> int:
    from lskd.analysis import collect_runs
    from lskd.engine.io import write_text

    runs = collect_runs(args.runs)
    write_text(args.out, runs.to_csv(index=False))
    print(f"{len(runs)} runs -> {args.out}", file=sys.stderr)
    return 0


def _tables(args: argparse.Namespace) -> int:
    import pandas as pd

    from lskd.analysis import grid_table, headline_table, logit_summary_table, paper_comparison, run_summary
    from lskd.engine.io import write_text

    runs = pd.read_csv(args.runs_csv)
    summaries = []
    for record in runs.to_dict("records"):
        stats = ensure_stats(Path(record["run_dir"]), record.get("teacher_dir"))
        if record["role"] == "distill":
            summaries.append(run_summary(record["run_dir"], stats, record))
    tables = {
        "headline": headline_table(runs, n_boot=args.n_boot),
        "grid": grid_table(runs),
        "logit_summary": logit_summary_table(summaries, level="setting") if summaries else pd.DataFrame(),
        "logit_runs": logit_summary_table(summaries, level="run") if summaries else pd.DataFrame(),
        "paper_comparison": paper_comparison(runs),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_text(args.out_dir / f"{name}.csv", table.to_csv(index=False))
        print(f"{name}: {len(table)} rows -> {args.out_dir / f'{name}.csv'}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from lskd.report import build_report

    if args.config_json:
        config = json.loads(args.config_json)
    elif args.config:
        from lskd.workflow import load_config

        schema = Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml"
        config = load_config(args.config, schema, check_data=False)
    else:
        raise SystemExit("lskd report: give --config or --config-json")
    md, html = build_report(args.results, args.out_dir, config, command=args.reproduce)
    print(f"{md}\n{html}")
    return 0


COMMANDS = {"bench": _bench, "logit-stats": _logit_stats, "collect": _collect, "tables": _tables, "report": _report}
