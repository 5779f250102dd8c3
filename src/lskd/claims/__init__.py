"""Claims audit: does the paper's explanation of *why* logit standardization helps hold on this run's data?

Sun et al., *Logit Standardization in Knowledge Distillation* (CVPR 2024), argue through the mechanism, not only
through accuracy. Each claim is one module of this package holding one registered :class:`Claim`: the paper's
statement and where it is made, a statistic, the comparison and the verdict with its uncertainty (one rule for
all: :mod:`lskd.claims.verdicts`), and the figure that illustrates it with its caption. Per-sample quantities are
those of :mod:`lskd.claims.sample_stats`; "raw" students use transform ``none``, "LS" students ``zscore``, both at
the setting the headline reports (:func:`lskd.analysis.selected_runs`), paired by seed.

Public API::

    from lskd.claims import CLAIMS, AuditConfig, audit_runs, register_claim
    claims, per_run = audit_runs(runs)        # claims.csv and claims_runs.csv
    CLAIMS["logit_shift"].check(data, cfg)    # one claim's rows
    CLAIMS["logit_shift"].figure(res, out)    # its figure and caption

Adding a claim is one module: a :class:`Claim` subclass decorated with ``@register_claim`` in this package, or in a
module named in ``$LSKD_PLUGINS``; the audit, ``claims.csv``, the report's claims section and its figures read
the registry.

Verdicts (:mod:`lskd.claims.verdicts`): θ once per seed (the unit of replication; per-sample quantities are
averaged within a run first), a Student-t 95% interval, one-sided t-tests against the paper's threshold, Holm over
every row of the report, and "descriptive" below 3 seeds. The Fig. 5a teacher-size claim has one run per teacher
and keeps a bootstrap interval over test samples with the interval rule (:func:`~lskd.claims.verdicts.verdict`),
outside the Holm family.
"""

import importlib
import pkgutil

from lskd.claims.audit import audit_claims, audit_runs
from lskd.claims.base import AuditConfig, Claim
from lskd.claims.data import AuditData, StudentRun, TeacherRun, load_audit_data, run_claims_table
from lskd.claims.registry import CLAIMS, get_claim, register_claim, registered_claims
from lskd.claims.verdicts import CLAIM_COLUMNS, VERDICTS, ClaimResult

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "CLAIMS", "CLAIM_COLUMNS", "VERDICTS", "AuditConfig", "AuditData", "Claim", "ClaimResult", "StudentRun",
    "TeacherRun", "audit_claims", "audit_runs", "get_claim", "load_audit_data", "register_claim",
    "registered_claims", "run_claims_table",
]
