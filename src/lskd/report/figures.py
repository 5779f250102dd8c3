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
claim_<id>                     one per registered claim (:meth:`lskd.claims.Claim.figure`), in claim order,
                               shown in the report's "Does the paper's explanation hold here?" section
=============================  =======================================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lskd.claims.base import CLAIM_PREFIX
from lskd.claims.registry import registered_claims
from lskd.report.figures_accuracy import (
    accuracy_vs_temperature,
    kd_weight_temperature_heatmap,
    training_curves,
)
from lskd.report.figures_common import Figure, MissingAnalysisError, Results, load_results, plot_style
from lskd.report.figures_logits import (
    class_logit_difference,
    confidence_calibration,
    logit_mean_std,
)
from lskd.report.figures_primer import logit_primer
from lskd.report.figures_summary import summary

Draw = Callable[[Results, Path], Figure | None]
#: The figures that illustrate no claim, in report order.
GENERAL_FIGURES: dict[str, Draw] = {
    "summary": summary,
    "accuracy_vs_temperature": accuracy_vs_temperature,
    "kd_weight_temperature_heatmap": kd_weight_temperature_heatmap,
    "training_curves": training_curves,
    "logit_mean_std": logit_mean_std,
    "class_logit_difference": class_logit_difference,
    "confidence_calibration": confidence_calibration,
    "logit_primer": logit_primer,
}


class _Figures(Mapping[str, Draw]):
    """Figure name → function in report order: :data:`GENERAL_FIGURES`, then each registered claim's figure (read
    from the registry each time, so a claim added by a plug-in is drawn too)."""

    def _all(self) -> dict[str, Draw]:
        return {**GENERAL_FIGURES, **{c.figure_name: c.figure for c in registered_claims()}}

    def __getitem__(self, name: str) -> Draw:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


#: Figure name → function, in report order.
FIGURES: Mapping[str, Draw] = _Figures()


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


__all__ = ["CLAIM_PREFIX", "FIGURES", "GENERAL_FIGURES", "Figure", "draw_figures", "make_figures"]
