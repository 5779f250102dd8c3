"""Decoupled knowledge distillation (Zhao, Cui, Song, Qiu, Liang; CVPR 2022), optionally on transformed logits.

With ``b = [p_t, 1 − p_t]`` the binary target / non-target probabilities and ``p̂`` the softmax over the
non-target classes only (all at temperature ``T`` after the logit transform ``f``):

* ``TCKD = KL(b^T ‖ b^S)``
* ``NCKD = KL(p̂^T ‖ p̂^S)``
* ``L_DKD = T² · mean_i (α · TCKD + β · NCKD)``

and classical KD decomposes as ``KD = TCKD + (1 − p_t^T) · NCKD`` (DKD paper, Eq. 1–5). The method ramps the DKD
term linearly over the first ``warmup`` epochs (``min(epoch / warmup, 1)``, epochs counted from 1 as the
official code) and adds ``λ_CE · CE``. With z-score (Sun et al., CVPR 2024) the official code uses τ 2 and
multiplies α and β by the KD weight 9; here that is ``kd_weight``.

Log-probabilities are taken with ``logsumexp`` over the relevant class subsets instead of masking with
``−1000`` and ``log(softmax)``, so raw logits of any magnitude stay finite.

Config snippet::

    method: dkd
    hparams: {temperature: 4, alpha: 1, beta: 8, warmup: 20, ce_weight: 1.0}
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lskd.losses.base import CE_WEIGHT, KD_WEIGHT, TEMPERATURE, DistillationMethod, HParam
from lskd.losses.kd import kl_per_sample
from lskd.losses.registry import register_method
from lskd.losses.transforms import transform_pair


def binary_log_probs(scaled_logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """``(log b, log p̂)``: ``(B, 2)`` log [p_target, 1 − p_target] and ``(B, K−1)`` non-target log-softmax."""
    target_mask = F.one_hot(targets, scaled_logits.shape[-1]).bool()
    lse_all = scaled_logits.logsumexp(dim=-1)
    target = scaled_logits.gather(-1, targets[:, None]).squeeze(-1)
    others = scaled_logits[~target_mask].view(scaled_logits.shape[0], -1)
    lse_others = others.logsumexp(dim=-1)
    log_b = torch.stack([target - lse_all, lse_others - lse_all], dim=-1)
    return log_b, F.log_softmax(others, dim=-1)


def dkd_terms(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, temperature: float,
              transform: str = "none", **logits: Any) -> tuple[Tensor, Tensor]:
    """Per-sample ``(T² · TCKD, T² · NCKD)``, each of shape ``(B,)`` (``logits``: ``std``, ``eps`` of the transform)."""
    z, v = transform_pair(student_logits, teacher_logits, transform, **logits)
    log_b_s, log_nt_s = binary_log_probs(z / temperature, targets)
    log_b_t, log_nt_t = binary_log_probs(v / temperature, targets)
    scale = temperature**2
    return kl_per_sample(log_b_t, log_b_s) * scale, kl_per_sample(log_nt_t, log_nt_s) * scale


def dkd_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, temperature: float, alpha: float,
             beta: float, transform: str = "none", **logits: Any) -> Tensor:
    """``T² · mean_i (α · TCKD_i + β · NCKD_i)`` (batch mean), see the module docstring."""
    tckd, nckd = dkd_terms(student_logits, teacher_logits, targets, temperature, transform, **logits)
    return (alpha * tckd + beta * nckd).mean()


@register_method("dkd")
class DKD(DistillationMethod):
    """Decoupled KD with linear warm-up; returns ``{"ce", "tckd", "nckd"}``."""

    paper = "Zhao, Cui, Song, Qiu, Liang. Decoupled Knowledge Distillation. CVPR 2022"
    hparams = {
        "temperature": TEMPERATURE,
        "alpha": HParam(1.0, "weight α of the target-class term TCKD", "non_negative"),
        "beta": HParam(8.0, "weight β of the non-target term NCKD", "non_negative"),
        "warmup": HParam(20, "epochs over which the KD terms ramp up linearly from 0", "count"),
        "ce_weight": CE_WEIGHT,
        "kd_weight": KD_WEIGHT.at(1.0, "multiplies α and β (the LS recipe's weight)"),
    }

    def ramp(self, epoch: int) -> float:
        """``min(epoch / warmup, 1)``; 1 when ``warmup`` is 0."""
        return 1.0 if self.warmup == 0 else min(epoch / self.warmup, 1.0)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, epoch: int = 1) -> dict[str, Tensor]:
        tckd, nckd = dkd_terms(student_logits, teacher_logits, targets, self.temperature, **self.logit_args)
        weight = self.ramp(epoch) * self.kd_weight
        return {
            "ce": self.ce(student_logits, targets),
            "tckd": weight * self.alpha * tckd.mean(),
            "nckd": weight * self.beta * nckd.mean(),
        }
