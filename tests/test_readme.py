"""The README's Quickstart is what CI runs: `.ci/run` executes command 1 (all but its final `snakemake --cores all`,
which the smoke pipeline test covers) and command 2 verbatim, so CI proves the lines a user pastes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = " && snakemake --cores all"


def quickstart_commands() -> dict[int, str]:
    """``{1: command, 2: command}`` from the first bash block of README's Quickstart (each after its ``# N.``)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quickstart"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands, number = {}, None
    for line in block.splitlines():
        if m := re.match(r"# (\d)\. ", line):
            number = int(m.group(1))
        elif line.strip() and number is not None:
            commands[number] = line.strip()
            number = None
    return commands


def ci_lines() -> list[str]:
    return [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def test_quickstart_has_two_one_line_commands_without_sudo():
    commands = quickstart_commands()
    assert sorted(commands) == [1, 2]
    assert commands[1].endswith(PIPELINE) and "lskd setup-data" in commands[1]
    assert all("sudo" not in c for c in commands.values())  # runs as root where sudo is not installed


def test_ci_runs_the_quickstart_commands():
    commands, lines = quickstart_commands(), ci_lines()
    assert commands[1].removesuffix(PIPELINE) in lines
    assert commands[2] in lines
    assert lines.index(commands[1].removesuffix(PIPELINE)) < next(i for i, ln in enumerate(lines)
                                                                  if ln.startswith("apt-get update"))
    assert lines[-1] == commands[2]


def test_first_screen_says_what_how_long_and_where():
    text = (ROOT / "README.md").read_text()
    first = text[:text.index("```bash", text.index("## Quickstart")) + 600]
    assert "benchmark" in first and "report/report.html" in first
    head = text[:text.index("## Quickstart") + 2500]
    assert re.search(r"command 1 about \d+ min", head) and re.search(r"command 2 about \d+ min", head)
    assert len(text) < 20_000, "README grew past its first-screen budget; move reference material to workflow/ or configs/"


def _signed(text: str) -> float:
    return float(text.replace("−", "-").replace("+", ""))


def test_the_headline_numbers_are_those_of_the_run_kept_in_report_default():
    """The README's default-run verdicts (z-score − raw with its interval, and each raw arm's accuracy) are read back
    from that run's headline.csv, kept beside its figure in report/default/: editing one without the other fails."""
    import pandas as pd

    text = (ROOT / "README.md").read_text()
    caption = text[text.index("*Stage 1 of the default run"):]
    caption = " ".join(caption[:caption.index("*\n")].split())
    headline = pd.read_csv(ROOT / "report/default/headline.csv").set_index(["method", "transform"])
    number = r"([−+]?\d+\.\d\d)"
    quoted = re.findall(rf"{number} \[{number}, {number}\](?: points for)? (\w+)", caption)
    assert len(quoted) == len(headline.xs("zscore", level="transform")) > 0
    for mean, lo, hi, label in quoted:
        row = headline.loc[(label.lower(), "zscore")]
        assert [_signed(mean), _signed(lo), _signed(hi)] == [round(row[c], 2) for c in
                                                              ("diff_last_mean", "diff_last_lo", "diff_last_hi")], label
    raw = [float(x) for x in re.search(r"raw ([\d., ]+)%", caption).group(1).split(", ")]
    assert raw == [round(headline.loc[(label.lower(), "none"), "last_top1_mean"], 2) for *_, label in quoted]
