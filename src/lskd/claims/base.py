"""What a claim is: :class:`Claim` holds the paper's statement and where it is made, its statistic and verdict
rule (:meth:`Claim.check`) and its figure with the caption (:meth:`Claim.figure`); plus the small pieces every
claim's check shares (scopes, the wording of the tests, the audit's settings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from lskd.analysis.formatting import fmt_interval, fmt_num
from lskd.analysis.inference import DEFAULT_SMALLEST_EFFECT, MIN_SEEDS
from lskd.analysis.stats import BootstrapCI
from lskd.claims.verdicts import NOT_APPLICABLE, ClaimResult, Direction, test_values, verdict, verdict_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from lskd.claims.data import AuditData
    from lskd.report.figures_common import Figure, Results

#: The logit transforms the claims compare: "raw" students and "LS" (z-score) students.
RAW, LS = "none", "zscore"
#: File-name prefix of the claim figures (``claim_<id>.png``).
CLAIM_PREFIX = "claim_"


@dataclass(frozen=True)
class AuditConfig:
    """The audit's settings: the smallest effect of interest δ (points of top-1; the config's
    ``analysis.smallest_effect``) for claims on accuracy, and the bootstrap over test samples (``n_boot_samples``
    resamples, generator ``seed``) of the one claim with a single unit per teacher (teacher_size, Fig. 5a)."""

    smallest_effect: float = DEFAULT_SMALLEST_EFFECT
    n_boot_samples: int = 2_000
    seed: int = 0


class Claim:
    """A claim of the paper, registered with :func:`lskd.claims.register_claim` (one module per claim).

    Class attributes: ``id`` (stable, used in file names and ``claims.csv``; by default the module's name),
    ``title``, ``paper`` (where the paper makes it), ``statement`` (the claim in one sentence; by default the class
    docstring), ``order`` (its place in the audit and the report),
    ``figure_subject`` (what its figure's title names, when not the title and ``paper``) and ``signed`` (whether
    its statistic is a difference, written with a sign as ``+0.120``, or a ratio). Subclasses implement
    :meth:`check` and, when the claim has one, :meth:`figure`.
    """

    id: ClassVar[str]
    title: ClassVar[str]
    paper: ClassVar[str]
    statement: ClassVar[str]
    order: ClassVar[int] = 100
    figure_subject: ClassVar[str] = ""
    signed: ClassVar[bool] = True

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        """The claim's statistic and verdict on ``data``: one row per scope (a pair and method, a pair, a dataset),
        ``not applicable`` rows saying why where the config lacks the runs it needs."""
        raise NotImplementedError

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        """The claim's figure ``claim_<id>.png`` in ``out_dir`` with its caption (:meth:`caption`), or ``None``
        when the data it needs is absent (then the report says why there is none)."""
        return None

    @property
    def figure_name(self) -> str:
        return f"{CLAIM_PREFIX}{self.id}"

    @property
    def figure_title(self) -> str:
        """``"Claim 1: logit shift (Eq. 11)"``: the claim's number in the audit's order and ``figure_subject``."""
        from lskd.claims.registry import registered_claims

        number = 1 + [c.id for c in registered_claims()].index(self.id)
        return f"Claim {number}: {self.figure_subject or f'{self.title.lower()} ({self.paper})'}"

    def save_figure(self, fig: MplFigure, out_dir: Path, look: str) -> Figure:
        """Save the claim's figure as ``claim_<id>.png`` with its title and :meth:`caption`."""
        from lskd.report.figures_common import save

        return save(fig, out_dir, self.figure_name, self.figure_title, self.caption(look))

    def caption(self, look: str) -> str:
        """A claim figure's caption: ``look`` (what is drawn), then which claim it illustrates, by title."""
        return (f"{look} The figure illustrates the claim “{self.title}”; its verdict and evidence are in the "
                "claims table.")

    def result(self, scope: dict[str, str], *, statistic: str, comparison: str, reference: float, value: float,
               ci: BootstrapCI, threshold: float, direction: Direction, unit: str, test: str,
               evidence: str) -> ClaimResult:
        """A row of ``claims.csv``: the verdict of ``ci`` against ``threshold``
        (:func:`lskd.claims.verdicts.verdict`)."""
        return ClaimResult(claim=self.id, title=self.title, paper=self.paper, dataset=scope.get("dataset", ""),
                           teacher=scope.get("teacher", ""), student=scope.get("student", ""),
                           method=scope.get("method", ""), statistic=statistic, comparison=comparison,
                           reference=reference, value=value, estimate=ci.mean, lo=ci.lo, hi=ci.hi,
                           threshold=threshold, direction=direction, n=ci.n, unit=unit, test=test,
                           verdict=verdict(ci, threshold, direction), evidence=evidence)

    def tested(self, scope: dict[str, str], values: Sequence[float], *, statistic: str, comparison: str,
               reference: float, value: float, evidence: str, unit: str = "seeds", threshold: float = 0.0,
               direction: Direction = "above", digits: int = 3) -> ClaimResult:
        """A row of ``claims.csv`` from the per-unit values of ``θ`` (one per seed, or per teacher): the t interval,
        the one-sided tests against ``threshold`` and the verdict before the report's Holm correction
        (:func:`lskd.claims.verdicts.test_values`, :func:`~lskd.claims.verdicts.holm_verdicts`). ``evidence`` is
        followed by ``θ`` with its interval and ``n``."""
        t = test_values(values, threshold, direction)
        n_text = f"n={t.n} {unit}"
        interval = fmt_interval(t.mean, t.lo, t.hi, digits, signed=self.signed)
        test = (f"Student t 95% CI over {t.n} {unit}; one-sided t-tests against {fmt_num(threshold, digits)}, "
                "Holm-adjusted over the report's claims" if t.n >= MIN_SEEDS else
                f"descriptive: {t.n} {unit}, fewer than {MIN_SEEDS}; no test")
        return ClaimResult(claim=self.id, title=self.title, paper=self.paper, dataset=scope.get("dataset", ""),
                           teacher=scope.get("teacher", ""), student=scope.get("student", ""),
                           method=scope.get("method", ""), statistic=statistic, comparison=comparison,
                           reference=reference, value=value, estimate=t.mean, lo=t.lo, hi=t.hi,
                           threshold=threshold, direction=direction, n=t.n, unit=unit, test=test,
                           verdict=verdict_of(t.n, t.p_supported, t.p_refuted), evidence=f"{evidence}; θ = {interval} "
                           f"({n_text}).", p_supported=t.p_supported, p_refuted=t.p_refuted)

    def missing_arm(self, scope: dict[str, str], raw: list, ls: list, statistic: str, why: str) -> ClaimResult | None:
        """A ``not applicable`` row when the raw (``raw``) or the z-score (``ls``) students of a scope are missing
        (``why`` follows the arm's name), else ``None``."""
        if raw and ls:
            return None
        arm = "raw-logit" if not raw else "z-score"
        return self.not_applicable(scope, f"no healthy {arm} {scope.get('method', '').upper()} student {why}", statistic)

    def not_applicable(self, scope: dict[str, str], why: str, statistic: str = "") -> ClaimResult:
        """A row for a scope the config cannot test, saying why."""
        nan = math.nan
        return ClaimResult(claim=self.id, title=self.title, paper=self.paper, dataset=scope.get("dataset", ""),
                           teacher=scope.get("teacher", ""), student=scope.get("student", ""),
                           method=scope.get("method", ""), statistic=statistic, comparison="", reference=nan,
                           value=nan, estimate=nan, lo=nan, hi=nan, threshold=nan, direction="", n=0, unit="",
                           test="", verdict=NOT_APPLICABLE, evidence=f"not applicable: {why}")


    def or_not_applicable(self, rows: list[ClaimResult], why: str, statistic: str) -> list[ClaimResult]:
        """``rows``, or one ``not applicable`` row saying ``why`` when the data gave none."""
        return rows or [self.not_applicable({}, why, statistic)]


def pair_scope(pair: tuple[str, str, str], method: str = "") -> dict[str, str]:
    return {"dataset": pair[0], "teacher": pair[1], "student": pair[2], "method": method}


def nanmean(x: pd.Series | np.ndarray) -> float:
    """The mean of the finite entries (NaN when there is none)."""
    arr = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else math.nan


def sample_test(n: int, n_boot: int, what: str = "test samples") -> str:
    return (f"one seed: paired bootstrap 95% CI over the {n:,} {what} ({n_boot:,} resamples); sample-to-sample "
            "noise only, seed-to-seed variation is not captured")


#: Resamples drawn at a time by the bootstraps over test samples or students (bounds memory; the draws depend on it).
SAMPLE_BATCH = 100

__all__ = [
    "CLAIM_PREFIX", "LS", "RAW", "SAMPLE_BATCH", "AuditConfig", "Claim", "nanmean", "pair_scope", "sample_test",
    ]
