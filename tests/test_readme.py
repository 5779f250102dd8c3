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


def test_the_default_run_account_is_generated_from_its_kept_tables():
    """The README's account of the default run is what `lskd readme-block` writes from that run's tables, kept in
    report/default/ (headline, runs, claims, run.json): editing a number by hand, or the tables without the README,
    fails here."""
    from lskd.report.readme_block import block_of, read_kept, run_account

    text = (ROOT / "README.md").read_text()
    assert block_of(text) == run_account(*read_kept(ROOT / "report/default"))
    figure = re.search(r"!\[[^\]]*\]\((report/default/[^)]+\.png)\)", text)
    assert figure and (ROOT / figure.group(1)).exists()
