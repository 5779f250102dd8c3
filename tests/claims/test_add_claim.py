"""Adding a claim: a toy claim registered from a module outside lskd (tests/plugins/toy_claim.py) gets a row in the
audit table, a figure with its caption, and an entry in the report's claims section, with no other file edited."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lskd.claims import CLAIMS, AuditConfig, audit_claims, registry
from lskd.claims.data import AuditData, StudentRun, run_claims_table
from lskd.claims.sample_stats import claim_sample_stats
from lskd.losses.registry import PLUGINS_ENV
from lskd.report.figures import FIGURES
from lskd.report.figures_common import Results
from lskd.report.render import claims_section_md, md_escape

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
BUILT_IN = list(CLAIMS)


@pytest.fixture
def toy_claim(monkeypatch: pytest.MonkeyPatch) -> str:
    """Load the plug-in through ``$LSKD_PLUGINS``; the registry is restored afterwards."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv(PLUGINS_ENV, "toy_claim")
    monkeypatch.setattr(registry, "_CLAIMS", dict(registry._CLAIMS))
    monkeypatch.delitem(sys.modules, "toy_claim", raising=False)
    return "toy_accuracy"


def _students(n: int = 120, k: int = 10) -> AuditData:
    rng = np.random.default_rng(0)
    v = 3.0 * rng.normal(size=(n, k))
    y = v.argmax(1)
    students = []
    for seed in (0, 1):
        for transform, scale in (("none", 1.0), ("zscore", 0.3)):
            z = scale * v + rng.normal(size=(n, k))
            key = {"dataset": "synthetic", "teacher": "t", "student": "s", "method": "kd", "transform": transform,
                   "temperature": 2.0, "kd_weight": 1.0, "seed": seed, "effective_temperature": 2.0,
                   "selected": True, "run_dir": f"kd/{transform}/{seed}"}
            students.append(StudentRun(key, claim_sample_stats(z, v, y)))
    return AuditData(students=students)


def test_a_plugin_claim_is_audited_drawn_and_reported(toy_claim, tmp_path):
    assert list(CLAIMS) == [*BUILT_IN, toy_claim]  # registered by $LSKD_PLUGINS, placed by its `order`
    data = _students()
    claims = audit_claims(data, AuditConfig(n_boot_samples=200))
    assert list(dict.fromkeys(claims["claim"])) == [*BUILT_IN, toy_claim]
    row = claims[claims["claim"] == toy_claim].iloc[0]
    assert row["verdict"] == "supported" and row["unit"] == "students" and row["n"] == 4

    runs = pd.DataFrame(columns=["run_dir", "role", "dataset", "teacher", "student", "method", "transform"])
    res = Results(tmp_path, {}, runs, {"claims": claims, "claims_runs": run_claims_table(data)})
    assert f"claim_{toy_claim}" in FIGURES
    figure = FIGURES[f"claim_{toy_claim}"](res, tmp_path)
    assert figure is not None and figure.path.exists()
    assert "The figure illustrates the claim “Toy accuracy”" in figure.caption

    section = claims_section_md(res, [figure], first_number=1)
    assert f"### Claim {len(BUILT_IN) + 1}. Toy accuracy (none: a test fixture)" in section
    assert md_escape(CLAIMS[toy_claim].statement) in section
    assert f"#### Figure 1. Claim {len(BUILT_IN) + 1}: toy accuracy (none: a test fixture)" in section
    assert md_escape(figure.caption) in section
    assert f"**supported**. {md_escape(row['evidence'])}" in section
    assert "| Toy accuracy | none: a test fixture |" in section  # its row of the claims table


def test_the_plugin_is_gone_once_unloaded():
    assert "toy_accuracy" not in CLAIMS and "claim_toy_accuracy" not in FIGURES
