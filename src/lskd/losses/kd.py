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

from lskd.losses.base import DistillationMethod
from lskd.losses.registry import register_method
from lskd.losses.transforms import as_float, check_transform, standardize


def kl_per_sample(log_p_teacher: Tensor, log_p_student: Tensor) -> Tensor:
    """``KL(p_t ‖ p_s) = Σ_k p_t,k (log p_t,k − log p_s,k)`` per row, from log-probabilities (finite when p_t = 0)."""
    return F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(dim=-1)


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float | Tensor,
    transform: str = "none",
    *,
    std: str = "unbiased",
    eps: float = 1e-7,
    reduction: str = "mean",
) -> Tensor:
    """Temperature-scaled KL divergence ``T² · KL(softmax(f(v)/T) ‖ softmax(f(z)/T))``.

    Args:
        student_logits: ``(B, K)`` student logits ``z``.
        teacher_logits: ``(B, K)`` teacher logits ``v`` (no gradient is needed through them).
        temperature: ``T > 0``; a tensor is allowed (CTKD learns it).
        transform: logit transform ``f`` applied to both sides before dividing by ``T``.
        std, eps: see :func:`lskd.losses.transforms.standardize`.
        reduction: ``mean`` over the batch (default) or ``none`` for the per-sample loss.
    """
    check_transform(transform, std)
    z = standardize(as_float(student_logits), transform, std, eps) / temperature
    v = standardize(as_float(teacher_logits), transform, std, eps) / temperature
    per_sample = kl_per_sample(F.log_softmax(v, dim=-1), F.log_softmax(z, dim=-1)) * temperature**2
    if reduction == "none":
        return per_sample
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"unknown reduction {reduction!r}; allowed: mean, none")


@register_method("kd")
class KD(DistillationMethod):
    """Hinton KD with an optional logit transform; returns ``{"ce", "kd"}``."""

    paper = "Hinton, Vinyals, Dean. Distilling the Knowledge in a Neural Network. NeurIPS workshop 2015"
    hparam_help = {**DistillationMethod.hparam_help,
                   "temperature": "softmax temperature T (the base temperature τ under zscore)",
                   "kd_weight": "weight λ_KD of the T²-scaled KL term"}

    def __init__(
        self,
        temperature: float = 4.0,
        ce_weight: float = 0.1,
        kd_weight: float = 0.9,
        **logits: Any,
    ) -> None:
        super().__init__(ce_weight=ce_weight, **logits)
        self.temperature = self.positive("temperature", temperature)
        self.kd_weight = self.non_negative("kd_weight", kd_weight)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, epoch: int = 1) -> dict[str, Tensor]:
        return {
            "ce": self.ce(student_logits, targets),
            "kd": self.kd_weight
            * kd_loss(student_logits, teacher_logits, self.temperature, self.transform, std=self.std, eps=self.eps),
        }
