"""Hinton knowledge distillation (Hinton, Vinyals, Dean, 2015), optionally on transformed logits.

``L_KD = T² · mean_i KL( softmax(f(v_i) / T) ‖ softmax(f(z_i) / T) )`` with teacher logits ``v``, student
logits ``z``, temperature ``T`` and logit transform ``f`` (``none`` gives textbook KD; ``zscore`` gives the
paper's logit-standardized KD, where ``T`` is the base temperature τ; Sun et al., CVPR 2024, Eq. 14 / Alg. 1).
The method adds ``λ_CE · CE(y, softmax(z))`` (official CIFAR-100 weights: λ_CE 0.1, λ_KD 0.9 at T 4; with
z-score τ 2 and λ_KD 9).

Config snippet::

    method: kd
    hparams: {temperature: 2, transform: zscore, ce_weight: 0.1, kd_weight: 9}
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from lskd.losses.base import CE_WEIGHT, KD_WEIGHT, TEMPERATURE, DistillationMethod
from lskd.losses.registry import register_method
from lskd.losses.transforms import transform_pair

REDUCTIONS: tuple[str, ...] = ("mean", "none")


def kl_per_sample(log_p_teacher: Tensor, log_p_student: Tensor) -> Tensor:
    """``KL(p_t ‖ p_s) = Σ_k p_t,k (log p_t,k − log p_s,k)`` per row, from log-probabilities (finite when p_t = 0)."""
    return F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(dim=-1)


def reduce_batch(per_sample: Tensor, reduction: str) -> Tensor:
    """``mean`` over the batch, or ``none``: the per-sample values as they are."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; allowed: {', '.join(REDUCTIONS)}")
    return per_sample.mean() if reduction == "mean" else per_sample


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float | Tensor, transform: str = "none",
            *, reduction: str = "mean", **logits: Any) -> Tensor:
    """Temperature-scaled KL divergence ``T² · KL(softmax(f(v)/T) ‖ softmax(f(z)/T))``.

    Args:
        student_logits: ``(B, K)`` student logits ``z``.
        teacher_logits: ``(B, K)`` teacher logits ``v`` (no gradient is needed through them).
        temperature: ``T > 0``; a tensor is allowed (CTKD learns it).
        transform: logit transform ``f`` applied to both sides before dividing by ``T``.
        reduction: ``mean`` over the batch (default) or ``none`` for the per-sample loss.
        logits: ``std``, ``eps`` of the transform (:func:`lskd.losses.transforms.standardize`).
    """
    z, v = transform_pair(student_logits, teacher_logits, transform, **logits)
    # student before teacher: with a learned (tensor) T the order fixes how autograd sums T's gradient, so this
    # order keeps CTKD runs bit-identical to those of earlier versions
    z = z / temperature
    v = v / temperature
    per_sample = kl_per_sample(F.log_softmax(v, dim=-1), F.log_softmax(z, dim=-1))
    return reduce_batch(per_sample * temperature**2, reduction)


@register_method("kd")
class KD(DistillationMethod):
    """Hinton KD with an optional logit transform; returns ``{"ce", "kd"}``."""

    paper = "Hinton, Vinyals, Dean. Distilling the Knowledge in a Neural Network. NeurIPS workshop 2015"
    hparams = {"temperature": TEMPERATURE, "ce_weight": CE_WEIGHT.at(0.1), "kd_weight": KD_WEIGHT.at(0.9)}

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, epoch: int = 1) -> dict[str, Tensor]:
        return {"ce": self.ce(student_logits, targets),
                "kd": self.kd_weight * kd_loss(student_logits, teacher_logits, self.temperature, **self.logit_args)}
