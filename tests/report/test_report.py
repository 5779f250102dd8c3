"""Report: figures and the Markdown/HTML report on a real (tiny) results tree trained on scikit-learn's digits."""

from __future__ import annotations

import re
import shutil
import struct
from pathlib import Path

import pandas as pd
import pytest

from lskd.analysis import (
    collect_runs,
    grid_table,
    headline_table,
    logit_summary_table,
    paper_comparison,
    run_summary,
    selected_runs,
    write_run_stats,
)
from lskd.analysis.claims import AuditConfig, audit_runs
from lskd.analysis.diagnostics import diagnostics_table, per_class_table
from lskd.engine import DataSpec, OptimSpec, RunSpec, train
from lskd.layout import store_paths
from lskd.report import Figure, build_report, figures_accuracy, figures_common, make_figures
from lskd.report.figures import CLAIM_PREFIX, FIGURES
from lskd.report.render import CLAIMS_SECTION, SECTIONS, md_escape, md_table

TEACHER, STUDENT = "cnn_w24d4", "cnn_w8d3"
PAIR_DIR = f"{TEACHER}__{STUDENT}"
HOSTILE = "<script>alert(1)</script>"
CONFIG = {
    "title": "lskd report test",
    "dataset": {"name": "digits", "train_subset": 400, "test_subset": None},
    "pairs": [{"teacher": TEACHER, "student": STUDENT}],
    "grid": {"methods": ["kd", "ctkd"], "transforms": ["none", "zscore"], "temperatures": [1, 4],
             "kd_weights": [0.9, 9], "seeds": [0, 1]},
    "health": {"not_converged_share": None},  # 2- and 3-epoch runs on 400 images are not meant to converge
}
REPO = Path(__file__).resolve().parents[2]
#: Figures the digits fixture cannot support: it has one teacher, so the teacher-size claims are not applicable, and
#: only raw and z-score logits, so the noise floor (center vs none, scale vs z-score) is not either.
NOT_DRAWN = {f"{CLAIM_PREFIX}{c}" for c in ("teacher_size", "teacher_gain", "noise_floor")}
DRAWN = [name for name in FIGURES if name not in NOT_DRAWN]
#: Stage-2 seeds of the validation fixture: the stage-1 seeds plus this.
FRESH = 10
#: Columns a table of an older version lacks (the report must read them as their defaults).
NEW_COLUMNS = {"runs": ["stage", "split", "status", "health_note", "majority_share", "last_epoch_share"], "headline": ["protocol", "status", "n_unhealthy"],
               "grid": ["split", "status", "n_ok"]}
#: Other tables the synthetic results folders share with the trained one.
SHARED_TABLES = ("logit_summary", "paper_comparison", "claims", "claims_runs", "diagnostics", "per_class")


def _spec(model: str, method: str = "ce", *, seed: int = 0, teacher: Path | None = None, epochs: int = 2,
          labels: dict, **hparams) -> RunSpec:
    # test_subset=None: a subset is drawn with the run's seed, and the teacher must see the students' test set
    return RunSpec(model=model, data=DataSpec(name="digits", train_subset=400, test_subset=None),
                   optim=OptimSpec(epochs=epochs, batch_size=32, lr=0.05, schedule="cosine"), method=method,
                   hparams=hparams, teacher_dir=str(teacher) if teacher else None, seed=seed, threads=1,
                   labels=labels)


def _distill_cells(seed: int, teacher: Path, runs: Path) -> tuple[list[RunSpec], list[Path]]:
    specs, dirs = [], []
    for method, temperatures, weights in (("kd", (1.0, 4.0), (0.9, 9.0)), ("ctkd", (None,), (0.9,))):
        for transform in ("none", "zscore"):
            for w in weights:
                for t in temperatures:
                    hp = {"kd_weight": w, "ce_weight": 0.1, **({"transform": transform} if transform != "none" else {}),
                          **({"temperature": t} if t is not None else {"curriculum_epochs": 1})}
                    labels = {"role": "distill", "dataset": "digits", "teacher": TEACHER, "student": STUDENT,
                              "model": STUDENT, "method": method, "transform": transform, "temperature": t,
                              "kd_weight": w, "seed": seed}
                    specs.append(_spec(STUDENT, method, seed=seed, teacher=teacher, labels=labels, **hp))
                    tl = "learned" if t is None else f"{t:g}"
                    dirs.append(runs / PAIR_DIR / method / transform / f"T{tl}_w{w:g}" / f"seed{seed}")
    return specs, dirs


def write_tables(results: Path, dirs: list[Path]) -> None:
    """What the workflow's analysis rules write: per-run logit statistics and the CSV tables."""
    runs = collect_runs(dirs, not_converged_share=None)  # as the config says
    for d in dirs:
        write_run_stats(d, d / "logit_stats.safetensors")
    summaries = [run_summary(r["run_dir"], Path(r["run_dir"]) / "logit_stats.safetensors", record=r)
                 for r in runs.to_dict("records")]
    claims, claims_runs = audit_runs(runs, AuditConfig(n_boot_samples=500))
    selected = selected_runs(runs)
    tables = {"runs": runs, "headline": headline_table(runs), "grid": grid_table(runs),
              "diagnostics": diagnostics_table(runs, selected, protocol="paper"), "per_class": per_class_table(selected),
              "logit_summary": logit_summary_table(summaries, level="setting"), "paper_comparison": paper_comparison(runs),
              "claims": claims, "claims_runs": claims_runs}
    (results / "tables").mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():  # run folders relative to the results folder, as the workflow stores them
        store_paths(df, results).to_csv(results / "tables" / f"{name}.csv", index=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """teacher + 2 CE baselines + KD (raw/z-score × T {1, 4} × w {0.9, 9}) + CTKD (raw/z-score), seeds 0 and 1."""
    results = tmp_path_factory.mktemp("lskd") / "results"
    runs = results / "runs"
    teacher = runs / "teachers" / TEACHER
    train([_spec(TEACHER, epochs=3, labels={"role": "teacher", "dataset": "digits", "teacher": TEACHER,
                                            "model": TEACHER, "seed": 0})], [teacher], progress=False)
    dirs = [teacher]
    for seed in (0, 1):
        baseline = runs / "baselines" / STUDENT / f"seed{seed}"
        train([_spec(STUDENT, seed=seed, labels={"role": "baseline", "dataset": "digits", "student": STUDENT,
                                                 "model": STUDENT, "method": "ce", "seed": seed})],
              [baseline], progress=False)
        specs, cells = _distill_cells(seed, teacher, runs)
        train(specs, cells, progress=False)
        dirs += [baseline, *cells]
    write_tables(results, dirs)
    return results


def _cell(runs: pd.DataFrame, method: str, transform: str, temperature: float | None = None,
          kd_weight: float | None = None) -> pd.Series:
    mask = (runs["role"] == "distill") & (runs["method"] == method) & (runs["transform"] == transform)
    if temperature is not None:
        mask &= runs["temperature"] == temperature
    if kd_weight is not None:
        mask &= runs["kd_weight"] == kd_weight
    return mask


def validation_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The trained runs relabelled as the two-stage protocol: every distill run is a stage-1 run on the validation
    split; KD raw T=4 w=9 seed 0 chance-level, KD z-score T=4 w=9 diverged (both seeds, no accuracy), CTKD z-score
    chance-level in both seeds (no healthy setting); each other arm's best healthy setting is rerun as stage 2 on the
    test set with fresh seeds (``seed + FRESH``)."""
    runs = runs.copy()
    distill = runs["role"] == "distill"
    runs["stage"], runs["status"] = runs["stage"].astype(object), "ok"
    runs.loc[distill, ["stage", "split"]] = ["sweep", "val"]
    collapsed = (_cell(runs, "kd", "none", 4.0, 9.0) & (runs["seed"] == 0)) | _cell(runs, "ctkd", "zscore")
    runs["health_note"] = runs["health_note"].astype(object)
    runs.loc[collapsed, ["status", "last_top1", "best_top1", "health_note"]] = ["chance-level", 10.0, 10.0, "at chance"]
    diverged = _cell(runs, "kd", "zscore", 4.0, 9.0)
    runs.loc[diverged, ["status", "last_top1", "best_top1", "health_note"]] = ["diverged", float("nan"), float("nan"),
                                                                              "non-finite loss"]
    confirm = selected_runs(runs.assign(split="test")).drop(columns="n_settings")
    confirm = confirm.assign(stage="confirm", split="test", seed=confirm["seed"] + FRESH)
    return pd.concat([runs, confirm], ignore_index=True)


def derived_results(results: Path, out: Path, *, validation: bool) -> Path:
    """A results folder whose tables are those of ``results`` (same run folders): the validation protocol of
    :func:`validation_runs` (tables recomputed), or the tables without the columns of :data:`NEW_COLUMNS`."""
    src, dst = results / "tables", out / "tables"
    dst.mkdir(parents=True)
    (out / "runs").symlink_to(results / "runs")  # the same run folders (tables name them relative to the results)
    for name in SHARED_TABLES:
        shutil.copy(src / f"{name}.csv", dst / f"{name}.csv")
    runs = pd.read_csv(src / "runs.csv")
    if validation:
        runs = validation_runs(runs)
        tables = {"runs": runs, "headline": headline_table(runs), "grid": grid_table(runs)}
    else:
        tables = {name: pd.read_csv(src / f"{name}.csv").drop(columns=cols) for name, cols in NEW_COLUMNS.items()}
    for name, df in tables.items():
        df.to_csv(dst / f"{name}.csv", index=False)
    return out


@pytest.fixture(scope="module")
def validation_report(results, tmp_path_factory) -> tuple[str, dict[str, dict]]:
    """(report.md, per figure of figures_accuracy: its axes' y labels and legend texts) of the validation-protocol
    results of :func:`validation_runs`."""
    tables = derived_results(results, tmp_path_factory.mktemp("validation") / "results", validation=True)
    drawn: dict[str, dict] = {}
    real_save = figures_accuracy.save

    def spy(fig, out_dir, name, title, caption):
        legends = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        drawn[name] = {"ylabels": [ax.get_ylabel() for ax in fig.axes], "legend": legends}
        return real_save(fig, out_dir, name, title, caption)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures_accuracy, "save", spy)
        md, _ = build_report(tables, tmp_path_factory.mktemp("validation_report"), CONFIG)
    return md.read_text(), drawn


@pytest.fixture(scope="module")
def legacy_report(results, tmp_path_factory) -> str:
    """report.md of ``results`` with tables that lack the stage/split/status/protocol columns."""
    tables = derived_results(results, tmp_path_factory.mktemp("legacy") / "results", validation=False)
    md, _ = build_report(tables, tmp_path_factory.mktemp("legacy_report"), CONFIG)
    return md.read_text()


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> tuple[Path, Path]:
    """The report of ``results`` with a hostile title and class names (they must come out escaped)."""
    config = {**CONFIG, "title": f"Report {HOSTILE} & co"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures_common, "dataset_class_names", lambda dataset, k: [f"{HOSTILE}{i}" for i in range(k)])
        return build_report(results, tmp_path_factory.mktemp("report"), config, command="snakemake --cores 2")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


# ------------------------------------------------------------------ figures
def test_make_figures_draws_every_figure_the_grid_supports(results, tmp_path):
    figures = make_figures(results, tmp_path / "figures", CONFIG)
    assert [f.name for f in figures] == DRAWN
    for f in figures:
        assert isinstance(f, Figure) and f.path == tmp_path / "figures" / f"{f.name}.png"
        width, height = _png_size(f.path)
        assert width >= 700 and height >= 350 and f.path.stat().st_size > 10_000, f.name
        assert f.title and re.search(r"\d+\.\d", f.caption), f"{f.name}: caption without numbers: {f.caption}"
    per_sample = [f for f in figures if f.name in ("logit_mean_std", "class_logit_difference", "confidence_calibration")]
    assert all("KD student" in f.caption and "KD+LS student" in f.caption and "seed 0" in f.caption for f in per_sample)


def test_captions_quote_this_runs_numbers(results, tmp_path):
    figures = {f.name: f for f in make_figures(results, tmp_path, CONFIG)}
    grid = pd.read_csv(results / "tables" / "grid.csv")
    for transform, label in (("none", "KD raw"), ("zscore", "KD z-score")):
        best = grid[(grid["method"] == "kd") & (grid["transform"] == transform)]["last_top1_mean"].max()
        assert f"{label}: best" in figures["kd_weight_temperature_heatmap"].caption
        assert f"({best:.1f}%)" in figures["kd_weight_temperature_heatmap"].caption
    accuracy = figures["accuracy_vs_temperature"].caption
    assert "KD raw: best T=" in accuracy and "KD z-score: best τ=" in accuracy and "points vs CE" in accuracy
    assert "learned T≈" in accuracy and "minus the CE-only student's" in accuracy
    assert "at T=0.5" in figures["logit_primer"].caption and "τ=5" in figures["logit_primer"].caption


def test_figures_whose_data_is_absent_are_skipped(results, tmp_path):
    # one raw-KD cell and its teacher, collected with their logit statistics but no analysis tables: no heatmap
    # (it reads grid.csv), the rest still draws
    small = tmp_path / "results"
    rels = (f"runs/teachers/{TEACHER}", f"runs/{PAIR_DIR}/kd/none/T1_w0.9/seed0")
    for rel in rels:
        shutil.copytree(results / rel, small / rel)
    (small / "tables").mkdir()
    runs = collect_runs([small / rel for rel in rels])
    claims, claims_runs = audit_runs(runs, AuditConfig(n_boot_samples=100))  # the claims step's tables
    for name, df in {"runs": runs, "claims": claims, "claims_runs": claims_runs}.items():
        df.to_csv(small / f"tables/{name}.csv", index=False)
    out = tmp_path / "figures"
    out.mkdir()
    (out / "kd_weight_temperature_heatmap.png").write_bytes(b"stale")
    names = [f.name for f in make_figures(small, out, CONFIG)]
    assert "kd_weight_temperature_heatmap" not in names and not (out / "kd_weight_temperature_heatmap.png").exists()
    assert {"accuracy_vs_temperature", "logit_mean_std", "logit_primer", "training_curves"} <= set(names)
    # only a teacher: nothing to draw, and the report still renders every section
    lonely = tmp_path / "lonely"
    shutil.copytree(results / f"runs/teachers/{TEACHER}", lonely / f"runs/teachers/{TEACHER}")
    (lonely / "tables").mkdir()
    collect_runs([lonely / f"runs/teachers/{TEACHER}"]).to_csv(lonely / "tables/runs.csv", index=False)
    assert make_figures(lonely, tmp_path / "none", CONFIG) == []
    md, html = build_report(lonely, tmp_path / "lonely_report", CONFIG)
    text = md.read_text()
    assert all(f"\n## {s}\n" in text for s in SECTIONS) and "No distillation run has finished yet" in text
    assert "data:image/png" not in html.read_text()


def test_the_report_renders_and_never_recomputes(results, tmp_path):
    """A missing runs.csv, or a run's missing logit statistics, is an error naming the step that writes it."""
    bare = tmp_path / "bare"
    shutil.copytree(results / "runs", bare / "runs", ignore=shutil.ignore_patterns("logit_stats.safetensors"))
    with pytest.raises(figures_common.MissingAnalysisError, match=r"runs\.csv is missing.*the collect step"):
        build_report(bare, tmp_path / "r1", CONFIG)
    shutil.copytree(results / "tables", bare / "tables")  # every table, but no run's logit statistics
    with pytest.raises(figures_common.MissingAnalysisError, match=r"logit_stats\.safetensors is missing.*tables step"):
        make_figures(bare, tmp_path / "f2", CONFIG)


# ------------------------------------------------------------------ report
def test_report_has_every_section_table_and_figure(report):
    md_path, html_path = report
    md = md_path.read_text()
    assert md_path.name == "report.md" and html_path.name == "report.html"
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings == list(SECTIONS) and CLAIMS_SECTION in SECTIONS
    for header in ("| pair | method | logits | T | w | settings | n | last top-1 | best top-1 | vs raw, last",
                   "| role | model | parameters | n | last top-1 | best top-1 |",
                   "| pair | method | logits | T | w | n | last top-1 | best top-1 | status | reported |",
                   "| pair | method | logits | T | w | n | top-1 agrees with teacher (%) |",
                   "| paper: dataset | method | pairs |",
                   "| method | logits | T | KD weight | other hyper-parameters |",
                   "| claim | paper | scope | statistic θ | θ (95% CI) | predicted | n | verdict |"):
        assert header in md, header
    for name in DRAWN:
        assert f"](figures/{name}.png)" in md and (md_path.parent / "figures" / f"{name}.png").exists()
    assert "snakemake --cores 2" in md and "95% interval" in md and "last-epoch" in md
    assert "context only, not compared with ours" in md  # digits matches no row of the paper


def test_summary_quotes_the_headline_difference(report, results):
    md = report[0].read_text()
    head = pd.read_csv(results / "tables" / "headline.csv")
    kd = head[(head["method"] == "kd") & (head["transform"] == "zscore")].iloc[0]
    summary = md.split("\n## ", 1)[0]
    assert "All accuracies are last-epoch test top-1" in summary and "as in the paper" in summary
    assert f"KD z-score − raw = {kd['diff_last_mean']:+.2f} points" in summary
    assert md_escape(f"[{kd['diff_last_lo']:+.2f}, {kd['diff_last_hi']:+.2f}]") in summary
    teacher = pd.read_csv(results / "tables" / "runs.csv").query("role == 'teacher'")["last_top1"].iloc[0]
    assert f"{teacher:.2f}%" in summary


def test_html_is_self_contained(report):
    html = report[1].read_text()
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""", html,
                          flags=re.I)
    assert external == []
    assert not re.search(r"<(?:link|script|iframe)\b", html, flags=re.I)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)) == len(DRAWN)
    assert 'src="figures/' not in html and "<style>" in html and "<table>" in html
    assert report[1].stat().st_mode & 0o044 == 0o044  # readable by others


def test_html_escapes_title_and_class_names(report):
    md, html = (p.read_text() for p in report)
    assert "<script" not in html.lower()
    assert "<title>Report &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</title>" in html
    assert "<h1>Report &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</h1>" in html
    assert "true class '&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the primer's caption
    assert "<script" not in md


def test_md_table_escapes_cells():
    table = md_table([["a|b", "<b>x</b>", None]], ["h1", "h2", "h3"])
    assert table.splitlines() == ["| h1 | h2 | h3 |", "|---|---|---|", "| a\\|b | &lt;b&gt;x&lt;/b&gt; |  |"]


def test_claims_section_has_every_claim_with_its_verdict_and_figure(report, results):
    md = report[0].read_text()
    section = md.split(f"## {CLAIMS_SECTION}\n", 1)[1].split("\n## ", 1)[0]
    claims = pd.read_csv(results / "tables" / "claims.csv")
    from lskd.analysis.claims import CLAIMS

    for i, claim in enumerate(CLAIMS.values(), start=1):
        assert f"### Claim {i}. {claim.title} ({claim.paper})" in section, claim.id
    for row in claims.itertuples(index=False):
        assert f"**{row.verdict}**" in section and md_escape(row.evidence.split(";")[0]) in section
    teacher_size = claims[claims["claim"] == "teacher_size"].iloc[0]
    assert teacher_size["verdict"] == "not applicable" and "one teacher" in teacher_size["evidence"]
    assert "No figure: the claim is not applicable to this config." in section
    numbers = [int(n) for n in re.findall(r"^#+ Figure (\d+)\.", md, flags=re.MULTILINE)]
    assert numbers == list(range(1, len(DRAWN) + 1))  # claim figures continue the numbering
    # the paired statistics behind claims 1-3 come from seeds 0 and 1: two seeds are shown, not tested
    kd_shift = claims[(claims["claim"] == "logit_shift") & (claims["method"] == "kd")].iloc[0]
    assert kd_shift["n"] == 2 and kd_shift["unit"] == "seeds" and kd_shift["verdict"] == "descriptive"
    assert kd_shift["test"] == "descriptive: 2 seeds, fewer than 3; no test"
    premise = claims[(claims["claim"] == "premise") & (claims["method"] == "kd")].iloc[0]
    assert premise["n"] == 2 and "CE-only" in premise["evidence"]  # the CE baselines share the stage's seeds


def test_every_figure_has_a_snakemake_caption():
    """workflow/report/figures.rst is a Jinja template with one branch per figure name (report(..., patterns=))."""
    figures = (REPO / "workflow/report/figures.rst").read_text()
    for name in FIGURES:
        assert f'snakemake.wildcards.name == "{name}"' in figures, name
    for name in ("tables", "report"):
        caption = REPO / "workflow" / "report" / f"{name}.rst"
        assert caption.exists() and caption.read_text().strip(), name


# ------------------------------------------------------------------ reads like a paper (issue 14)
def _section(md: str, heading: str) -> str:
    """The text of the ``## heading`` section, up to the next ``## `` heading."""
    return md.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _repeated_sentences(md: str, min_length: int = 60) -> list[str]:
    """Sentences (split on ". ") longer than ``min_length`` that occur more than once in the report's prose
    (table rows, image lines and headings left out; a list item or a paragraph is one line), also inside a
    longer sentence."""
    kept = [line for line in md.splitlines() if not line.lstrip().startswith(("|", "![", "#"))]
    paragraphs = re.split(r"\n\s*\n|\n(?=- )", "\n".join(kept))
    prose = "\n".join(" ".join(p.split()) for p in paragraphs)
    sentences = {part.strip().rstrip(".") for line in prose.splitlines() for part in line.split(". ")}
    return sorted(s for s in sentences if len(s) > min_length and prose.count(s) > 1)


def _table_rows(section: str, header_start: str) -> list[list[str]]:
    """The cells of each body row of the Markdown table whose header starts with ``header_start``."""
    lines = section.split(header_start, 1)[1].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_sections_are_in_paper_order(report):
    md = report[0].read_text()
    order = ("Background", "Setup", "Results", CLAIMS_SECTION, "Limitations", "Reproduce")
    assert SECTIONS == order
    assert tuple(re.findall(r"^## (.+)$", md, flags=re.M)) == order
    summary = md.split("\n## ", 1)[0]
    assert summary.startswith("# ") and "z-score − raw" in summary and "95% interval" in summary
    opening = summary.split("\n", 2)[2].lstrip()  # after the title: Figure 1 (summary), then a verdict per method
    assert opening.startswith("### Figure 1. Summary") and "](figures/summary.png)" in opening.split("\n\n")[1]
    verdicts = [line for line in summary.splitlines() if line.startswith("- ") and " vs raw logits (" in line]
    assert len(verdicts) == 2 and all("paper protocol, n = 2 seeds, δ = 0.50 points" in v for v in verdicts)
    assert "### Diagnostics" in _section(md, "Results") and "gain over CE" in _section(md, "Results")
    assert "](figures/logit_primer.png)" in _section(md, "Background")
    assert "### Protocol\n" in _section(md, "Setup")
    results = _section(md, "Results")
    assert "\n### Figures\n" in results and "](figures/accuracy_vs_temperature.png)" in results
    assert "### Headline" in results.split("### Figures")[0]


@pytest.mark.parametrize("which", ["report", "validation_report", "legacy_report"])
def test_each_thing_is_said_once(which, request):
    value = request.getfixturevalue(which)
    md = value[0].read_text() if which == "report" else value[0] if which == "validation_report" else value
    assert _repeated_sentences(md) == []
    from lskd.analysis.claims import CLAIMS

    for claim in CLAIMS.values():  # in its claim's entry only; the figure's caption names it by title
        assert md.count(md_escape(claim.statement)) == 1, claim.id
    selection = pd.read_csv(Path(request.getfixturevalue("results")) / "tables" / "headline.csv")["selection"][0]
    if which != "validation_report":  # how settings were selected: once, under Setup
        assert md.count(selection) == 1 and selection in _section(md, "Setup")


def test_repeated_sentences_are_found():
    sentence = "A sentence that is long enough to count as a repeated statement of the report"
    md = f"# t\n\n{sentence}. Other.\n\n## S\n\nWhy: {sentence}.\n\n| {sentence}. |\n"
    assert _repeated_sentences(md) == [sentence]
    assert _repeated_sentences(md.replace(f"Why: {sentence}.", "")) == []


def test_validation_protocol_and_unhealthy_cells_are_named(validation_report):
    md, drawn = validation_report
    summary = md.split("\n## ", 1)[0]
    assert ("Settings were chosen on a held-out validation split (stage 1) and the numbers are stage-2 test "
            "accuracies over 2 fresh seeds") in summary
    assert "KD z-score − raw" in summary and "as in the paper" not in summary
    assert ("CTKD z-score: no healthy setting (all 2 stage-1 runs chance-level: last-epoch top-1 at chance)"
            in summary)
    setup = _section(md, "Setup")
    assert "Validation protocol: each arm reports the" in setup and "stage 2 ran 2 fresh seeds (10, 11)." in setup
    results = _section(md, "Results")
    header = "| pair | method | logits | T | w | settings | n | last top-1 | best top-1 |"
    headline = {(r[1], r[2]): r for r in _table_rows(results, header)}
    assert headline[("CTKD", "z-score")][-1] == "no healthy setting (2 unhealthy runs)"
    assert headline[("CTKD", "z-score")][7:9] == ["—", "—"]
    assert headline[("KD", "raw")][-1] == "ok (1 unhealthy run left out)" and headline[("CTKD", "raw")][-1] == "ok"
    grid_header = "| pair | method | logits | T | w | n | last val top-1 | best val top-1 | status | reported |"
    grid = {tuple(r[1:5]): r for r in _table_rows(results, grid_header)}
    assert grid[("KD", "raw", "4", "9")][8] == "chance-level 1/2" and grid[("KD", "raw", "4", "9")][6]
    assert grid[("KD", "z-score", "4", "9")][6:9] == ["diverged", "diverged", "diverged"]
    assert grid[("CTKD", "z-score", "learned (15.6)", "0.9")][8] == "chance-level"
    assert grid[("KD", "raw", "1", "0.9")][8:] == ["ok", "✓"]
    accuracy = drawn["accuracy_vs_temperature"]
    assert accuracy["ylabels"][0] == "top-1 − CE student (validation, points)"
    caption = results.split("Accuracy vs temperature, relative to the CE student", 1)[1].split("\n####", 1)[0]
    assert "on the validation split held out of the training set (stage 1)" in caption
    assert "KD raw T=4, w=9: chance-level 1/2" in caption and "KD z-score T=4, w=9: diverged 2/2" in caption
    assert "3 chance-level and 2 diverged" in _section(md, "Limitations")


def test_run_health_counts_and_lists_the_excluded_runs(validation_report):
    md, _ = validation_report
    health = _section(md, "Results").split("\n### Run health\n", 1)[1].split("\n### ", 1)[0]
    assert "from the first rule that applies: **diverged**" in health
    assert "check off (health.not_converged_share: null)" in health and "**not converged**" not in health  # CONFIG
    excluded, total = map(int, re.search(r"(\d+) of (\d+) distillation runs were excluded:", health).groups())
    assert excluded == 5 and total == 20 + 2 * 3  # 20 stage-1 runs; 2 fresh seeds of the 3 arms with a healthy setting
    assert "- 2 diverged: a non-finite loss, no accuracy" in health
    assert "- 3 chance-level: last-epoch top-1 at chance" in health
    header = "| pair | method | logits | setting | seed | stage | split | status | last top-1 (%) | what flagged it |"
    rows = _table_rows(health, header)
    assert len(rows) == 5 and {r[5] for r in rows} == {"stage 1"} and {r[6] for r in rows} == {"val"}
    assert ["KD", "raw", "T=4, w=9", "0", "stage 1", "val", "chance-level", "10.00", "at chance"] in [r[1:] for r in rows]
    assert sorted(r[7] for r in rows) == ["chance-level"] * 3 + ["diverged"] * 2
    assert all(r[8] == "" for r in rows if r[7] == "diverged")  # no accuracy


def test_tables_without_the_new_columns_read_as_the_defaults(legacy_report, report):
    md = legacy_report
    assert "as in the paper" in md.split("\n## ", 1)[0] and "no healthy setting (" not in md
    assert "Paper protocol: each arm reports the" in _section(md, "Setup")
    results = _section(md, "Results")
    grid = _table_rows(results, "| pair | method | logits | T | w | n | last top-1 | best top-1 | status | reported |")
    assert len(grid) == 10 and {r[8] for r in grid} == {"ok"} and all(r[6] for r in grid)
    headline = _table_rows(results, "| pair | method | logits | T | w | settings | n | last top-1 | best top-1 |")
    assert len(headline) == 4 and {r[-1] for r in headline} == {"ok"}
    assert results == _section(report[0].read_text(), "Results")  # the same as with the columns spelt out


def test_the_summary_ranks_every_method_and_transform_at_its_setting(report, results):
    """The summary's ranking: one row per arm of the headline, healthy arms first by mean last top-1."""
    summary = report[0].read_text().split("\n## Background\n", 1)[0]
    assert "| rank | pair | method | logits | T | w | n | last top-1 (%) |" in summary
    rows = [line.split("|")[1:-1] for line in summary.splitlines() if re.match(r"^\| (\d+|—) \|", line)]
    assert len(rows) == len(pd.read_csv(results / "tables/headline.csv"))
    ranked = [float(r[7].split("±")[0]) for r in rows if r[0].strip() != "—"]
    assert len(ranked) >= 2 and ranked == sorted(ranked, reverse=True)
    assert [int(r[0]) for r in rows if r[0].strip() != "—"] == list(range(1, len(ranked) + 1))
