"""The conda environment(s) under workflow/envs/ agree with pyproject.toml, and every rule that runs code uses one.

Conda cannot be installed on the development machine (no channel reachable), so these checks are what keeps
``--use-conda`` honest there: same requirements, same Python, files that exist.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENV_FILES = sorted((ROOT / "workflow/envs").glob("*.yaml"))


def _requirements(lines: list[str]) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    return {r.name.lower().replace("_", "-"): r for r in reqs}


def _pip_section(env: dict) -> list[str]:
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    return pip


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_conda_env_pins_exactly_the_pyproject_dependencies(path):
    env = yaml.safe_load(path.read_text())
    pip = _pip_section(env)
    local = [line for line in pip if line.startswith("-e ")]
    assert local == ["-e ../.."], "lskd itself must come from the checkout (the repository root)"
    assert (path.parent / "../.." / "pyproject.toml").resolve() == ROOT / "pyproject.toml"
    in_env = _requirements([line for line in pip if not line.startswith("-")])
    in_pyproject = _requirements(PYPROJECT["dependencies"])
    assert sorted(in_env) == sorted(in_pyproject), "missing or extra packages"
    for name, req in in_pyproject.items():
        assert in_env[name].specifier == req.specifier, f"{name}: env {in_env[name].specifier} vs pyproject {req.specifier}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_conda_env_python_satisfies_requires_python(path):
    env = yaml.safe_load(path.read_text())
    (python,) = [d for d in env["dependencies"] if isinstance(d, str) and re.match(r"python\b", d)]
    version = python.split("=", 1)[1]
    assert version in SpecifierSet(PYPROJECT["requires-python"]), python
    assert "conda-forge" in env["channels"]


def test_every_rule_that_runs_code_names_an_existing_conda_env():
    rules_dir = ROOT / "workflow/rules"
    constants = dict(re.findall(r'^(\w+) = "(\.\./envs/[\w.]+)"', (rules_dir / "common.smk").read_text(), re.M))
    checked = 0
    for smk in sorted(rules_dir.glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), re.M):
            if not re.search(r"^\s+(shell|run|script|notebook|wrapper):", body, re.M):
                continue
            conda = re.search(r"^\s+conda:\s*\n\s+(\S+)", body, re.M)
            assert conda, f"rule {name} ({smk.name}) runs code but has no conda: directive"
            ref = conda.group(1).strip("\"'")
            target = constants.get(ref, ref)
            assert (rules_dir / target).resolve().is_file(), f"rule {name}: {target} does not exist"
            checked += 1
    assert checked >= 8


def test_the_workflow_validates_against_the_schema_the_package_ships():
    from lskd.workflow import SCHEMA

    assert (ROOT / "workflow/schemas/config.schema.yaml").resolve() == SCHEMA.resolve()


@pytest.mark.slow
def test_a_built_wheel_ships_the_schema_and_check_config_runs_outside_the_checkout(tmp_path):
    """A normal (non-editable) install carries the schema: `lskd check-config` needs no checkout."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    names = zipfile.ZipFile(next(tmp_path.glob("lskd-*.whl"))).namelist()
    assert "lskd/workflow/config.schema.yaml" in names
    out = subprocess.run([sys.executable, "-m", "lskd.cli", "check-config", str(ROOT / "configs/smoke.yaml")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "valid" in out.stdout, out.stderr[-2000:]
