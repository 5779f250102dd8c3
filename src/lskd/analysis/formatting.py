"""The one missing-value rule and the one number formatter of the analysis and the report.

:func:`is_missing` says whether a table cell or a config value holds no number (``None``, NaN, pandas' ``NA``);
:func:`fmt_num` writes a number as text. The specialised formatters below (a mean ± std, an estimate with its
interval) are built on :func:`fmt_num`, so every number of the tables, the captions and the report is written
the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def is_missing(x: Any) -> bool:
    """``True`` for ``None``, pandas' ``NA`` and a NaN float (Python or NumPy); ``False`` for anything else."""
    return x is None or x is pd.NA or (isinstance(x, (float, np.floating)) and math.isnan(x))


def fmt_num(x: Any, digits: int = 2, *, fixed: bool = False, signed: bool = False, general: bool = False,
            missing: str | None = "") -> str:
    """A number as text: ``digits`` decimals with trailing zeros dropped (``2.0 → "2"``, ``0.90 → "0.9"``), or kept
    when ``fixed`` (``"0.90"``); ``general``: ``digits`` significant digits (``"g"`` format); a sign when
    ``signed``. A missing value (:func:`is_missing`) gives ``missing``, or, with ``missing=None``, NaN written as
    Python writes it (``"+nan"``: the interval formatters below, whose inputs are numbers)."""
    if missing is not None and is_missing(x):
        return missing
    v, sign = float(x), "+" if signed else ""
    if not (fixed or general) and v.is_integer():
        return f"{int(v):{sign}d}"
    text = f"{v:{sign}.{digits}{'g' if general else 'f'}}"
    return text if fixed or general else text.rstrip("0").rstrip(".")


def fmt_interval(estimate: float, lo: float, hi: float, digits: int = 3, *, signed: bool = True) -> str:
    """``"+0.120 [+0.080, +0.160]"`` (``signed=False``: ``"5.48 [4.34, 6.89]"``), or ``"+0.120 (no interval)"``
    when ``lo``/``hi`` are missing or not finite."""
    est = fmt_num(estimate, digits, fixed=True, signed=signed, missing=None)
    if is_missing(lo) or is_missing(hi) or not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{est} (no interval)"
    return f"{est} [{fmt_num(lo, digits, fixed=True, signed=signed)}, {fmt_num(hi, digits, fixed=True, signed=signed)}]"


def fmt_ci(mean: float, lo: float, hi: float, digits: int = 2) -> str:
    """``"+3.29 [+2.90, +3.61]"``: a signed difference with its interval."""
    def f(x: float) -> str:
        return fmt_num(x, digits, fixed=True, signed=True, missing=None)

    return f"{f(mean)} [{f(lo)}, {f(hi)}]"


def fmt_mean_std(mean: float, std: float, n: int, digits: int = 2) -> str:
    """``"76.62 ± 0.21 (n=4)"``; for ``n == 1`` just ``"76.62 (n=1)"`` (no spread to show)."""
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise ValueError(f"fmt_mean_std: non-finite mean/std {mean!r}/{std!r}")
    if n <= 1:
        return f"{fmt_num(mean, digits, fixed=True)} (n={n})"
    return f"{fmt_num(mean, digits, fixed=True)} ± {fmt_num(std, digits, fixed=True)} (n={n})"


__all__ = ["fmt_ci", "fmt_interval", "fmt_mean_std", "fmt_num", "is_missing"]
