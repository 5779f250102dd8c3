"""``lskd`` commands of the analysis stages: per-run logit statistics, the runs table, result tables, report.

Each is a thin wrapper over :mod:`lskd.analysis` / :mod:`lskd.report`; the workflow's analysis rules call them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lskd.layout import CLAIM_TABLES, read_runs, results_of, store_paths
from lskd.layout import STATS as STATS_FILE


def _floats(text: str) -> list[float]:
    """``"4.2,1.8,-0.3"`` → ``[4.2, 1.8, -0.3]`` (commas and/or spaces)."""
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from err


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logit-stats", help="per-sample logit statistics of a finished run (vs its teacher)")
    p.add_argument("run", type=Path, help="finished run folder")
    p.add_argument("--out", type=Path, help=f"output file (default RUN/{STATS_FILE})")
    p = sub.add_parser("collect", help="one row per finished run: metrics, labels, timing -> CSV")
    p.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    p.add_argument("--out", type=Path, required=True, help="CSV to write (e.g. results/tables/runs.csv)")
    p.add_argument("--not-converged-share", type=_share, default="default",
                   help="the run-health check's not-converged threshold (the config's health.not_converged_share; "
                        "'none' switches the check off; default: lskd.analysis.health.NOT_CONVERGED_SHARE)")
    p = sub.add_parser("select", help="stage 1 -> 2 of the validation protocol: each arm's setting chosen on the "
                       "validation split (reads only the stage-1 cells' metrics.json)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--config", type=Path, help="the workflow config (YAML), validated")
    g.add_argument("--config-json", help="the validated config as JSON (used by the workflow)")
    p.add_argument("--out", type=Path, required=True, help="CSV to write (e.g. results/tables/selection.csv)")
    p = sub.add_parser("tables", help="headline, temperature x KD-weight grid, logit statistics, paper comparison")
    p.add_argument("--runs-csv", type=Path, required=True, help="the table written by `lskd collect`")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for the CSV tables")
    p.add_argument("--config", type=Path, help="the workflow config (YAML), validated: with it (or --config-json) "
                   "official.csv compares each official setting with its cells; without, it is not written")
    p.add_argument("--config-json", help="the validated config as JSON (used by the workflow)")
    p.add_argument("--smallest-effect", type=float,
                   help="smallest effect of interest δ of the headline verdicts, points of top-1 (default: the "
                        "config's analysis.smallest_effect, else lskd.analysis.inference.DEFAULT_SMALLEST_EFFECT)")
    p = sub.add_parser("claims", help="audit the paper's explanation on the runs: every registered claim "
                       "(lskd.claims; $LSKD_PLUGINS may add more)")
    p.add_argument("--runs-csv", type=Path, required=True, help="the table written by `lskd collect`")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for claims.csv and claims_runs.csv")
    p.add_argument("--config-json", help="the validated config as JSON (used by the workflow): its "
                   "analysis.smallest_effect is δ of the claims on accuracy")
    p.add_argument("--smallest-effect", type=float, help="δ, points of top-1 (overrides the config's)")
    p.add_argument("--n-boot-samples", type=int, default=2_000,
                   help="bootstrap resamples over test samples (teacher_size: one unit per teacher)")
    p = sub.add_parser("primer", help="plot softmax probabilities against the class for several temperatures",
                       description="The classic temperature plot, from logits on the command line or from a trained "
                       "run's test sample (with the dataset's class names). Logits starting with a minus sign "
                       "need the = form: --logits=-1.5,2,0.3")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--logits", type=_floats, help="comma-separated logits, e.g. 4.2,1.8,0.5,-0.3")
    src.add_argument("--run", type=Path, help="a finished run folder (e.g. a teacher): use one of its test samples")
    p.add_argument("--sample", type=int, help="test-sample index for --run (default: a correctly classified "
                   "sample with top probability near 0.8)")
    p.add_argument("--classes", help="comma-separated class names for --logits (default: 0 … K-1)")
    p.add_argument("--temperatures", type=_floats, default=[0.5, 1.0, 2.0, 5.0], help="default 0.5,1,2,5")
    p.add_argument("--zscore", action="store_true", help="add the z-score standardized logits and their softmax")
    p.add_argument("--confidence", action="store_true", help="show the top probability per temperature in the legend")
    p.add_argument("--std", choices=("unbiased", "population"), default="unbiased",
                   help="z-score std convention: unbiased (official code) or population (paper's Algorithm 1)")
    p.add_argument("--max-classes", type=int, default=10, help="with more classes, show the largest logits only")
    p.add_argument("-o", "--out", type=Path, default=Path("primer.png"), help="output image (.png, .svg, .pdf)")
    p = sub.add_parser("bench", help="measure the engine against a per-cell reference loop, grouping and z-score cost")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--teacher-model", default="cnn_w24d4")
    p.add_argument("--student", default="cnn_w8d3")
    p.add_argument("--train-subset", type=int, default=10_000, help="images per epoch in every measurement")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, help="write the table as CSV")
    p = sub.add_parser("gpu-check", help="on a GPU machine: the smoke config on the GPU, throughput (fp32/bf16, "
                       "DataLoader/on-device) with grid-time estimates, a 2-GPU DDP run (lskd.gpucheck)")
    p.add_argument("--out", type=Path, default=Path("gpu_check"), help="folder for gpu_check.json/.csv, smoke/, "
                   "throughput/ and ddp/ (those three are replaced)")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (tests)")
    p.add_argument("--parts", help="comma list of env,smoke,throughput,ddp (default all; with --quick all but smoke)")
    p.add_argument("--train-images", type=int, help="images per epoch in the throughput part (default 10000)")
    p.add_argument("--epochs", type=int, help="epochs per measurement, the last one timed (default 2)")
    p.add_argument("--jobs-per-gpu", type=int, help="training jobs sharing a GPU in the smoke run (default 4)")
    p.add_argument("--repo", type=Path, help="repository root (default: the checkout of the editable install)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (32 images, 1 epoch, groups of 2): tests, CPU")
    p = sub.add_parser("readme-block", help="keep a run's quoted tables (headline, runs, claims) and print the "
                       "README's account of it, generated from them")
    p.add_argument("results", help="the run's results folder (holds tables/)")
    p.add_argument("--out", default="report/default", help="where to keep the tables and run.json")
    p.add_argument("--wall-seconds", type=float, help="the pipeline's measured wall time, quoted in the account")
    p.add_argument("--readme", help="also replace the account block in this README")
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
    from lskd.layout import logits_path, run_split

    out = run_dir / STATS_FILE
    split = run_split(run_dir)
    sources = [logits_path(run_dir, split)]
    if isinstance(teacher_dir, str) and teacher_dir:
        sources.append(logits_path(teacher_dir, split))
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


def _gpu_check(args: argparse.Namespace) -> int:
    from lskd.gpucheck import main

    return main(args)


def _logit_stats(args: argparse.Namespace) -> int:
    from lskd.analysis import write_run_stats

    out = write_run_stats(args.run, args.out or args.run / STATS_FILE)
    print(out)
    return 0


def _collect(args: argparse.Namespace) -> int:
    from lskd.analysis import collect_runs
    from lskd.analysis.health import NOT_CONVERGED_SHARE
    from lskd.engine.io import write_text

    share = NOT_CONVERGED_SHARE if args.not_converged_share == "default" else args.not_converged_share
    runs = store_paths(collect_runs(args.runs, not_converged_share=share), results_of(args.out))  # folders relative to the results folder
    write_text(args.out, runs.to_csv(index=False))
    print(f"{len(runs)} runs -> {args.out}", file=sys.stderr)
    return 0


def _share(text: str) -> float | str | None:
    """``--not-converged-share``: a number in [0, 1], or ``none`` (the check off)."""
    if text in ("none", "default"):
        return None if text == "none" else text
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1] or 'none', got {text}")
    return value


def _config(args: argparse.Namespace) -> dict | None:
    """The config of ``--config-json`` (already validated by the workflow) or ``--config`` (validated here)."""
    if args.config_json:
        return json.loads(args.config_json)
    if args.config:
        from lskd.workflow import SCHEMA, load_config

        return load_config(args.config, SCHEMA, check_data=False)
    return None


def _select(args: argparse.Namespace) -> int:
    from lskd.analysis.health import configured_share, is_healthy
    from lskd.analysis.selection import SelectionError, read_stage1, select_settings
    from lskd.engine.io import write_text
    from lskd.workflow import Experiment

    exp = Experiment(_config(args))
    if not exp.validation:
        raise SystemExit("lskd select: the config selects on the test set (protocol.selection: test); the "
                         "validation protocol's selection needs protocol.selection: validation")
    try:
        selection = select_settings(read_stage1(exp.cells(), exp.results,
                                                not_converged_share=configured_share(exp.config)))
    except SelectionError as err:
        raise SystemExit(f"lskd select: {err}") from None
    write_text(args.out, selection.to_csv(index=False))
    for row in selection.itertuples(index=False):
        chosen = (f"T {row.temperature if row.temperature == row.temperature else 'learned'} w {row.kd_weight:g}: "
                  f"val top-1 {row.val_top1_mean:.2f}% (n={row.n_seeds})" if is_healthy(row.status) else row.status)
        print(f"{row.teacher} → {row.student} {row.method} {row.transform}: {chosen} "
              f"[{row.n_healthy_settings}/{row.n_settings} settings healthy]", file=sys.stderr)
    return 0


def _tables(args: argparse.Namespace) -> int:

    from lskd.analysis import (
        grid_table,
        headline_table,
        logit_summary_table,
        paper_comparison,
        paper_points,
        run_summary,
    )
    from lskd.analysis.health import DIVERGED, HEALTHY, is_healthy
    from lskd.analysis.inference import read_correct
    from lskd.workflow.config import smallest_effect

    runs = read_runs(args.runs_csv)
    config = _config(args)
    delta = smallest_effect(config) if args.smallest_effect is None else args.smallest_effect
    summaries = []
    finished = runs[runs["status"] != DIVERGED] if "status" in runs else runs
    for record in finished.to_dict("records"):  # a diverged run has no logits; an unhealthy one is not summarised
        stats = ensure_stats(Path(record["run_dir"]), record.get("teacher_dir"))
        if (record["role"] == "distill" and record.get("stage", "sweep") != "confirm"
                and is_healthy(record.get("status", HEALTHY))):
            summaries.append(run_summary(record["run_dir"], stats, record))
    tables = {
        "headline": headline_table(runs, smallest_effect=delta, correct=read_correct),
        "grid": grid_table(runs),
        "logit_summary": logit_summary_table(summaries, level="setting"),
        "logit_runs": logit_summary_table(summaries, level="run"),
        "paper_comparison": paper_comparison(runs),
        **_diagnostics(runs),
    }
    if config is not None:
        tables["official"] = paper_points(runs, config)
    else:
        print("official: not written (give --config or --config-json)", file=sys.stderr)
    _write_tables(args.out_dir, tables)
    return 0


def _diagnostics(runs) -> dict:
    """The ``diagnostics`` and ``per_class`` tables of the headline's runs (:mod:`lskd.analysis.diagnostics`)."""
    from lskd.analysis import selected_runs
    from lskd.analysis.diagnostics import dataset_class_names, diagnostics_table, per_class_table, read_run_eval
    from lskd.analysis.tables import protocol_of

    selected, cache = selected_runs(runs), {}

    def load(run_dir: str):
        return cache[run_dir] if run_dir in cache else cache.setdefault(run_dir, read_run_eval(run_dir))

    return {"diagnostics": diagnostics_table(runs, selected, protocol=protocol_of(runs), load=load),
            "per_class": per_class_table(selected, load=load, class_names=dataset_class_names)}


def _write_tables(out_dir: Path, tables: dict) -> None:
    """Write each table as ``out_dir/<name>.csv``, run folders stored relative to the results folder above it."""
    from lskd.engine.io import write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_text(out_dir / f"{name}.csv", store_paths(table, out_dir.resolve().parent).to_csv(index=False))
        print(f"{name}: {len(table)} rows -> {out_dir / f'{name}.csv'}", file=sys.stderr)


def _claims(args: argparse.Namespace) -> int:

    from lskd.analysis.health import healthy_mask
    from lskd.claims import AuditConfig, audit_runs

    runs = read_runs(args.runs_csv)
    if "status" in runs:  # the explanation is tested on healthy runs only. Under the validation protocol the
        # reported students are stage 2's (test set); stage 1's share no seed with them, so a per-seed statistic
        # never mixes the validation split with the test set.
        runs = runs[healthy_mask(runs["status"])]
    for record in runs.to_dict("records"):
        ensure_stats(Path(record["run_dir"]), record.get("teacher_dir"))
    from lskd.workflow.config import smallest_effect

    delta = smallest_effect(json.loads(args.config_json) if args.config_json else None)
    delta = delta if args.smallest_effect is None else args.smallest_effect
    claims, per_run = audit_runs(runs, AuditConfig(smallest_effect=delta, n_boot_samples=args.n_boot_samples))
    _write_tables(args.out_dir, dict(zip(CLAIM_TABLES, (claims, per_run))))
    for row in claims.itertuples(index=False):
        scope = " → ".join(x for x in (row.teacher, row.student) if x) + (f", {row.method}" if row.method else "")
        print(f"{row.title} ({row.paper}) [{scope}]: {row.verdict}", file=sys.stderr)
    return 0


def _primer_source(args: argparse.Namespace) -> tuple[list[float], list[str] | None, int | None, str | None]:
    """(logits, class names, true class, title) from ``--logits``/``--classes`` or ``--run``/``--sample``."""
    if args.logits is not None:
        names = [c.strip() for c in args.classes.split(",")] if args.classes else None
        if names is not None and len(names) != len(args.logits):
            raise SystemExit(f"lskd primer: {len(names)} class names for {len(args.logits)} logits")
        return args.logits, names, None, None
    from lskd.analysis.diagnostics import dataset_class_names
    from lskd.engine.io import read_json, read_tensors
    from lskd.report.figures_primer import pick_sample

    path = args.run / "test_logits.safetensors"
    if not path.exists():
        raise SystemExit(f"lskd primer: {path} not found (is {args.run} a finished run?)")
    tensors = read_tensors(path)
    logits, targets = tensors["logits"].double().numpy(), tensors["targets"].long().numpy()
    i = pick_sample(logits, targets) if args.sample is None else args.sample
    if not 0 <= i < len(logits):
        raise SystemExit(f"lskd primer: --sample {i} out of range (0 … {len(logits) - 1})")
    spec = read_json(args.run / "spec.json")["spec"]
    names = dataset_class_names(spec["data"]["name"], logits.shape[1])
    y = int(targets[i])
    title = f"{spec['model']}, {spec['data']['name']} test sample #{i} (true class '{names[y]}')"
    return logits[i].tolist(), names, y, title


def _primer(args: argparse.Namespace) -> int:
    from lskd.report.figures_common import plot_style
    from lskd.report.figures_primer import draw_primer

    logits, names, true_class, title = _primer_source(args)
    try:
        with plot_style():
            primer = draw_primer(logits, class_names=names, temperatures=args.temperatures, zscore=args.zscore,
                                 confidence=args.confidence, true_class=true_class, max_classes=args.max_classes,
                                 std=args.std, title=title)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            primer.figure.savefig(args.out, dpi=130, metadata={"Software": None} if args.out.suffix == ".png" else None)
    except ValueError as err:
        raise SystemExit(f"lskd primer: {err}") from err
    label = names or [str(i) for i in range(len(logits))]
    best = label[int(max(range(len(logits)), key=lambda k: logits[k]))]
    if title:
        print(title)
    print(f"top class '{best}'; max probability " + ", ".join(f"{p:.3f} at T={t:g}" for t, p in primer.top.items()))
    if primer.top_zscore is not None:
        print("after z-score: " + ", ".join(f"{p:.3f} at τ={t:g}" for t, p in primer.top_zscore.items()))
    print(args.out)
    return 0


def _report(args: argparse.Namespace) -> int:
    from lskd.report import build_report

    config = _config(args)
    if config is None:
        raise SystemExit("lskd report: give --config or --config-json")
    md, html = build_report(args.results, args.out_dir, config, command=args.reproduce)
    print(f"{md}\n{html}")
    return 0


def _readme_block(args: argparse.Namespace) -> int:
    from lskd.report.readme_block import keep_run, replace_block

    account = keep_run(args.results, args.out, args.wall_seconds)
    if args.readme:
        path = Path(args.readme)
        path.write_text(replace_block(path.read_text(), account))
    print(account)
    return 0


COMMANDS = {"readme-block": _readme_block, "bench": _bench, "logit-stats": _logit_stats, "collect": _collect, "select": _select, "tables": _tables,
            "claims": _claims, "gpu-check": _gpu_check,
            "primer": _primer, "report": _report}
