"""Logit transforms applied before the temperature-scaled softmax.

The transform is the paper's idea, kept orthogonal to the loss (Sun et al., *Logit Standardization in
Knowledge Distillation*, CVPR 2024, Sec. 4 and Algorithm 1). For logits ``z`` of one sample over ``K``
classes, with mean ``m = mean_k z_k`` and standard deviation ``s``:

* ``none``   : ``z``
* ``center`` : ``z - m``                 (invariant to ``z + b``)
* ``scale``  : ``z / (s + eps)``         (invariant to ``a * z``, ``a > 0``)
* ``zscore`` : ``(z - m) / (s + eps)``   (invariant to ``a * z + b``, ``a > 0``)

``std="unbiased"`` uses Bessel's correction ``s² = Σ(z - m)² / (K - 1)`` as the official code
(``torch.Tensor.std`` default, ``eps = 1e-7``); ``std="population"`` divides by ``K`` as the paper's
Algorithm 1. Dividing a transformed vector by the temperature then gives, for ``zscore``, a vector with zero
mean and standard deviation ``1 / τ`` (the paper's base temperature τ).

``zscore`` is computed with torch's fused ``layer_norm`` kernel, ``(z - m) / sqrt(s_pop² + eps²)``, times
``sqrt((K - 1) / K)`` for the unbiased convention: one forward and one backward kernel instead of seven small
ones, which keeps the z-score step within a few percent of a plain KD step (``lskd bench``). It equals
``(z - m) / (s + eps)`` up to a relative ``eps / s`` (1e-7 for logits with ``s`` near 1, i.e. float32 rounding),
maps a constant vector to zeros, and keeps its gradient finite there.

Note for losses that only see ``softmax(f(z) / T)`` (KD, DKD, CTKD, MLKD's instance term): softmax ignores a
per-sample constant shift, so ``center`` gives exactly the same loss as ``none`` and ``scale`` the same as
``zscore``. Differences between those rows in an experiment (e.g. the paper's Table 4) are run-to-run noise;
the relation terms of MLKD are not affected because they are never transformed.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

TRANSFORMS: tuple[str, ...] = ("none", "center", "scale", "zscore")
STD_CONVENTIONS: tuple[str, ...] = ("unbiased", "population")

TransformName = Literal["none", "center", "scale", "zscore"]
StdConvention = Literal["unbiased", "population"]


def check_transform(kind: str, std: str = "unbiased") -> None:
    """Raise ``ValueError`` naming the allowed values when ``kind`` or ``std`` is unknown."""
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown logit transform {kind!r}; allowed: {', '.join(TRANSFORMS)}")
    if std not in STD_CONVENTIONS:
        raise ValueError(f"unknown std convention {std!r}; allowed: {', '.join(STD_CONVENTIONS)}")


def as_float(logits: Tensor) -> Tensor:
    """Upcast half-precision logits to float32 so that means, stds and softmaxes stay finite and exact."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def standardize(
    logits: Tensor,
    kind: str = "zscore",
    std: str = "unbiased",
    eps: float = 1e-7,
) -> Tensor:
    """Apply a logit transform over the last (class) dimension.

    Args:
        logits: ``(..., K)`` logits; half precision is upcast to float32.
        kind: ``none`` | ``center`` | ``scale`` | ``zscore`` (see the module docstring for the formulas).
        std: ``unbiased`` (official code, Bessel's correction) or ``population`` (paper's Algorithm 1).
        eps: added to the standard deviation (``zscore``: ``eps²`` to the variance), so a constant logit vector
            maps to zeros instead of NaN; must be > 0.

    Returns:
        The transformed logits, same shape, float32 or wider.
    """
    check_transform(kind, std)
    if kind == "none":
        return logits
    z = as_float(logits)
    if kind == "center":
        return z - z.mean(dim=-1, keepdim=True)
    if kind == "zscore":
        k = z.shape[-1]
        out = F.layer_norm(z, (k,), eps=eps * eps)
        return out * math.sqrt((k - 1) / k) if std == "unbiased" and k > 1 else out
    var = torch.var(z, dim=-1, keepdim=True, correction=1 if std == "unbiased" else 0)
    # clamping keeps d sqrt / d var finite for constant vectors (var = 0); values above `tiny` are unchanged
    sd = var.clamp_min(torch.finfo(var.dtype).tiny).sqrt()
    return z / (sd + eps)


def transform_pair(
    student_logits: Tensor, teacher_logits: Tensor, transform: str = "none", std: str = "unbiased", eps: float = 1e-7
) -> tuple[Tensor, Tensor]:
    """``(f(z), f(v))``: the student's and the teacher's logits, upcast by :func:`as_float`, after the same logit
    transform ``f`` (checked first, so a bad name fails before any compute). What every loss starts from."""
    check_transform(transform, std)
    return (standardize(as_float(student_logits), transform, std, eps),
            standardize(as_float(teacher_logits), transform, std, eps))
