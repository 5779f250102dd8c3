"""Curriculum temperature KD (Li, Li, Yang, Wang, Huang, Yang; AAAI 2023), composable with logit transforms.

A global temperature ``T = T_min + T_range · sigmoid(g)`` (range ``(1, 21)`` by default) is learned
adversarially: the student minimises ``L_KD(T)`` while ``g`` receives the *reversed* gradient ``−λ · ∂L/∂g``
through a gradient-reversal layer (Ganin & Lempitsky, 2015), so ``T`` moves to make distillation harder. The
curriculum raises ``λ`` with a cosine from ``λ_min = 0`` to ``λ_max = 1`` over the first ``curriculum_epochs``
(10) epochs: ``λ(e) = λ_min + (λ_max − λ_min) · (1 − cos(π · min(e, E) / E)) / 2``.
``g`` starts at 1 as in the official code (``T ≈ 15.6``).

``L = λ_CE · CE + λ_KD · T² · KL(softmax(f(v)/T) ‖ softmax(f(z)/T))``; with ``transform="zscore"`` the learned
``T`` plays the paper's base temperature τ (Sun et al., CVPR 2024, "CTKD + Ours": CE 0.1, KD 9).

Config snippet::

    method: ctkd
    hparams: {transform: zscore, ce_weight: 0.1, kd_weight: 9}
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from lskd.losses.base import CE_WEIGHT, KD_WEIGHT, DistillationMethod, HParam
from lskd.losses.kd import kd_loss
from lskd.losses.registry import register_method


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, lambda_: float) -> Tensor:  # type: ignore[override]
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return -ctx.lambda_ * grad, None


def gradient_reversal(x: Tensor, lambda_: float) -> Tensor:
    """Identity in the forward pass; multiplies the incoming gradient by ``−λ`` in the backward pass."""
    return _GradientReversal.apply(x, lambda_)


def cosine_curriculum(epoch: float, epochs: int, start: float = 0.0, end: float = 1.0) -> float:
    """Cosine ramp from ``start`` (epoch 0) to ``end`` (epoch ≥ ``epochs``)."""
    if epochs <= 0:
        return end
    progress = min(max(epoch, 0.0), epochs) / epochs
    return start + (end - start) * (1.0 - math.cos(math.pi * progress)) / 2.0


@register_method("ctkd")
class CTKD(DistillationMethod):
    """KD with a learnable global temperature trained through gradient reversal; returns ``{"ce", "kd"}``."""

    paper = "Li, Li, Yang, Wang, Huang, Yang. Curriculum Temperature for Knowledge Distillation. AAAI 2023"
    learns_temperature = True
    hparams = {
        "ce_weight": CE_WEIGHT.at(0.1),
        "kd_weight": KD_WEIGHT.at(0.9),
        "t_min": HParam(1.0, "lower end of the learned temperature's range", "positive"),
        "t_range": HParam(20.0, "width of the learned temperature's range: T = t_min + t_range · sigmoid(g)", "positive"),
        "init_logit": HParam(1.0, "initial g (the official 1 gives T ≈ 15.6 in (1, 21))", "number"),
        "lambda_min": HParam(0.0, "gradient-reversal strength λ at the start of the curriculum", "number"),
        "lambda_max": HParam(1.0, "λ at the end of the curriculum", "number"),
        "curriculum_epochs": HParam(10, "epochs of the cosine ramp of λ", "count"),
    }

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        self.temperature_logit = nn.Parameter(torch.tensor(self.init_logit))

    def temperature(self, logit: Tensor | None = None) -> Tensor:
        """``T_min + T_range · sigmoid(g)``, always inside ``(T_min, T_min + T_range)``."""
        g = self.temperature_logit if logit is None else logit
        return self.t_min + self.t_range * torch.sigmoid(g)

    def grl_lambda(self, epoch: float) -> float:
        return cosine_curriculum(epoch, self.curriculum_epochs, self.lambda_min, self.lambda_max)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, epoch: int = 1) -> dict[str, Tensor]:
        reversed_logit = gradient_reversal(self.temperature_logit, self.grl_lambda(epoch))
        temperature = self.temperature(reversed_logit)
        kd = kd_loss(student_logits, teacher_logits, temperature, **self.logit_args)
        return {"ce": self.ce(student_logits, targets), "kd": self.kd_weight * kd}

    def log_values(self) -> dict[str, float]:
        return {"temperature": float(self.temperature().detach())}
