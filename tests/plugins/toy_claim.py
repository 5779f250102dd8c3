"""A claim kept outside lskd, as a user's own would be: it registers by being imported (``LSKD_PLUGINS=toy_claim``
with this folder on ``PYTHONPATH``) and then enters the audit, ``claims.csv`` and the report's claims section with
its figure. One file, nothing else to edit.

The claim (a test fixture, no paper): distilled students classify better than chance. ``θ`` = mean top-1 of the
students minus chance (100/K %), bootstrap interval over the students, predicted ``θ > 0``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lskd.analysis.stats import bootstrap_ci, mean_of
from lskd.claims import AuditConfig, AuditData, Claim, ClaimResult, register_claim
from lskd.claims.verdicts import interval_text
from lskd.report.figures_common import Figure, Results, new_figure


@register_claim
class ToyAccuracy(Claim):
    id = "toy_accuracy"
    title = "Toy accuracy"
    paper = "none: a test fixture"
    statement = "A distilled student classifies its test samples better than chance."
    order = 70

    def check(self, data: AuditData, cfg: AuditConfig) -> list[ClaimResult]:
        stat = "mean student top-1 minus chance (%)"
        if not data.students:
            return [self.not_applicable({}, "no distilled student in this results folder", stat)]
        acc = np.array([100.0 * s.samples["correct"].mean() for s in data.students])
        chance = 100.0 / int(data.students[0].samples.attrs["num_classes"])
        ci = bootstrap_ci(mean_of(acc - chance), len(acc), n_boot=cfg.n_boot_samples, seed=cfg.seed)
        dataset = data.students[0].pair[0]
        return [self.result({"dataset": dataset}, statistic=stat, comparison="students vs chance",
                            reference=chance, value=float(acc.mean()), ci=ci, threshold=0.0, direction="above",
                            unit="students", test=f"bootstrap 95% CI over the {len(acc)} students",
                            evidence=f"top-1 minus chance {interval_text(ci, 2)} (n={ci.n} students).")]

    def figure(self, res: Results, out_dir: Path) -> Figure | None:
        from lskd.claims.plots import claim_rows, claims_tables

        _, per_run = claims_tables(res)
        if claim_rows(res, self.id) is None or per_run.empty:
            return None
        fig = new_figure(4.0, 3.0)
        ax = fig.subplots()
        ax.hist(per_run["accuracy"], bins=10)
        ax.set(xlabel="student test top-1 (%)", ylabel="students")
        look = f"Top-1 of the {len(per_run)} students (histogram), from {per_run['accuracy'].min():.1f}%."
        return self.save_figure(fig, out_dir, look)
