"""The claims audit: every registered claim checked on a results folder's runs (``claims.csv``), with the per-run
statistics it is computed from (``claims_runs.csv``)."""

from __future__ import annotations

import pandas as pd

from lskd.claims.base import AuditConfig
from lskd.claims.data import AuditData, load_audit_data, run_claims_table
from lskd.claims.registry import registered_claims
from lskd.claims.verdicts import CLAIM_COLUMNS, VERDICTS, holm_verdicts


def audit_claims(data: AuditData, cfg: AuditConfig = AuditConfig()) -> pd.DataFrame:
    """Every registered claim on ``data``: one row per claim and scope (columns :data:`CLAIM_COLUMNS`), in claim
    order, the verdicts Holm-adjusted over all of them (one family per report: :func:`holm_verdicts`)."""
    rows = [r.as_row() for claim in registered_claims() for r in claim.check(data, cfg)]
    df = holm_verdicts(pd.DataFrame(rows, columns=list(CLAIM_COLUMNS)))
    bad = set(df["verdict"]) - set(VERDICTS)
    if bad:
        raise AssertionError(f"unknown verdicts {bad}")
    return df


def audit_runs(runs: pd.DataFrame, cfg: AuditConfig = AuditConfig()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(claims, claims_runs)`` for a run table of :func:`lskd.analysis.collect_runs` (files read from each
    ``run_dir``): the audit and the per-run statistics it is computed from."""
    data = load_audit_data(runs)
    return audit_claims(data, cfg), run_claims_table(data)


__all__ = ["audit_claims", "audit_runs"]
