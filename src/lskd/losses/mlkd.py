"""Multi-level logit distillation (Jin, Wang, Lin; CVPR 2023), optionally with a logit transform.

Each batch comes in a weak view (the standard training augmentation) and a strong view (RandAugment + Cutout),
and every alignment is computed at several temperatures ``T ∈ {T_0, 3, 5, 2, 6}`` (``T_0`` the base one). With
``P = softmax(f(logits) / T)`` of shape ``(B, K)``:

* instance level: ``KD_T = T² · mean_i KL(P^T_i ‖ P^S_i)`` (the logit transform ``f`` applies here only,
  as in the official LS code);
* class level: ``CC_T = ‖P^Tᵀ P^T − P^Sᵀ P^S‖²_F / K`` (class-correlation Gram matrices);
* batch level: ``BC_T = ‖P^T P^Tᵀ − P^S P^Sᵀ‖²_F / B`` (sample-correlation Gram matrices).

``L = λ_CE (CE_weak + CE_strong) + λ_KD Σ_T (KD_T^weak + KD_T^strong) + λ_KD Σ_T CC_T^weak + λ_KD Σ_T BC_T^weak``.

Differences from the official code, on purpose: the official code multiplies the already batch-averaged weak-view
terms by a teacher-confidence mask and averages it, which only rescales them by the kept fraction (≈ 0.5), and
its strong-view KD sum reuses weak-view logits at T = 2 and 6. lskd uses every term as written above.

Config snippet::

    method: mlkd
    hparams: {temperature: 4, extra_temperatures: [3, 5, 2, 6], ce_weight: 0.1, kd_weight: 0.9}
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from lskd.losses.base import DistillationMethod
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


@register_method("mlkd")
class MLKD(DistillationMethod):
    """Multi-level logit distillation on a weak and a strong view; returns ``{"ce", "kd", "cc", "bc"}``."""

    views = ("train", "strong")

    def __init__(
        self,
        temperature: float = 4.0,
        extra_temperatures: Sequence[float] = (3.0, 5.0, 2.0, 6.0),
        ce_weight: float = 0.1,
        kd_weight: float = 0.9,
        transform: str = "none",
        std: str = "unbiased",
        eps: float = 1e-7,
    ) -> None:
        super().__init__(ce_weight=ce_weight, transform=transform, std=std, eps=eps)
        self.temperatures = tuple(self.positive("temperature", t) for t in (temperature, *extra_temperatures))
        self.kd_weight = self.non_negative("kd_weight", kd_weight)

    def forward(
        self,
        student_logits: tuple[Tensor, Tensor],
        teacher_logits: tuple[Tensor, Tensor],
        targets: Tensor,
        epoch: int = 1,
    ) -> dict[str, Tensor]:
        (s_weak, s_strong), (t_weak, t_strong) = student_logits, teacher_logits
        kd = cc = bc = 0.0
        for t in self.temperatures:
            kd = kd + kd_loss(s_weak, t_weak, t, self.transform, std=self.std, eps=self.eps)
            kd = kd + kd_loss(s_strong, t_strong, t, self.transform, std=self.std, eps=self.eps)
            cc = cc + cc_loss(s_weak, t_weak, t)
            bc = bc + bc_loss(s_weak, t_weak, t)
        return {
            "ce": self.ce(s_weak, targets) + self.ce(s_strong, targets),
            "kd": self.kd_weight * kd,
            "cc": self.kd_weight * cc,
            "bc": self.kd_weight * bc,
        }
