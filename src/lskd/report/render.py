"""The paper-style report: ``report.md`` (figures as ``figures/<name>.png``) and a self-contained
``report.html`` (figures embedded as base64 data URIs, inline CSS, no external reference).

Markdown comes from the jinja2 template ``templates/report.md.j2`` (loaded with :class:`jinja2.PackageLoader`,
so it works from an installed package); every plain value put into it is HTML-escaped, so a config title or a
class name cannot inject markup into the HTML, which ``markdown`` (extension ``tables``) renders from it.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import markdown
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from lskd.analysis import PAPER_PROTOCOL, SELECTION_NOTE, paper_context_table
from lskd.analysis.formatting import fmt_interval, fmt_num, is_missing
from lskd.analysis.health import HEALTHY, MEANINGS, healthy_mask, is_healthy
from lskd.analysis.inference import DESCRIPTIVE, MIN_SEEDS, fmt_p
from lskd.analysis.official import official_settings
from lskd.analysis.tables import NO_HEALTHY, NO_HEALTHY_CONFIRM
from lskd.claims import CLAIMS, VERDICTS
from lskd.claims.plots import claims_tables
from lskd.engine.io import write_text
from lskd.report.figures import CLAIM_PREFIX, draw_figures
from lskd.report.figures_accuracy import SPLIT_NAMES, column, grid_runs
from lskd.report.figures_common import (
    PAIR,
    Figure,
    Results,
    load_results,
    method_label,
    pair_mask,
    transform_label,
)
from lskd.report.run_health import health_context

#: Top-level sections of the report, in order (after the title and the summary paragraph).
CLAIMS_SECTION = "Does the paper's explanation hold here?"
SECTIONS = ("Background", "Setup", "Results", CLAIMS_SECTION, "Limitations", "Reproduce")
#: The figure drawn in the Background section; the other general ones go under Results.
PRIMER = "logit_primer"
#: The figure the report opens with (Figure 1, before everything else).
OPENING = "summary"
#: How settings were selected, when ``headline.csv`` has no ``selection`` column (tables of an older version).
SELECTION_FALLBACK = {
    "paper": SELECTION_NOTE,
    "validation": "(temperature, kd_weight) with the highest mean last-epoch validation top-1 over the stage-1 "
                  "seeds, retrained with fresh seeds and evaluated on the test set (stage 2)",
}
#: Logit-summary columns shown: (column stem in ``logit_summary.csv``, header, digits).
LOGIT_COLUMNS = (
    ("top1_agree", "top-1 agrees with teacher (%)", 1), ("student_std", "student logit std", 2),
    ("teacher_std", "teacher logit std", 2), ("std_ratio", "std ratio", 2), ("shift_abs", "abs. shift", 2),
    ("pearson", "Pearson", 3), ("kendall", "Kendall", 3), ("kl_T", "KL at T", 3),
    ("kl_T_zscore", "KL at τ, z-scored", 3), ("ece", "ECE (%)", 1),
)


# ---------------------------------------------------------------------------------------------- text helpers
def md_escape(value: Any) -> str:
    """Text safe for Markdown that becomes HTML: ``& < >`` as entities and ``[ ]`` backslash-escaped, so a value
    cannot open a tag, a link or an image (pre-rendered ``Markup`` passes as is)."""
    if isinstance(value, Markup):
        return str(value)
    return html.escape("" if value is None else str(value), quote=False).replace("[", "\\[").replace("]", "\\]")


def md_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> Markup:
    """A Markdown table; cells are escaped (``|`` too) and missing values left empty."""
    def cell(v: Any) -> str:
        text = "" if is_missing(v) else str(v)
        return md_escape(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return Markup("\n".join(lines))


def _pair(row: Any) -> str:
    return f"{row['teacher']} → {row['student']}"


def _temperature(row: Any) -> str:
    if is_missing(row["temperature"]):
        t = row.get("effective_temperature_mean", row.get("effective_temperature"))
        return f"learned ({fmt_num(t, 1, fixed=True)})" if not is_missing(t) else "learned"
    return fmt_num(row["temperature"])


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 120 else f"{int(minutes // 60)} h {int(minutes % 60):02d} min"


def _items(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(d.items()))


# ---------------------------------------------------------------------------------------------- tables
def _status_cell(row: Any) -> str:
    """``ok``, ``no healthy setting``, … with the number of unhealthy runs of the arm when there are any."""
    status = str(row["status"])
    n = 0 if is_missing(row["n_unhealthy"]) else int(row["n_unhealthy"])
    if not n:
        return status
    return f"{status} ({_plural(n, 'unhealthy run')}{' left out' if is_healthy(status) else ''})"


def _with_defaults(df: pd.DataFrame, defaults: dict[str, Any]) -> pd.DataFrame:
    """``df`` with each column of ``defaults`` present and its empty cells filled (tables written before the
    column existed)."""
    return df.assign(**{name: column(df, name, value) for name, value in defaults.items()})


def _verdict_cell(row: Any) -> str:
    """``"equivalent (δ 0.50, Holm p 0.030)"``, ``"descriptive (n < 3)"``; empty without a comparison (or in a
    headline written before verdicts existed)."""
    label = row.get("verdict")
    if is_missing(label) or not str(label):
        return ""
    if label == DESCRIPTIVE:
        return f"{label} (n < {MIN_SEEDS})"
    return f"{label} (δ {fmt_num(row.get('delta'), fixed=True)}, Holm p {fmt_p(float(row.get('p_verdict_holm', float('nan'))))})"


def headline_md(df: pd.DataFrame) -> Markup:
    """The headline table: one row per arm with its setting, accuracies, paired differences (t intervals), the
    verdict against the smallest effect of interest, the per-seed McNemar summary and the status."""
    df = _with_defaults(df, {"status": HEALTHY, "n_unhealthy": 0, "verdict": "", "mcnemar": ""})
    header = ["pair", "method", "logits", "T", "w", "settings", "n", "last top-1", "best top-1",
              "vs raw, last [95% t CI]", "vs raw, best [95% t CI]", "verdict", "McNemar per seed", "status"]
    rows = []
    for _, r in df.iterrows():
        ok = is_healthy(r["status"])
        rows.append([_pair(r), method_label(r["method"]), transform_label(r["transform"]),
                     _temperature(r) if ok else "—", fmt_num(r["kd_weight"]) if ok else "—", r["n_settings"],
                     r["n"], r["last_top1"] if ok else "—", r["best_top1"] if ok else "—", r.get("diff_last"),
                     r.get("diff_best"), _verdict_cell(r), r.get("mcnemar"), _status_cell(r)])
    return md_table(rows, header)


def references_md(runs: pd.DataFrame) -> Markup:
    rows = []
    for role in ("teacher", "baseline"):
        sub = runs[runs["role"] == role]
        for model, g in sub.groupby("model", sort=True):
            last, best = g["last_top1"], g["best_top1"]
            spread = lambda s: f" ± {s.std(ddof=1):.2f}" if len(s) > 1 else ""  # noqa: E731
            rows.append(["teacher" if role == "teacher" else "CE-trained student", model,
                         f"{int(g['num_params'].iloc[0]):,}" if not is_missing(g["num_params"].iloc[0]) else "",
                         len(g), f"{last.mean():.2f}{spread(last)}", f"{best.mean():.2f}{spread(best)}"])
    return md_table(rows, ["role", "model", "parameters", "n", "last top-1", "best top-1"])


def _accuracy_or_status(value: Any, status: str) -> Any:
    """A grid accuracy, or the cell's status where a diverged cell has no number."""
    return status if (is_missing(value) or str(value) == "") and not is_healthy(status) else value


def grid_md(df: pd.DataFrame) -> Markup:
    """The temperature × KD-weight grid, one row per cell; the accuracy headers name the split (``val``) they
    were measured on, and a ``split`` column appears only when cells differ."""
    df = _with_defaults(df, {"split": "test", "status": HEALTHY})
    splits = sorted(set(df["split"].astype(str)))
    name = "val " if splits == ["val"] else ""
    header = ["pair", "method", "logits", "T", "w", "n", f"last {name}top-1", f"best {name}top-1", "status",
              "reported"]
    rows = [[_pair(r), method_label(r["method"]), transform_label(r["transform"]), _temperature(r),
             fmt_num(r["kd_weight"]), r["n"], _accuracy_or_status(r["last_top1"], r["status"]),
             _accuracy_or_status(r["best_top1"], r["status"]), r["status"],
             "✓" if str(r["selected"]).lower() == "true" else ""] for _, r in df.iterrows()]
    if len(splits) > 1:
        header.insert(6, "split")
        for row, split in zip(rows, df["split"]):
            row.insert(6, split)
    return md_table(rows, header)


def logit_md(df: pd.DataFrame) -> Markup:
    shown = [(f"{c}_mean" if f"{c}_mean" in df else c, h, d) for c, h, d in LOGIT_COLUMNS]
    shown = [(c, h, d) for c, h, d in shown if c in df]
    rows = [[_pair(r), method_label(r["method"]), transform_label(r["transform"]), _temperature(r),
             fmt_num(r["kd_weight"]), r.get("n", 1), *(fmt_num(r[c], d, fixed=True) for c, _, d in shown)]
            for _, r in df.iterrows()]
    return md_table(rows, ["pair", "method", "logits", "T", "w", "n", *(h for _, h, _ in shown)])


def paper_md(df: pd.DataFrame) -> tuple[str, Markup]:
    """(note, table): our matched rows next to the paper's, or the paper's numbers summarised as context."""
    if len(df) and str(df["table"].iloc[0]).startswith("comparison"):
        rows = [[f"{r['paper_teacher']} → {r['paper_student']}", method_label(r["method"]),
                 transform_label(r["transform"]), r["ours_best_top1"], r["ours_last_top1"],
                 fmt_num(r["paper_top1"], fixed=True), fmt_num(r["diff_best_minus_paper"], fixed=True),
                 r["paper_source"]] for _, r in df.iterrows()]
        note = (f"Matched rows. The paper's numbers are its {PAPER_PROTOCOL}; compare them with our best-epoch "
                "column (our last-epoch headline is shown too). Sources are kept apart: ours are this run, the "
                "paper's are quoted from its tables.")
        header = ["pair (paper names)", "method", "logits", "ours, best epoch", "ours, last epoch", "paper",
                  "ours best − paper", "paper source"]
        return note, md_table(rows, header)
    rows = []
    key = ["dataset", "teacher", "student", "method"]
    for (dataset, method), g in df.groupby(["dataset", "method"], sort=True):
        wide = g.pivot_table(index=key, columns="transform", values="top1", aggfunc="first")
        if not {"none", "zscore"} <= set(wide.columns):
            continue
        wide = wide.dropna(subset=["none", "zscore"])
        gain = wide["zscore"] - wide["none"]
        rows.append([dataset, method_label(method), len(wide), fmt_num(wide["none"].mean(), fixed=True),
                     fmt_num(wide["zscore"].mean(), fixed=True),
                     f"{gain.mean():+.2f}", f"{gain.min():+.2f} to {gain.max():+.2f}"])
    note = ("No row of this run matches a row of the paper (other dataset or models), so the paper's numbers "
            f"are shown as **context only, not compared with ours**: {PAPER_PROTOCOL}, summarised over its "
            "teacher/student pairs (full rows in paper_comparison.csv).")
    header = ["paper: dataset", "method", "pairs", "paper: raw top-1 (mean)", "paper: z-score top-1 (mean)",
              "paper: LS gain (mean)", "paper: LS gain (range)"]
    return note, md_table(rows, header)


def _log_best(row: Any) -> str:
    if is_missing(row["log_best"]):
        return "—"
    epoch = "" if is_missing(row["log_best_epoch"]) else f" @{int(row['log_best_epoch'])}"
    runs = "" if is_missing(row["log_runs"]) else str(row["log_runs"])
    many = f" (best of {len(runs.split('|'))} runs: {runs.replace('|', ', ')})" if "|" in runs else ""
    return f"{fmt_num(row['log_best'], fixed=True)}{epoch}{many}"


def _point_pair(row: Any) -> str:
    paper = f"{row['paper_teacher']} → {row['paper_student']}"
    config = f"{row['teacher']} → {row['student']}"
    return paper if paper == config else f"{paper} (config: {config})"


def _point_status(row: Any) -> str:
    if row["status"] == "deviates":  # md_table escapes the reason; the bold marker is ours
        return f"**⚠ deviates:** {row['deviation']}"
    return "unstated: no point stated" if row["status"] == "unstated" else str(row["status"])


def _point_cells(row: Any) -> str:
    cells = "" if is_missing(row["ours_cells"]) else str(row["ours_cells"])
    if row["status"] == "deviates":
        return f"closest: {cells}" if cells else "none"
    if row["status"] == "unstated":
        return "—"
    return cells or ("" if is_missing(row["cells"]) else f"{row['cells']} (not run yet)")


def _or_dash(x: Any) -> str:
    return "—" if is_missing(x) or str(x) == "" else str(x)


def paper_points_md(df: pd.DataFrame) -> tuple[str, list[str], Markup]:
    """(note, legend lines, table) of ``official.csv``: per official setting the paper's number, the official
    log's, ours at that point under the paper's protocol and lskd's, and ours − paper / − log with a t-interval."""
    rows = [[_point_pair(r), method_label(r["method"]), transform_label(r["transform"]), _point_cells(r),
             _point_status(r), fmt_num(r["paper_top1"], fixed=True) or "—", _log_best(r),
             fmt_num(r["log_last"], fixed=True) or "—",
             _or_dash(r["ours_best_top1"]), _or_dash(r["ours_last_top1"]), _or_dash(r["best_minus_paper"]),
             _or_dash(r["best_minus_log"])] for _, r in df.iterrows()]
    counts = {k: int(v) for k, v in df["status"].value_counts().items()}
    n_exact, n_dev, n_unst = (counts.get(k, 0) for k in ("exact", "deviates", "unstated"))
    note = (f"Like with like: each of the {len(df)} settings the official code ran for this config's pairs "
            "(lskd/data/paper/official_settings*.csv), with ours at exactly that setting. "
            f"Cells run it exactly for {n_exact}; {n_dev} deviate{'s' if n_dev == 1 else ''} from it (the reason "
            "is shown; ours then comes from the closest cells, when one setting is closest); "
            f"{n_unst} {'is' if n_unst == 1 else 'are'} unstated (no source states the temperature or KD weight, "
            "so there is no point to compare). The grid setting selected on the test set is compared with the "
            "paper in paper_comparison.csv; every column of this table is in official.csv.")
    legend = [
        f"paper: the published top-1, {PAPER_PROTOCOL}.",
        "official log: the best test epoch of the log's run (@ epoch; the best run when a log holds several) "
        "and its last epoch.",
        "ours, paper protocol: best test epoch, mean ± std of n seeds; ours, lskd: last epoch, mean ± std of n "
        "seeds.",
        "ours − paper and ours − log: ours at the best epoch minus the paper's / the log's best, with a 95% "
        "t-interval over seeds (n − 1 degrees of freedom); n = 1 gives no interval.",
    ]
    header = ["pair (paper names)", "method", "logits", "ours: cells", "status", "paper",
              "official log: best @epoch", "official log: last", "ours, paper protocol: best test epoch, mean of n "
              "seeds", "ours, lskd: last epoch, mean of n seeds", "ours best − paper [95% t-CI]",
              "ours best − log best [95% t-CI]"]
    return note, legend, md_table(rows, header)


def _paper_points(res: Results) -> pd.DataFrame | None:
    """The paper-points table of a paper-track results folder (``official.csv``, written by the tables step);
    None when the config's dataset has no official settings or the table has no row. The report renders what
    the analysis wrote: a missing table is an error that names the step to run."""
    path = Path(res.results_dir) / "tables" / "official.csv"
    dataset = (res.config.get("dataset") or {}).get("name")
    if not path.exists():
        if not dataset or official_settings(dataset).empty:
            return None
        raise FileNotFoundError(f"{path} is missing: run the tables step first (snakemake's `tables` rule, or "
                                "`lskd tables --runs-csv RUNS --out-dir DIR --config CONFIG`)")
    df = pd.read_csv(path)
    return df if len(df) else None


def _scope(row: Any) -> str:
    if row["student"] and not is_missing(row["student"]):
        scope = f"{row['teacher']} → {row['student']}"
        return scope + (f", {method_label(row['method'])}" if row["method"] and row["method"] != "all"
                        and not is_missing(row["method"]) else ", all students")
    return str(row["teacher"]) if row["teacher"] and not is_missing(row["teacher"]) else str(row["dataset"] or "—")


def _estimate(row: Any) -> str:
    if row["verdict"] == "not applicable" or is_missing(row["estimate"]):
        return ""
    return fmt_interval(row["estimate"], row["lo"], row["hi"], 3, signed=CLAIMS[row["claim"]].signed)


def _prediction(row: Any) -> str:
    if is_missing(row["threshold"]) or not row["direction"] or is_missing(row["direction"]):
        return ""
    threshold = fmt_num(row["threshold"], 3, general=True, signed=CLAIMS[row["claim"]].signed)
    return f"{'>' if row['direction'] == 'above' else '<'} {threshold}"


def claims_md(df: pd.DataFrame) -> Markup:
    """The claims table: one row per claim and scope with its statistic, interval, prediction and verdict."""
    rows = [[f"{CLAIMS[r['claim']].title}", r["paper"], _scope(r), r["statistic"], _estimate(r), _prediction(r),
             "" if r["verdict"] == "not applicable" else f"{int(r['n'])} {r['unit']}", f"**{r['verdict']}**"]
            for _, r in df.iterrows()]
    return md_table(rows, ["claim", "paper", "scope", "statistic θ", "θ (95% CI)", "predicted", "n", "verdict"])


def claims_context(res: Results, figures: Sequence[Figure], first_number: int, figures_dir: str = "figures") -> dict[str, Any]:
    """The claims section: intro, table, and per claim its statement, rows (verdict, evidence, test) and figure
    (numbered from ``first_number``) or why there is none."""
    df, _ = claims_tables(res)
    by_name = {f.name: f for f in figures}
    counts = df["verdict"].value_counts()
    items, number = [], first_number
    for claim in CLAIMS.values():
        rows = df[df["claim"] == claim.id]
        figure = by_name.get(claim.figure_name)
        fig_ctx = None
        if figure is not None:
            fig_ctx = _figure_ctx(figure, number, figures_dir)
            number += 1
        items.append({
            "title": claim.title, "paper": claim.paper, "statement": claim.statement, "figure": fig_ctx,
            "rows": [{"scope": _scope(r), "verdict": r["verdict"], "evidence": r["evidence"]}
                     for _, r in rows.iterrows()],
        })
    tally = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)
    return {"table": claims_md(df), "entries": items, "tally": tally, "tests": claims_tests(df)}


def claims_section_md(res: Results, figures: Sequence[Figure], first_number: int,
                      figures_dir: str = "figures") -> Markup:
    """The report's claims section, rendered from ``templates/claims.md.j2`` with :func:`claims_context`."""
    context = claims_context(res, figures, first_number, figures_dir)
    return Markup(_environment().get_template("claims.md.j2").render(claims=context, claims_section=CLAIMS_SECTION))


def claims_tests(df: pd.DataFrame) -> list[str]:
    """Each distinct test of the claims table once, with the claims (by title) that use it."""
    users: dict[str, list[str]] = {}
    for _, r in df.iterrows():
        if not is_missing(r["test"]) and str(r["test"]):
            titles = users.setdefault(str(r["test"]).rstrip("."), [])
            if CLAIMS[r["claim"]].title not in titles:
                titles.append(CLAIMS[r["claim"]].title)
    return [f"{', '.join(titles)}: {test}." for test, titles in users.items()]


# ---------------------------------------------------------------------------------------------- prose
def protocol_of(res: Results) -> str:
    """``validation`` when the headline says so (``protocol`` column), else ``paper``."""
    head = res.tables.get("headline", pd.DataFrame())
    return "validation" if (column(head, "protocol", "paper") == "validation").any() else "paper"


def stage2_seeds(res: Results) -> list[int]:
    """The seeds of the stage-2 (``confirm``) runs; empty under the paper's protocol."""
    d = res.distill
    return sorted(int(x) for x in d.loc[column(d, "stage") == "confirm", "seed"].dropna().unique())


def _n_fresh(res: Results) -> int:
    """How many fresh seeds stage 2 ran: its runs' seeds, else the largest headline n."""
    if seeds := stage2_seeds(res):
        return len(seeds)
    n = pd.to_numeric(res.tables.get("headline", pd.DataFrame()).get("n", pd.Series(dtype=float)), errors="coerce")
    return int(n.max()) if n.notna().any() else 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def selection_text(res: Results) -> str:
    """How each arm's setting was chosen: the headline's ``selection``, else the protocol's default wording."""
    head = res.tables.get("headline", pd.DataFrame())
    texts = [t for t in column(head, "selection", "").astype(str) if t and t != "nan"]
    return texts[0] if texts else SELECTION_FALLBACK[protocol_of(res)]


def protocol_sentence(res: Results) -> str:
    """The summary's sentence naming the protocol the numbers come from."""
    if protocol_of(res) == "validation":
        return ("Settings were chosen on a held-out validation split (stage 1) and the numbers are stage-2 test "
                f"accuracies over {_plural(_n_fresh(res), 'fresh seed')} (last-epoch top-1).")
    return ("All accuracies are last-epoch test top-1; each transform's temperature and KD weight are the best of "
            "the grid on the test set, as in the paper.")


def arm_health(res: Results, pair: tuple[str, str, str], method: str, transform: str) -> str:
    """``"KD z-score: no healthy setting (all 4 stage-1 runs chance-level: last-epoch top-1 at chance)"``."""
    runs = grid_runs(res.runs)
    runs = runs[pair_mask(runs, pair) & (runs["method"] == method) & (runs["transform"] == transform)]
    bad = column(runs, "status")
    bad = bad[~healthy_mask(bad)].value_counts()
    stage = "stage-1" if protocol_of(res) == "validation" else "grid"
    if bad.empty and protocol_of(res) == "validation":  # chosen on validation, but every stage-2 seed was unhealthy
        confirm = res.distill[pair_mask(res.distill, pair) & (res.distill["method"] == method)
                              & (res.distill["transform"] == transform)
                              & (column(res.distill, "stage", "sweep") == "confirm")]
        late = column(confirm, "status")
        return (f"{method_label(method)} {transform_label(transform)}: {NO_HEALTHY_CONFIRM} (all {len(confirm)} "
                f"stage-2 runs of its chosen setting {_how(late[~healthy_mask(late)].value_counts())})")
    runs_text = f"its only {stage} run" if len(runs) == 1 else f"all {len(runs)} {stage} runs"
    return f"{method_label(method)} {transform_label(transform)}: {NO_HEALTHY} ({runs_text} {_how(bad)})"


def _how(bad: pd.Series) -> str:
    """What happened to an arm's runs, from the counts of their unhealthy statuses."""
    if len(bad) == 1:
        status = str(bad.index[0])
        return f"{status}: {MEANINGS[status]}" if status in MEANINGS else status
    if len(bad) > 1:
        return "unhealthy (" + ", ".join(f"{n} {k}" for k, n in bad.items()) + ")"
    return "were unhealthy"


def _pair_sentences(res: Results, h: pd.DataFrame, pair: tuple[str, str, str], verdict: dict[str, int]) -> list[str]:
    """Per arm of a pair in method order: its paired difference to raw, or that it has no healthy setting."""
    order = {m: i for i, m in enumerate(res.methods)}
    h = _with_defaults(h, {"status": HEALTHY})
    shown = h[h["diff_last_mean"].notna() | h["status"].isin([NO_HEALTHY, NO_HEALTHY_CONFIRM])]
    shown = shown.assign(_order=shown["method"].map(order)).sort_values("_order", kind="stable")
    sentences = []
    for _, r in shown.iterrows():
        if not is_healthy(r["status"]) and not pd.isna(r["status"]):
            sentences.append(arm_health(res, pair, r["method"], r["transform"]))
            continue
        raw = h[(h["method"] == r["method"]) & (h["transform"] == "none")]
        lo, hi = r["diff_last_lo"], r["diff_last_hi"]
        verdict["above" if lo > 0 else "below" if hi < 0 else "spans"] += 1
        interval = "no interval" if is_missing(lo) else f"95% interval [{lo:+.2f}, {hi:+.2f}]"
        label = _verdict_cell(r)
        sentences.append(
            f"{method_label(r['method'])} {transform_label(r['transform'])} − raw = {r['diff_last_mean']:+.2f} "
            f"points, {interval} (n={int(r['diff_n'])} paired seeds; "
            f"{raw['last_top1_mean'].iloc[0]:.2f}% → {r['last_top1_mean']:.2f}%)" + (f", {label}" if label else ""))
    return sentences


def ranking_md(res: Results) -> Markup:
    """Every method and transform at its selected setting, best first (last-epoch top-1, mean ± std over its n
    runs); arms without a healthy setting last, with their status."""
    head = _with_defaults(res.tables.get("headline", pd.DataFrame()), {"status": HEALTHY})
    if head.empty:
        return Markup("")
    head = head.assign(_healthy=healthy_mask(head["status"])).sort_values(["_healthy", "last_top1_mean"],
                                                                     ascending=[False, False], kind="stable")
    rows, rank = [], 0
    for _, r in head.iterrows():
        healthy = bool(r["_healthy"]) and not is_missing(r["last_top1_mean"])
        rank += healthy
        std = "" if is_missing(r.get("last_top1_std")) else f" ± {fmt_num(r['last_top1_std'], fixed=True)}"
        rows.append([rank if healthy else "—", _pair(r), method_label(r["method"]), transform_label(r["transform"]),
                     _temperature(r), fmt_num(r["kd_weight"]), "" if is_missing(r["n"]) else int(r["n"]),
                     f"{fmt_num(r['last_top1_mean'], fixed=True)}{std}" if healthy else r["status"]])
    return md_table(rows, ["rank", "pair", "method", "logits", "T", "w", "n", "last top-1 (%)"])


def summary_text(res: Results) -> str:
    """One paragraph: per method the LS − raw paired difference with its interval (or that an arm has no
    healthy setting), teacher and CE baseline, then the protocol the numbers come from and the tally."""
    head = res.tables.get("headline", pd.DataFrame())
    if head.empty:
        return "No distillation run has finished yet: there is nothing to summarise."
    parts, verdict = [], {"above": 0, "below": 0, "spans": 0}
    for pair in res.pairs:
        teachers, baselines = res.references(pair)
        ref = []
        if len(teachers):
            ref.append(f"the teacher {pair[1]} reaches {teachers['last_top1'].mean():.2f}%")
        if len(baselines):
            b = baselines["last_top1"]
            spread = f" ± {b.std(ddof=1):.2f}" if len(b) > 1 else ""
            ref.append(f"the student {pair[2]} trained with cross-entropy alone {b.mean():.2f}{spread}% "
                       f"(n={len(b)})")
        sentences = _pair_sentences(res, head[pair_mask(head, pair)], pair, verdict)
        text = f"On {pair[0]}, {pair[1]} → {pair[2]}: " + ("; ".join(sentences) if sentences else
                                                          "no method has both raw and standardized runs")
        parts.append(text + (". For reference, " + " and ".join(ref) + "." if ref else "."))
    n = sum(verdict.values())
    tail = (f" The interval lies above zero for {verdict['above']} of {n} method(s), below zero for "
            f"{verdict['below']}, and spans zero for {verdict['spans']}." if n else "")
    return " ".join(parts) + " " + protocol_sentence(res) + tail


def _first_record(res: Results, role: str) -> dict[str, Any]:
    sub = res.runs[res.runs["role"] == role]
    return res.record(sub["run_dir"].iloc[0]) if len(sub) else {}


def _optim(record: dict[str, Any]) -> str:
    o = record.get("spec", {}).get("optim", {})
    if not o:
        return "unknown"
    sched = o["schedule"] + (f" (×{o['gamma']:g} after epochs {o['milestones']})" if o.get("milestones") else "")
    return (f"{o['epochs']} epochs, batch {o['batch_size']}, SGD lr {o['lr']:g}, momentum {o['momentum']:g}, "
            f"weight decay {o['weight_decay']:g}, {sched} schedule")


def zscore_range_text(res: Results) -> str:
    """Why the z-score arm sweeps smaller temperatures: the range of a standardized vector over K classes."""
    record = _first_record(res, "distill") or _first_record(res, "teacher")
    k = record.get("resolved", {}).get("num_classes") if record else None
    d = res.distill
    taus = sorted(d.loc[(d["transform"] == "zscore") & d["temperature"].notna(), "temperature"].unique()) \
        if len(d) else []
    if not k or not taus:
        return ""
    bound = math.sqrt(k - 1)
    spans = ", ".join(f"±{bound / t:.2f} at τ = {t:g}" for t in taus)
    return (f" On these K = {k} classes a standardized vector (mean 0, standard deviation 1) has every entry within "
            f"±√(K−1) = ±{bound:.2f} (±(K−1)/√K = ±{(k - 1) / math.sqrt(k):.2f} with Bessel's correction, as the "
            f"official code computes it), so after dividing by τ within ±{bound:.2f}/τ: {spans} in this run's "
            "z-score grid. Raw logits keep the teacher's own scale, so the two arms need different temperatures.")


def setup_context(res: Results) -> dict[str, Any]:
    cfg, runs = res.config, res.runs
    teacher_rec, student_rec = _first_record(res, "teacher"), _first_record(res, "distill")
    data = cfg.get("dataset", {})
    dataset = data.get("name") or (runs["dataset"].iloc[0] if len(runs) else "unknown")
    k = (student_rec or teacher_rec).get("resolved", {}).get("num_classes", "?")
    n_test = runs["num_test"].dropna().unique() if "num_test" in runs else []
    def train(rec: dict[str, Any]) -> Any:
        return (rec["spec"]["data"].get("train_subset") or "all") if rec.get("spec") else "unknown"

    lines_data = [
        f"Dataset: {dataset}, {k} classes; test samples: {', '.join(str(int(n)) for n in n_test) or 'unknown'}.",
        f"Training images: students {train(student_rec)}, teacher {train(teacher_rec)}.",
    ]
    models = [[role, m, f"{int(p):,}" if not is_missing(p) else ""] for role, m, p in
              runs.assign(role=runs["role"].map({"teacher": "teacher", "baseline": "student", "distill": "student"}))
              [["role", "model", "num_params"]].drop_duplicates("model").itertuples(index=False)]
    grid = cfg.get("grid", {})
    counts = runs["role"].value_counts()
    stages = column(res.distill, "stage").value_counts()
    by_stage = (f" (stage 1: {stages.get('sweep', 0)}, stage 2: {stages.get('confirm', 0)})"
                if protocol_of(res) == "validation" else "")
    learners = sorted(res.distill.loc[res.distill["temperature"].isna(), "method"].unique())
    learned = f" ({', '.join(map(method_label, learners))} learns its own)" if learners else ""
    lines_grid = [
        f"Pairs: {', '.join(f'{t} → {s}' for _, t, s in res.pairs) or 'none'}.",
        f"Methods: {', '.join(map(method_label, grid.get('methods', res.methods)))}; logits: "
        f"{', '.join(map(transform_label, grid.get('transforms', res.transforms)))}.",
        f"Temperatures: {', '.join(fmt_num(t) for t in grid.get('temperatures', []))}{learned}; "
        f"KD weights: {', '.join(str(w) for w in grid.get('kd_weights', ['default']))}; seeds: "
        f"{', '.join(str(s) for s in grid.get('seeds', sorted(runs['seed'].unique())))}.",
        f"Runs: {counts.get('teacher', 0)} teacher(s), {counts.get('baseline', 0)} CE baseline(s), "
        f"{counts.get('distill', 0)} distillation run(s){by_stage}.",
    ]
    hp_rows = []
    for (method, transform), g in res.distill.groupby(["method", "transform"], sort=False):
        hp = dict(res.record(g["run_dir"].iloc[0]).get("resolved", {}).get("hparams", {}))
        for key in ("temperature", "kd_weight", "transform"):
            hp.pop(key, None)
        temps = ", ".join(fmt_num(t) for t in sorted(g["temperature"].dropna().unique())) or "learned"
        hp_rows.append([method_label(method), transform_label(transform), temps,
                        ", ".join(fmt_num(w) for w in sorted(g["kd_weight"].unique())), _items(hp)])
    hardware = teacher_rec.get("hardware") or student_rec.get("hardware") or {}
    versions = teacher_rec.get("versions") or student_rec.get("versions") or {}
    device = (student_rec or teacher_rec).get("resolved", {}).get("device", "unknown")
    commits = sorted(runs["git_commit"].dropna().astype(str).unique()) if len(runs) else []
    wall = runs["wall_seconds"].dropna().sum() if "wall_seconds" in runs else 0.0
    return {
        "protocol": setup_protocol(res),
        "data": lines_data,
        "models_table": md_table(models, ["role", "model", "parameters"]),
        "grid": lines_grid,
        "optim": [f"Teacher: {_optim(teacher_rec)}.", f"Students: {_optim(student_rec)}."],
        "hparams_table": md_table(hp_rows, ["method", "logits", "T", "KD weight", "other hyper-parameters"]),
        "provenance": [
            f"Hardware: {hardware.get('cpu', 'unknown')} ({hardware.get('cpu_count', '?')} CPUs), GPUs: "
            f"{', '.join(hardware.get('gpus') or []) or 'none'}; device {device}; {hardware.get('platform', '')}.",
            "Software: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".",
            f"Git commit: {', '.join(commits) or 'unknown'}.",
            f"Total training wall time (sum over {len(runs)} runs' timing.json): {_duration(wall)}.",
        ],
    }


def setup_protocol(res: Results) -> str:
    """The one sentence of Setup that says how each arm's setting was selected (said nowhere else)."""
    if protocol_of(res) == "validation":
        seeds = stage2_seeds(res)
        size = (res.config.get("protocol") or {}).get("validation_size")
        held = f" ({size:,} training images held out)" if isinstance(size, int) else ""
        listed = f" ({', '.join(map(str, seeds))})" if seeds else ""
        return (f"Validation protocol{held}: each arm reports the {selection_text(res)}; stage 2 ran "
                f"{_plural(_n_fresh(res), 'fresh seed')}{listed}.")
    return (f"Paper protocol: each arm reports the {selection_text(res)}; there is no validation split, so "
            "the setting is chosen on the data it is scored on.")


def _seed_limitation(res: Results) -> str:
    """Seeds per grid cell (and per stage-2 arm) and what that does to the intervals."""
    n = grid_runs(res.runs).groupby([*PAIR, "method", "transform", "temperature", "kd_weight"], dropna=False).size()
    seeds = "0" if n.empty else str(int(n.min())) if n.min() == n.max() else f"{int(n.min())}–{int(n.max())}"
    stage2 = f" in stage 1, {_n_fresh(res)} per arm in stage 2" if protocol_of(res) == "validation" else ""
    return (f"Seeds: {seeds} per cell{stage2}. With so few paired seeds the bootstrap interval is coarse (n ≤ 3 "
            "pairs give at most nⁿ distinct resamples) and the std is itself noisy.")


def _selection_limitation(res: Results) -> str:
    if protocol_of(res) == "validation":
        return ("Selection: the grid is scored on a validation split held out of the training set, so the choice "
                "of setting does not bias the headline; the grid's validation accuracies are not test numbers, and "
                "only the stage-2 students enter the headline and its intervals.")
    return ("Selection on the test set: the reported setting is chosen on the data it is scored on (see Setup), "
            "so it is optimistically biased, for raw and standardized logits alike.")


def _health_limitation(res: Results) -> str | None:
    """How many distillation runs were unhealthy and what the report does with them; None when every run is
    ok."""
    status = column(res.distill, "status")
    bad = status[~healthy_mask(status)].value_counts()
    if bad.empty:
        return None
    counts = " and ".join(f"{n} {k}" for k, n in bad.items())
    return (f"Run health: of {len(status)} distillation runs, {counts} (see Run health under Results). They stay "
            "in the grid with their status, a setting with one is never selected, and none enters a headline mean "
            "or interval.")


def limitations(res: Results) -> list[str]:
    """The Limitations section, one item per limitation that applies to this run."""
    d = res.distill
    out = []
    if len(d):
        gap = (d["best_top1"] - d["last_top1"]).dropna()
        if len(gap):
            out.append(f"Last vs best epoch: the headline is the last epoch; the paper reports the {PAPER_PROTOCOL}. "
                       f"Here best − last averages {gap.mean():.2f} points over the distillation runs (largest "
                       f"{gap.max():.2f}).")
        out.append(_seed_limitation(res))
        epochs = sorted(d["epochs"].unique())
        rec = res.record(d["run_dir"].iloc[0]).get("spec", {}).get("data", {})
        out.append(f"Scale: students train {', '.join(map(str, epochs))} epoch(s) on "
                   f"{rec.get('train_subset') or 'all'} images of {rec.get('name', 'the dataset')}, with "
                   f"{len(res.pairs)} teacher/student pair(s). The paper trains 240 epochs on CIFAR-100 and 100 on "
                   "ImageNet with larger networks; a small demo can disagree with it either way.")
    out.append(_selection_limitation(res))
    if (health := _health_limitation(res)) is not None:
        out.append(health)
    out.append("The logit statistics and the per-sample figures describe one setting and one seed (named in each "
               "caption) at the last epoch; they illustrate the paper's explanation. The claims audit tests it, "
               "with intervals over seeds where there are several; with one seed, one teacher or a handful of "
               "students its intervals capture sample noise only, as its tests say.")
    return out


# ---------------------------------------------------------------------------------------------- rendering
def _environment() -> Environment:
    return Environment(loader=PackageLoader("lskd.report", "templates"), autoescape=False, finalize=md_escape,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _figure_ctx(figure: Figure, number: int, figures_dir: str) -> dict[str, Any]:
    return {"number": number, "title": figure.title, "caption": figure.caption,
            "src": Markup(f"{figures_dir}/{figure.path.name}")}


def _paper_ctx(res: Results) -> tuple[str, list[str], Markup]:
    """(note, legend lines, table) of the comparison with the paper: its points when the config has official
    settings, else the matched rows or the paper's numbers as context."""
    points = _paper_points(res)
    if points is not None:
        return paper_points_md(points)
    tables = res.tables
    note, table = paper_md(tables["paper_comparison"] if "paper_comparison" in tables else paper_context_table())
    return note, [], table


def _tables_ctx(res: Results, paper_table: Markup) -> dict[str, Markup]:
    tables, logit = res.tables, res.tables.get("logit_summary")
    return {
        "headline": headline_md(tables.get("headline", pd.DataFrame(columns=HEADLINE_MIN))),
        "references": references_md(res.runs),
        "grid": grid_md(tables.get("grid", pd.DataFrame(columns=GRID_MIN))),
        "logit_summary": logit_md(logit) if logit is not None and len(logit) else Markup(""),
        "paper": paper_table,
    }


def render_markdown(res: Results, figures: Sequence[Figure], figures_dir: str, command: str) -> str:
    """The report's Markdown; figures referenced as ``<figures_dir>/<name>.png``, numbered in reading order:
    the primer (Background), the general figures (Results), then the claim figures."""
    paper_note, paper_legend, paper_table = _paper_ctx(res)
    logit = res.tables.get("logit_summary")
    opening = next((f for f in figures if f.name == OPENING), None)
    primer = next((f for f in figures if f.name == PRIMER), None)
    general = [f for f in figures if not f.name.startswith(CLAIM_PREFIX) and f.name not in (PRIMER, OPENING)]
    primer_number = 1 + (opening is not None)
    first = primer_number + (primer is not None)
    validation = protocol_of(res) == "validation"
    context = {
        "title": res.config.get("title") or "Logit standardization in knowledge distillation",
        "summary": summary_text(res),
        "ranking": ranking_md(res),
        "setup": setup_context(res),
        "command": Markup(command),
        "validation": validation,
        "grid_split": SPLIT_NAMES[grid_split(res)],
        "tables": _tables_ctx(res, paper_table),
        "health": health_context(res, validation),
        "logit_note": ("Per-sample statistics of the test logits against the teacher's, averaged over samples, then "
                       "over seeds (means shown; logit_summary.csv has the std)." if logit is not None and len(logit)
                       else "Not available: logit_summary.csv has not been written."),
        "paper_note": paper_note,
        "paper_legend": paper_legend,
        "figures": [_figure_ctx(f, i, figures_dir) for i, f in enumerate(general, start=first)],
        "claims_md": claims_section_md(res, figures, first + len(general), figures_dir),
        "primer": _figure_ctx(primer, primer_number, figures_dir) if primer is not None else None,
        "opening": _figure_ctx(opening, 1, figures_dir) if opening is not None else None,
        "verdicts": verdict_lines(res),
        "diagnostics": diagnostics_context(res),
        "zscore_range": zscore_range_text(res),
        "limitations": limitations(res),
        "reproduce": Markup(f"pip install -e .\n{command}\n"
                            "# another config: add --configfile configs/<name>.yaml\n"
                            "# Snakemake's own report of the same run:\n"
                            f"{command} --report report/snakemake-report.html"),
        "results_dir": str(res.results_dir),
    }
    return _environment().get_template("report.md.j2").render(**context)


# ---------------------------------------------------------------------------------------------- opening, diagnostics
def verdict_lines(res: Results) -> list[str]:
    """One line per LS arm of the headline (:func:`lskd.analysis.inference.verdict_sentence`): its protocol, n,
    δ, the paired LS − raw difference with its t interval and the verdict."""
    from lskd.analysis.inference import DEFAULT_SMALLEST_EFFECT, verdict_sentence

    head = res.tables.get("headline", pd.DataFrame())
    if head.empty or "diff_last_mean" not in head:
        return []
    order = {m: i for i, m in enumerate(res.methods)}
    rows = head[head["diff_last_mean"].notna()]
    rows = rows.assign(_o=rows["method"].map(order)).sort_values(["_o", "teacher", "student"], kind="stable")
    multi = rows[["teacher", "student"]].drop_duplicates().shape[0] > 1
    lines = []
    for _, r in rows.iterrows():
        name = method_label(r["method"]) + (" + LS" if r["transform"] == "zscore" else f" {transform_label(r['transform'])}")
        name += f" ({r['teacher']} → {r['student']})" if multi else ""
        delta = r.get("delta")
        lines.append(verdict_sentence(
            name, str(r.get("protocol") or "paper"), int(r["diff_n"]),
            DEFAULT_SMALLEST_EFFECT if is_missing(delta) else float(delta), float(r["diff_last_mean"]),
            float(r["diff_last_lo"]), float(r["diff_last_hi"]), str(r.get("verdict") or "") or "descriptive",
            float(r.get("p_verdict_holm", math.nan))))
    return lines


def _ci(m: Any, lo: Any, hi: Any, digits: int = 2) -> str:
    if is_missing(m):
        return ""
    return f"{m:+.{digits}f}" if is_missing(lo) else f"{m:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def diagnostics_md(df: pd.DataFrame) -> Markup:
    """The diagnostics table: per arm gain over CE, gap closed, ECE before/after temperature scaling, cost."""
    rows = [[_pair(r), method_label(r["method"]), transform_label(r["transform"]), int(r["n"]),
             _ci(r["gain_ce_mean"], r["gain_ce_lo"], r["gain_ce_hi"]),
             _ci(r["gap_closed_mean"], r["gap_closed_lo"], r["gap_closed_hi"]),
             fmt_num(r["ece_mean"], 1, fixed=True), fmt_num(r["ece_ts_mean"], 1, fixed=True), fmt_num(r["ts_temperature_mean"], fixed=True),
             fmt_num(r["seconds_per_student_mean"], fixed=True), "" if is_missing(r["images_per_s_mean"]) else
             f"{r['images_per_s_mean']:,.0f}", fmt_num(r["cost_vs_kd_raw"], 1, fixed=True) + ("×" if not is_missing(r["cost_vs_kd_raw"])
                                                                             else "")]
            for _, r in df.iterrows()]
    return md_table(rows, ["pair", "method", "logits", "n", "gain over CE, points [95% t CI]",
                           "gap closed [95% t CI]", "ECE (%)", "ECE after T-scaling (%)", "fitted T",
                           "s per student", "train images/s", "cost vs KD raw"])


def per_class_lines(df: pd.DataFrame) -> list[str]:
    """Per method: the range of the per-class LS − raw change and the classes at its ends."""
    out = []
    for (teacher, student, method), g in df.groupby(["teacher", "student", "method"], sort=False):
        lo, hi = g.loc[g["change_mean"].idxmin()], g.loc[g["change_mean"].idxmax()]
        out.append(f"{method_label(method)} ({teacher} → {student}, n = {int(g['n'].iloc[0])}): "
                   f"{lo['change_mean']:+.1f} ('{lo['class_name']}') to {hi['change_mean']:+.1f} "
                   f"('{hi['class_name']}') points")
    return out


def diagnostics_context(res: Results) -> dict[str, Any]:
    """The Diagnostics subsection: table, fit split and cost basis, per-class ranges; ``available`` False when
    the tables step has not written diagnostics.csv."""
    diag, per_class = res.tables.get("diagnostics"), res.tables.get("per_class")
    if diag is None or diag.empty:
        return {"available": False}
    splits = sorted({s for v in diag["ts_fit_split"].dropna() for s in str(v).split()})
    kd = diag[(diag["method"] == "kd") & (diag["transform"] == "none")]
    costs = diag[diag["transform"] == "none"].dropna(subset=["cost_vs_kd_raw"])
    return {
        "available": True,
        "table": diagnostics_md(diag),
        "fit_split": " and ".join(SPLIT_NAMES.get(s, s) for s in splits),
        "fit_on_test": any(x.startswith("test") for x in splits),
        "cost_basis": ", ".join(sorted(set(diag["cost_basis"].dropna().astype(str)))),
        "kd_seconds": fmt_num(kd["seconds_per_student_mean"].iloc[0], fixed=True) if len(kd) else "",
        "costs": ", ".join(f"{method_label(r['method'])} {r['cost_vs_kd_raw']:.1f}×" for _, r in costs.iterrows()),
        "per_class": per_class_lines(per_class) if per_class is not None and len(per_class) else [],
    }


def grid_split(res: Results) -> str:
    """The split the grid was measured on (``grid.csv``'s ``split``, else the grid runs'): ``val`` or ``test``."""
    grid = res.tables.get("grid")
    if grid is not None and "split" in grid:
        return "val" if (column(grid, "split") == "val").any() else "test"
    return "val" if (column(grid_runs(res.runs), "split") == "val").any() else "test"


HEADLINE_MIN = ["teacher", "student", "method", "transform", "temperature", "kd_weight", "n_settings", "n",
                "last_top1", "best_top1", "diff_last", "diff_best", "diff_last_mean"]
GRID_MIN = ["teacher", "student", "method", "transform", "temperature", "kd_weight", "n", "last_top1", "best_top1",
            "selected"]


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def render_html(md_text: str, title: str, figures: Sequence[Figure], figures_dir: str) -> str:
    """Markdown → HTML (``tables`` extension) in the inline-CSS page template, every figure embedded."""
    body = markdown.markdown(md_text, extensions=["tables"], output_format="html")
    for f in figures:
        src = f'src="{figures_dir}/{f.path.name}"'
        if src not in body:
            raise RuntimeError(f"figure {f.name} is not referenced in the rendered report")
        body = body.replace(src, f'src="{_data_uri(f.path)}"')
    env = Environment(loader=PackageLoader("lskd.report", "templates"), autoescape=True)
    return env.get_template("report.html.j2").render(title=title, body=Markup(body))


def build_report(results_dir: Path, report_dir: Path, config: dict[str, Any], *,
                 command: str = "snakemake --cores all") -> tuple[Path, Path]:
    """Draw the figures into ``report_dir/figures`` and write ``report_dir/report.md`` and the self-contained
    ``report_dir/report.html``; returns their paths. ``command`` is the command quoted under Setup and Reproduce.
    """
    report_dir = Path(report_dir)
    res = load_results(results_dir, config)
    figures = draw_figures(res, report_dir / "figures")
    md_text = render_markdown(res, figures, "figures", command)
    title = res.config.get("title") or "Logit standardization in knowledge distillation"
    md_path = write_text(report_dir / "report.md", md_text)
    html_path = write_text(report_dir / "report.html", render_html(md_text, title, figures, "figures"))
    for path in (md_path, html_path):
        path.chmod(0o644)  # write_text's temporary file is private (0600); a report is meant to be shared
    return md_path, html_path


__all__ = ["CLAIMS_SECTION", "SECTIONS", "build_report", "claims_md", "claims_section_md", "md_escape", "md_table",
           "paper_points_md", "render_html", "render_markdown"]
