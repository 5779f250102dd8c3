"""Multi-level logit distillation (Jin, Wang, Lin, "Multi-Level Logit Distillation", CVPR 2023), optionally
with a logit transform.

Each batch comes in a weak view (the standard training augmentation) and a strong view, and every alignment is
computed at several temperatures ``T_0, T_1, ..., T_4`` (by default ``T_0`` the base one and then 3, 5, 2, 6). With
``P = softmax(logits / T)`` of shape ``(B, K)``:

* instance level: ``KD_T(s, t) = T² · mean_i KL(P^t_i ‖ P^s_i)`` on ``f(logits)``; the logit transform ``f``
  (``transform``, e.g. ``zscore``) applies here only, as in the official LS code;
* class level: ``CC_T = ‖P^Tᵀ P^T − P^Sᵀ P^S‖²_F / K`` (class-correlation Gram matrices, never transformed);
* batch level: ``BC_T = ‖P^T P^Tᵀ − P^S P^Sᵀ‖²_F / B`` (sample-correlation Gram matrices, never transformed).

``w`` is ``kd_weight``, ``λ`` is ``ce_weight``, ``weak`` = (student, teacher) logits on the weak view,
``strong`` = on the strong view. Both weightings return ``{"ce", "kd", "cc", "bc"}`` with
``ce = λ (CE_weak + CE_strong)``, and differ in the other three:

* ``weighting="lskd"`` (default; every term as written in the paper, each once, no masks; differs from the
  official code on purpose)::

      kd = w Σ_T (KD_T(weak) + KD_T(strong)),   cc = w Σ_T CC_T(weak),   bc = w Σ_T BC_T(weak)

* ``weighting="official"`` (what the official code computes; needs exactly five temperatures)::

      kd = w [ 0.5 Σ_{i=0..4} KD_{T_i}(weak) + Σ_{i=0,1,2} KD_{T_i}(strong) + KD_{T_3}(weak) + KD_{T_4}(weak) ]
      cc = 0.5 w Σ_{i=0..4} CC_{T_i}(weak),      bc = 0.5 w Σ_{i=0..4} BC_{T_i}(weak)

  With the default temperatures that is ``0.5 Σ_{T∈{T_0,3,5,2,6}} KD_T(weak) + KD_2(weak) + KD_6(weak) +
  Σ_{T∈{T_0,3,5}} KD_T(strong)``. Source: ``MLKD.forward_train`` in ``mdistiller/distillers/MLKD.py`` of
  sunshangquan/logit-standardization-KD (the LS code, HEAD f6e5aa5), identical up to the ``logit_stand`` switch
  to ``KD_ours.forward_train`` in ``mdistiller/distillers/KD_ours.py`` of Jin-Ying/Multi-Level-Logit-Distillation
  (HEAD 5ee473f). There ``loss_kd = loss_kd_weak + loss_kd_strong``, where ``loss_kd_weak`` sums
  ``w · (kd_loss(weak, T) * mask).mean()`` over T ∈ {T_0, 3, 5, 2, 6} and ``loss_kd_strong`` sums
  ``w · kd_loss(...)`` over the *strong* pair at T_0, 3, 5 and the *weak* pair at 2 and 6 (the last two slots
  reuse the weak logits); ``loss_cc = loss_cc_weak`` and ``loss_bc = loss_bc_weak`` are the masked weak-view
  sums over the five temperatures (its ``loss_cc_strong``/``loss_bc_strong`` are computed but never added to
  the loss). CE is ``CE_WEIGHT · (CE(weak) + CE(strong))`` there too, as under ``"lskd"``. The trainer
  (``AugTrainer.train_iter`` in ``mdistiller/engine/trainer.py``) sums the four terms.

  Why the fixed 0.5: ``kd_loss``/``cc_loss``/``bc_loss`` already return batch-averaged scalars there (the
  ``reduce=False`` arguments are commented out), and ``(scalar * mask).mean()`` with the boolean mask
  "teacher confidence ≤ its median" (``np.percentile(·, 50)``; per sample for KD and BC, per class for CC)
  only multiplies the scalar by the kept fraction: exactly 0.5 for an even batch (class count) without ties,
  ``(n + 1) / 2n`` for an odd count ``n``, more with ties. Here that factor is the constant 0.5 (so the loss
  does not depend on ties or batch parity); no sample is masked.
  The slots are positional: ``T_3``/``T_4`` (the 4th and 5th temperature, 2 and 6 by default) are the ones the
  official strong-view sum takes on the weak pair.

The strong view is ``strong_view``: ``"strong"`` (lskd's RandAugment + Cutout, :mod:`lskd.data.transforms`) or
``"strong_fixmatch"`` (the official code's FixMatch-style RandAugment with random magnitudes + gray Cutout); the
method's ``views`` are ``("train", strong_view)``.

Config snippet (the official LS setting)::

    method: mlkd
    hparams: {temperature: 2, transform: zscore, ce_weight: 0.1, kd_weight: 9,
              weighting: official, strong_view: strong_fixmatch}
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from lskd.losses.base import CE_WEIGHT, KD_WEIGHT, TEMPERATURE, DistillationMethod, HParam
from lskd.losses.kd import kd_loss
from lskd.losses.registry import register_method
from lskd.losses.transforms import as_float


def _probs(logits: Tensor, temperature: float) -> Tensor:
    return F.softmax(as_float(logits) / temperature, dim=-1)


def cc_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Class-level alignment ``‖P_tᵀP_t − P_sᵀP_s‖²_F / K``."""
    p_s, p_t = _probs(student_logits, temperature), _probs(teacher_logits, temperature)
    return (p_t.T @ p_t - p_s.T @ p_s).square().sum() / p_s.shape[1]


def bc_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Batch-level alignment ``‖P_tP_tᵀ − P_sP_sᵀ‖²_F / B``."""
    p_s, p_t = _probs(student_logits, temperature), _probs(teacher_logits, temperature)
    return (p_t @ p_t.T - p_s @ p_s.T).square().sum() / p_s.shape[0]


WEIGHTINGS: tuple[str, ...] = ("lskd", "official")
STRONG_VIEWS: tuple[str, ...] = ("strong", "strong_fixmatch")
OFFICIAL_MASK_FRACTION = 0.5  # the official confidence masks keep half of the batch / classes (module docstring)


@register_method("mlkd")
class MLKD(DistillationMethod):
    """Multi-level logit distillation on a weak and a strong view; returns ``{"ce", "kd", "cc", "bc"}``.

    ``views`` is ``("train", strong_view)`` per instance (the class attribute is the default's).
    """

    views = ("train", "strong")
    paper = "Jin, Wang, Lin. Multi-Level Logit Distillation. CVPR 2023"
    hparams = {
        "temperature": TEMPERATURE.at(4.0, "base temperature T₀ of the instance, class and batch terms"),
        "extra_temperatures": HParam((3.0, 5.0, 2.0, 6.0), "the further temperatures every term is also taken at"),
        "ce_weight": CE_WEIGHT.at(0.1),
        "kd_weight": KD_WEIGHT.at(0.9, "weight of the instance-level KD terms (and of CC and BC, as the official "
                                       "code)"),
        "weighting": HParam("lskd", "lskd (each term once, averaged) or official (the official code's sums)",
                            choices=WEIGHTINGS),
        "strong_view": HParam("strong", "the strong augmentation: strong (RandAugment + Cutout) or strong_fixmatch "
                              "(the official FixMatch-style ops)", choices=STRONG_VIEWS),
    }

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        self.temperatures = tuple(TEMPERATURE.validate("temperature", t)
                                  for t in (self.temperature, *self.extra_temperatures))
        if self.weighting == "official" and len(self.temperatures) != 5:
            raise ValueError(
                "MLKD weighting 'official' needs exactly 4 extra_temperatures (the official code's slots "
                f"T_0, 3, 5, 2, 6), got {len(self.temperatures) - 1}")
        self.views = ("train", self.strong_view)

    def _kd(self, student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
        return kd_loss(student, teacher, temperature, **self.logit_args)

    def forward(
        self,
        student_logits: tuple[Tensor, Tensor],
        teacher_logits: tuple[Tensor, Tensor],
        targets: Tensor,
        epoch: int = 1,
    ) -> dict[str, Tensor]:
        (s_weak, s_strong), (t_weak, t_strong) = student_logits, teacher_logits
        ce = self.ce(s_weak, targets) + self.ce(s_strong, targets)
        if self.weighting == "official":
            return {"ce": ce, **self._official(s_weak, s_strong, t_weak, t_strong)}
        kd = cc = bc = 0.0
        for t in self.temperatures:
            kd = kd + self._kd(s_weak, t_weak, t) + self._kd(s_strong, t_strong, t)
            cc = cc + cc_loss(s_weak, t_weak, t)
            bc = bc + bc_loss(s_weak, t_weak, t)
        return {
            "ce": ce,
            "kd": self.kd_weight * kd,
            "cc": self.kd_weight * cc,
            "bc": self.kd_weight * bc,
        }

    def _official(self, s_weak: Tensor, s_strong: Tensor, t_weak: Tensor, t_strong: Tensor) -> dict[str, Tensor]:
        """The official code's weighting (module docstring): slots 3 and 4 of the strong sum take the weak pair."""
        half = OFFICIAL_MASK_FRACTION
        kd_weak = [self._kd(s_weak, t_weak, t) for t in self.temperatures]
        kd_strong = [self._kd(s_strong, t_strong, t) for t in self.temperatures[:3]]
        kd = half * sum(kd_weak) + sum(kd_strong) + kd_weak[3] + kd_weak[4]
        cc = sum(cc_loss(s_weak, t_weak, t) for t in self.temperatures)
        bc = sum(bc_loss(s_weak, t_weak, t) for t in self.temperatures)
        return {
            "kd": self.kd_weight * kd,
            "cc": half * self.kd_weight * cc,
            "bc": half * self.kd_weight * bc,
        }
