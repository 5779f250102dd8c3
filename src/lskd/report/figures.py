"""The report's figures: seaborn plots of a results folder, saved as PNG, each with a caption computed from the
run's own numbers.

Each figure function takes the loaded :class:`~lskd.report.figures_common.Results` and the output folder and
returns a :class:`Figure`, or ``None`` when the data it needs is absent (then its PNG is not written, and a stale
one from an earlier report is removed); a figure whose input file is missing is skipped with a warning.

=============================  =======================================================================
name                           what it shows
=============================  =======================================================================
summary                        per method LS − raw and raw − CE with t intervals, ±δ, paper gains (report opening)
accuracy_vs_temperature        last-epoch top-1 vs temperature per pair, a line per method and transform
kd_weight_temperature_heatmap  top-1 over KD weight × temperature (the paper's Table 4), when the grid has it
training_curves                test top-1 and loss terms per epoch for one representative run per cell
logit_mean_std                 per-sample logit mean vs std: teacher, KD and KD+LS students (paper Fig. 5)
class_logit_difference         average teacher − student logit per true class, raw and z-scored (Fig. 3)
confidence_calibration         max-probability of correct vs wrong predictions, reliability diagram, ECE
logit_primer                   one teacher sample's logits, softmax at T ∈ {0.5, 1, 2, 5}, and after z-score
claim_<id>                     one per claim of the audit (:data:`lskd.report.figures_claims.CLAIM_FIGURES`),
                               shown in the report's "Does the paper's explanation hold here?" section
=============================  =======================================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lskd.report.figures_accuracy import (
    accuracy_vs_temperature,
    kd_weight_temperature_heatmap,
    training_curves,
)
from lskd.report.figures_claims import CLAIM_FIGURES
from lskd.report.figures_common import Figure, MissingAnalysisError, Results, load_results, plot_style
from lskd.report.figures_logits import (
    class_logit_difference,
    confidence_calibration,
    logit_mean_std,
)
from lskd.report.figures_primer import logit_primer
from lskd.report.figures_summary import summary

#: File-name prefix of the claim figures.
CLAIM_PREFIX = "claim_"
#: Figure name → function, in report order.
FIGURES: dict[str, Callable[[Results, Path], Figure | None]] = {
    "summary": summary,
    "accuracy_vs_temperature": accuracy_vs_temperature,
    "kd_weight_temperature_heatmap": kd_weight_temperature_heatmap,
    "training_curves": training_curves,
    "logit_mean_std": logit_mean_std,
    "class_logit_difference": class_logit_difference,
    "confidence_calibration": confidence_calibration,
    "logit_primer": logit_primer,
    **{f"{CLAIM_PREFIX}{claim}": draw for claim, draw in CLAIM_FIGURES.items()},
}


def draw_figures(results: Results, out_dir: Path) -> list[Figure]:
    """Draw every figure whose data is present into ``out_dir`` (see :func:`make_figures`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    with plot_style():
        for name, draw in FIGURES.items():
            try:
                figure = draw(results, out_dir)
            except MissingAnalysisError:  # an analysis step has not run: say which, never draw around it
                raise
            except FileNotFoundError as err:  # e.g. a teacher folder that is not there any more
                warnings.warn(f"figure {name} skipped: {err}", stacklevel=2)
                figure = None
            if figure is None:
                (out_dir / f"{name}.png").unlink(missing_ok=True)
            else:
                figures.append(figure)
    return figures


def make_figures(results_dir: Path, out_dir: Path, config: dict[str, Any]) -> list[Figure]:
    """Draw the report's figures for the results folder ``results_dir`` into ``out_dir`` (``<name>.png``).

    ``config`` is the validated workflow config (its grid order sets the method order). Returns the figures
    drawn, in report order; figures whose data is absent are skipped.
    """
    return draw_figures(load_results(results_dir, config), out_dir)


__all__ = ["CLAIM_PREFIX", "FIGURES", "Figure", "draw_figures", "make_figures"]
