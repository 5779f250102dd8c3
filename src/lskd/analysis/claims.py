"""The claims audit as the analysis stage calls it; the claims themselves are the registered objects of
:mod:`lskd.claims` (one module per claim)."""

from lskd.claims import CLAIMS, AuditConfig, Claim, audit_claims, audit_runs

__all__ = ["CLAIMS", "AuditConfig", "Claim", "audit_claims", "audit_runs"]
