"""Transformed teacher matching, TTM and WTTM (Zheng & Yang, ICLR 2024), optionally on transformed logits.

TTM drops the temperature on the student side. The teacher's distribution ``p_t = softmax(f(v))`` is power-transformed
with ``γ = 1 / T``, ``p_t^γ / Σ_k p_t,k^γ``, which is exactly ``softmax(f(v) / T)``, and the student matches it at
temperature 1:

* ``L_TTM  = mean_i KL( softmax(f(v_i) / T) ‖ softmax(f(z_i)) )``                   (no ``T²`` factor)
* ``L_WTTM = mean_i w_i · KL( softmax(f(v_i) / T) ‖ softmax(f(z_i)) )``, ``w_i = Σ_k p_t,ik^γ``

with student logits ``z``, teacher logits ``v`` and logit transform ``f``. The sample weight ``w_i`` (between 1 and
``K^(1−γ)`` for ``T ≥ 1``) grows with the teacher's uncertainty, so smooth teacher outputs count more. Each method adds
``λ_CE · CE(y, softmax(z))``; ``kd_weight`` is the paper's ``β``. At ``T = 1`` both are KD at ``T = 1`` (``w_i = 1``).

Logit transforms: all four. Softmax ignores a per-sample shift, so ``center`` gives the same loss as ``none`` and
``scale`` the same as ``zscore``; under ``zscore`` the teacher's softened logits have standard deviation ``1 / T``
and the student's 1 (the weights ``w_i`` are then computed from the standardized teacher logits as well).

Official code (github.com/zkxufo/TTM, commit fe457b33a71ba27536ec04fe3d32c5b04963522f):

* ``distiller_zoo/ttm.py`` lines 13-21: ``p_t = softmax(y_t) ** l / Σ``, ``KL`` summed over classes, batch mean; the
  student gets plain ``log_softmax(y_s)``; no ``T²`` factor. ``l`` is ``γ``; here ``temperature = 1 / γ``.
* ``distiller_zoo/wttm.py`` lines 13-21: the same with ``norm = Σ_k softmax(y_t)_k ** l`` (line 16, from the
  teacher's ``T = 1`` distribution) and ``loss = mean(norm * KL)`` (line 19): the weights are used as they are, not
  normalised across the batch.
* ``helper/loops.py`` line 83: ``loss = gamma · CE + alpha · loss_div + beta · loss_kd`` (``-r``, ``-a``, ``-b``).

Here the power transform is computed in the log domain (``log_softmax(f(v) / T)`` and
``w_i = exp(logsumexp(γ · log_softmax(f(v_i))))``), which equals the official formula and stays finite for logits of
any size (``softmax ** γ`` underflows to 0 in float32).

Defaults: the official repository has no per-pair settings (``train_student.py`` defaults are ``--ttm_l 1``, line 68,
``-r 1``, line 60, and ``-b None``, line 62, i.e. ``β`` must be given). The per-pair ``T``/``β`` values are listed in
the paper's appendix A.4, which could not be read when this module was written, so the defaults are the official
README's examples:

* TTM: ``README.md`` lines 21-22 (vgg13 → vgg8): ``--ttm_l 0.1 -r 1 -b 45``, i.e. ``T = 10``, ``λ_CE = 1``, ``β = 45``.
* WTTM: ``README.md`` lines 40-41 (WTTM added to CRD): ``--add wttm --ttm_l 0.2 -a 4``, i.e. ``T = 5``, ``β = 4``,
  ``λ_CE = 1`` (``-r`` default). This is the only WTTM weight in the official code.

Check the resnet32x4 → resnet8x4 values against the paper's appendix A.4 before a paper-faithful run.

Config snippets::

    method: ttm
    hparams: {temperature: 10, ce_weight: 1.0, kd_weight: 45}

    method: wttm
    hparams: {temperature: 5, ce_weight: 1.0, kd_weight: 4}
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lskd.losses.base import CE_WEIGHT, KD_WEIGHT, TEMPERATURE, DistillationMethod
from lskd.losses.kd import kl_per_sample, reduce_batch
from lskd.losses.registry import register_method
from lskd.losses.transforms import as_float, standardize, transform_pair


def ttm_terms(student_logits: Tensor, teacher_logits: Tensor, temperature: float, transform: str = "none",
              **logits: Any) -> tuple[Tensor, Tensor]:
    """Per-sample ``(KL(softmax(f(v)/T) ‖ softmax(f(z))), log w)``, ``w = Σ_k softmax(f(v))_k^(1/T)``, each ``(B,)``
    (``logits``: ``std``, ``eps`` of the transform)."""
    z, v = transform_pair(student_logits, teacher_logits, transform, **logits)
    kl = kl_per_sample(F.log_softmax(v / temperature, dim=-1), F.log_softmax(z, dim=-1))
    return kl, log_power_sum(v, temperature)


def log_power_sum(teacher_logits: Tensor, temperature: float) -> Tensor:
    """``log Σ_k p_t,k^(1/T)`` per row with ``p_t = softmax(v)``: ``logsumexp(log_softmax(v) / T)`` (finite for any
    logits, where ``softmax ** (1/T)`` underflows)."""
    return torch.logsumexp(F.log_softmax(teacher_logits, dim=-1) / temperature, dim=-1)


def ttm_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float, transform: str = "none",
             *, reduction: str = "mean", **logits: Any) -> Tensor:
    """``mean_i KL(softmax(f(v_i)/T) ‖ softmax(f(z_i)))``: the transformed teacher matched at student temperature 1."""
    kl, _ = ttm_terms(student_logits, teacher_logits, temperature, transform, **logits)
    return reduce_batch(kl, reduction)


def wttm_weights(teacher_logits: Tensor, temperature: float, transform: str = "none", **logits: Any) -> Tensor:
    """``(B,)`` WTTM sample weights ``w_i = Σ_k p_t,ik^(1/T)`` with ``p_t = softmax(f(v))`` (no batch normalisation)."""
    return log_power_sum(standardize(as_float(teacher_logits), transform, **logits), temperature).exp()


def wttm_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float, transform: str = "none",
              *, reduction: str = "mean", **logits: Any) -> Tensor:
    """``mean_i w_i · KL(softmax(f(v_i)/T) ‖ softmax(f(z_i)))`` with the WTTM weights ``w_i``."""
    kl, log_weight = ttm_terms(student_logits, teacher_logits, temperature, transform, **logits)
    return reduce_batch(log_weight.exp() * kl, reduction)


class _TransformedTeacherMatching(DistillationMethod):
    """Shared by TTM and WTTM: a temperature on the teacher side only, and ``{"ce", "kd"}``."""

    paper = "Zheng, Yang. Knowledge Distillation Based on Transformed Teacher Matching. ICLR 2024"
    weighted: ClassVar[bool] = False
    hparams = {
        "temperature": TEMPERATURE.at(10.0, "teacher-side temperature T = 1/γ (the power transform p_t^γ); the "
                                            "student uses 1"),
        "ce_weight": CE_WEIGHT,
        "kd_weight": KD_WEIGHT.at(45.0, "weight β of the TTM term (KL without a T² factor)"),
    }

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, epoch: int = 1
    ) -> dict[str, Tensor]:
        loss = wttm_loss if self.weighted else ttm_loss
        return {"ce": self.ce(student_logits, targets),
                "kd": self.kd_weight * loss(student_logits, teacher_logits, self.temperature, **self.logit_args)}


@register_method("ttm")
class TTM(_TransformedTeacherMatching):
    """Transformed teacher matching: KL(softmax(f(v)/T) ‖ softmax(f(z))); returns ``{"ce", "kd"}``."""


@register_method("wttm")
class WTTM(_TransformedTeacherMatching):
    """Weighted TTM: TTM with each sample weighted by Σ_k p_t,k^(1/T); returns ``{"ce", "kd"}``."""

    weighted = True
    hparams = {
        "temperature": _TransformedTeacherMatching.hparams["temperature"].at(5.0),
        "kd_weight": KD_WEIGHT.at(4.0, "weight β of the WTTM term (per-sample weights Σ_k p_t,k^γ, not normalised)"),
    }
