"""Normalized knowledge distillation, NormKD (Chi, Zheng, Li, Yang, Wu, Lin, Cai; arXiv 2308.00520, 2023).

Each sample gets its own temperature, proportional to the spread of its logits, and each side its own:

* ``T^s_i = T_norm · (σ(f(z_i)) + ε)``, ``T^t_i = T_norm · (σ(f(v_i)) + ε)``
* ``L_NormKD = mean_i (T^t_i)² · KL( softmax(f(v_i) / T^t_i) ‖ softmax(f(z_i) / T^s_i) )``

with student logits ``z``, teacher logits ``v``, ``σ`` the standard deviation over the classes (``std="unbiased"``,
Bessel's correction, as ``torch.Tensor.std`` in the official code; ``"population"`` divides by ``K``) and ``f`` the
logit transform. The method adds ``λ_CE · CE(y, softmax(z))`` and weights the NormKD term by ``λ_KD``.

Official code (github.com/gizi1/NormKD, commit 279371b69beeadbfe29104875b728a687a7cea49),
``mdistiller/distillers/NormKD.py`` lines 8-23 (``kd_loss_normal``):

* the std is ``logits.std(dim=1)``, i.e. unbiased, taken on each side's own raw logits (lines 9-10), and teacher and
  student each get their own ``T_i`` (lines 12-16);
* the logits are only divided by ``T_i``, not centred (lines 15-16): softmax ignores a per-sample shift, so this is
  exactly ``zscore(z) / T_norm`` inside the softmax;
* the per-sample KL is multiplied by the *teacher's* ``T^t_i²`` (line 21, ``dywt**2``), then averaged over the batch.
  The task description said "scaled by ``T_i²``"; this module follows the code and uses the teacher's.
* There is no ``ε``: a constant logit vector gives 0/0 there. Here ``ε`` (the ``eps`` hyper-parameter, 1e-7, the
  same ``ε`` the logit transforms use) is added to ``σ`` so that such a row gives a uniform distribution, a
  near-zero weight and finite gradients.

Defaults (CIFAR-100): ``mdistiller/engine/cfg.py`` lines 67-71 of the same commit: ``TEMPERATURE_NORM = 2.0``
(line 68), ``CE_WEIGHT = 0.1`` (line 70), ``KD_WEIGHT = 0.9`` (line 71). None of the CIFAR-100 configs
(``configs/cifar100/NormKD/*.yaml``, including ``res32x4_res8x4.yaml``) overrides them; the ImageNet configs use
``TEMPERATURE_NORM 1`` with CE 0.5 and KD 0.5.

Here ``temperature`` is ``T_norm`` (so the grid's temperature axis sets it).

Logit transforms: only ``none`` and ``center``. Both give the same loss (softmax ignores the per-sample shift and
``σ`` is shift-invariant). Under ``scale`` or ``zscore`` the transformed logits have ``σ = 1``, so ``T_i = T_norm``
for every sample and NormKD collapses to KD with logit standardization (``kd`` with ``transform: zscore``, ``τ =
T_norm``) up to the constant factor: the per-sample weight becomes ``T_norm²``. Those rows would duplicate ``kd``
and are refused.

Properties (tests/losses/test_method_normkd.py): the loss is invariant to any per-sample positive affine map of the
student's logits; scaling both sides of sample ``i`` by ``a_i > 0`` leaves the KL unchanged and multiplies the
weight ``(T^t_i)²``, hence that sample's loss, by ``a_i²``.

Config snippet::

    method: normkd
    hparams: {temperature: 2, ce_weight: 0.1, kd_weight: 0.9}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lskd.losses.base import CE_WEIGHT, KD_WEIGHT, LOGIT_HPARAMS, TEMPERATURE, DistillationMethod
from lskd.losses.kd import kl_per_sample, reduce_batch
from lskd.losses.registry import register_method
from lskd.losses.transforms import check_transform, transform_pair

#: The logit transforms NormKD accepts (``scale`` and ``zscore`` make every ``σ`` 1: KD with LS).
NORMKD_TRANSFORMS: tuple[str, ...] = ("none", "center")


def row_std(logits: Tensor, std: str = "unbiased") -> Tensor:
    """``(B, 1)`` standard deviation over the last dimension; finite gradient for constant rows (variance 0)."""
    var = torch.var(logits, dim=-1, keepdim=True, correction=1 if std == "unbiased" else 0)
    return var.clamp_min(torch.finfo(var.dtype).tiny).sqrt()


def check_normkd_transform(transform: str, std: str = "unbiased") -> None:
    """Raise ``ValueError`` unless ``transform`` is one NormKD accepts."""
    check_transform(transform, std)
    if transform not in NORMKD_TRANSFORMS:
        raise ValueError(
            f"normkd does not take transform {transform!r}; allowed: {', '.join(NORMKD_TRANSFORMS)} "
            f"(with scale or zscore every per-sample std is 1 and NormKD is KD with logit standardization: use kd)"
        )


def normkd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float, transform: str = "none",
                *, std: str = "unbiased", eps: float = 1e-7, reduction: str = "mean") -> Tensor:
    """``mean_i (T^t_i)² · KL(softmax(f(v_i)/T^t_i) ‖ softmax(f(z_i)/T^s_i))`` with ``T_i = T_norm · (σ_i + ε)``.

    Args:
        student_logits: ``(B, K)`` student logits ``z``.
        teacher_logits: ``(B, K)`` teacher logits ``v``.
        temperature: ``T_norm > 0``.
        transform: ``none`` or ``center`` (the same loss; see the module docstring).
        std: ``unbiased`` (official) or ``population`` standard deviation ``σ``.
        eps: added to ``σ``.
        reduction: ``mean`` over the batch (default) or ``none`` for the per-sample loss.
    """
    check_normkd_transform(transform, std)
    z, v = transform_pair(student_logits, teacher_logits, transform, std, eps)
    t_student = temperature * (row_std(z, std) + eps)
    t_teacher = temperature * (row_std(v, std) + eps)
    kl = kl_per_sample(F.log_softmax(v / t_teacher, dim=-1), F.log_softmax(z / t_student, dim=-1))
    return reduce_batch(kl * t_teacher.squeeze(-1) ** 2, reduction)


@register_method("normkd")
class NormKD(DistillationMethod):
    """NormKD: KD with a per-sample temperature T_norm·std(logits) on each side; returns ``{"ce", "kd"}``."""

    paper = (
        "Chi, Zheng, Li, Yang, Wu, Lin, Cai. NormKD: Normalized Logits for Knowledge Distillation. "
        "arXiv 2308.00520, 2023"
    )
    transforms = NORMKD_TRANSFORMS
    hparams = {
        "temperature": TEMPERATURE.at(2.0, "T_norm: each sample's temperature is T_norm times the std of its logits "
                                           "(per side)"),
        "ce_weight": CE_WEIGHT.at(0.1),
        "kd_weight": KD_WEIGHT.at(0.9, "weight λ_KD of the NormKD term (KL scaled per sample by the teacher's T_i²)"),
        "transform": LOGIT_HPARAMS["transform"].at("none", "logit transform applied to student and teacher logits: "
                                                           "none or center (same loss)"),
        "std": LOGIT_HPARAMS["std"].at("unbiased", "standard deviation in T_i: unbiased (the official NormKD code) "
                                                   "or population"),
        "eps": LOGIT_HPARAMS["eps"].at(1e-7, "added to the standard deviation in T_i (0 in the official code; keeps "
                                             "constant rows finite)"),
    }

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, epoch: int = 1
    ) -> dict[str, Tensor]:
        return {"ce": self.ce(student_logits, targets),
                "kd": self.kd_weight * normkd_loss(student_logits, teacher_logits, self.temperature, **self.logit_args)}
