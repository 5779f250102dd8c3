"""DIST: knowledge distillation from a stronger teacher (Huang, You, Wang, Qian, Xu; NeurIPS 2022), optionally on
transformed logits.

DIST replaces the KL divergence with correlation: it asks the student to rank, not to copy. With
``Y = softmax(f(·) / τ)`` the ``(B, K)`` probability matrices of student (``Y^s``) and teacher (``Y^t``) and
``ρ(a, b) = Σ_j (a_j − ā)(b_j − b̄) / (‖a − ā‖ · ‖b − b̄‖ + 1e-8)`` the Pearson correlation:

* inter-class: ``L_inter = τ² · (1 − mean_i ρ(Y^s_i,:, Y^t_i,:))``   (each sample's row over the classes)
* intra-class: ``L_intra = τ² · (1 − mean_k ρ(Y^s_:,k, Y^t_:,k))``   (each class's column over the batch)
* ``L = λ_CE · CE(y, softmax(z)) + β · L_inter + γ · L_intra``

Each term lies in ``[0, 2τ²]`` and is minimal when the student's probabilities are a positive affine map of the
teacher's (e.g. equal): ``τ² · mean ε / (n² + ε)`` with ``n`` the norm of the centred vectors, i.e. 0 up to the
``ε = 1e-8``. The intra-class term needs a batch: with one sample every column is constant and ``L_intra = τ²``; it is
computed on the batch each process sees, as in the official code.

Logit transforms: all four, applied to each side's logits before dividing by ``τ``. As for KD, ``center`` gives
the same loss as ``none`` and ``scale`` the same as ``zscore`` (softmax ignores a per-sample shift).

Official code: github.com/hunto/DIST_KD (commit 2418f18b1fedd7c2646a7b1b9a27d5c674c2170b) points its
``classification`` submodule to github.com/hunto/image_classification_sota at commit
d9662f7df68fe46b973c4580b7c9b896cedcd301:

* ``lib/models/losses/dist_kd.py`` lines 4-34: Pearson as the cosine of centred vectors with ``eps = 1e-8`` added to
  the product of the norms (lines 4-10; the same ``1e-8`` here), ``1 − mean`` (line 14), the intra-class term on the
  transposed matrices (line 18), and ``τ²`` on *both* terms (lines 31-32);
* ``lib/models/losses/kd_loss.py`` lines 31-33: ``kd: dist_t4`` builds ``DIST(beta=1, gamma=1, tau=4)``;
* ``configs/strategies/distill/dist_cifar.yaml`` lines 34-36 (the one CIFAR-100 config, used for every pair in the
  README, resnet32x4 → resnet8x4 included): ``ori_loss_weight 1``, ``kd_loss_weight 2``, ``kd: dist_t4``; label
  smoothing 0 (line 15).

So the CIFAR-100 defaults are ``temperature = τ = 4``, ``ce_weight = 1`` and ``beta = gamma = 2`` (``kd_loss_weight 2``
× the loss's own ``β = γ = 1``; the official code's ``beta``/``gamma`` names are kept). The TTM authors' DIST
re-implementation (github.com/zkxufo/TTM ``train_student.py`` lines 76-78) has the same ``τ = 4``, ``β = γ = 1``.

``kd_weight`` (default 1, the official weights) multiplies β and γ, so the grid's KD-weight axis scales DIST as it
scales DKD's α and β (the LS recipe's weight; lskd's addition, not in the official code).

Config snippet::

    method: dist
    hparams: {temperature: 4, ce_weight: 1.0, beta: 2, gamma: 2, kd_weight: 1}
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lskd.losses.base import CE_WEIGHT, KD_WEIGHT, TEMPERATURE, DistillationMethod, HParam
from lskd.losses.registry import register_method
from lskd.losses.transforms import transform_pair

#: Added to the product of the norms in the Pearson correlation (official ``dist_kd.py``).
PEARSON_EPS = 1e-8


def pearson_rows(a: Tensor, b: Tensor, eps: float = PEARSON_EPS) -> Tensor:
    """Pearson correlation of matching rows of ``a`` and ``b`` (``(N, M)`` → ``(N,)``); 0 for a constant row."""
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    # vector_norm has a zero (sub)gradient at the zero vector, so constant rows keep finite gradients
    norms = torch.linalg.vector_norm(a, dim=-1) * torch.linalg.vector_norm(b, dim=-1)
    return (a * b).sum(dim=-1) / (norms + eps)


def dist_terms(student_logits: Tensor, teacher_logits: Tensor, temperature: float, transform: str = "none",
               **logits: Any) -> tuple[Tensor, Tensor]:
    """``(L_inter, L_intra)``: ``τ² (1 − mean row correlation)`` and ``τ² (1 − mean column correlation)``
    (``logits``: ``std``, ``eps`` of the transform)."""
    z, v = transform_pair(student_logits, teacher_logits, transform, **logits)
    y_s, y_t = (z / temperature).softmax(dim=-1), (v / temperature).softmax(dim=-1)
    scale = temperature**2
    inter = scale * (1 - pearson_rows(y_s, y_t).mean())
    intra = scale * (1 - pearson_rows(y_s.transpose(0, 1), y_t.transpose(0, 1)).mean())
    return inter, intra


def dist_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float, beta: float = 1.0,
              gamma: float = 1.0, transform: str = "none", **logits: Any) -> Tensor:
    """``β · L_inter + γ · L_intra`` (the official ``DIST`` module's output)."""
    inter, intra = dist_terms(student_logits, teacher_logits, temperature, transform, **logits)
    return beta * inter + gamma * intra


@register_method("dist")
class DIST(DistillationMethod):
    """DIST: Pearson-correlation matching of class rows and batch columns; returns ``{"ce", "inter", "intra"}``."""

    paper = "Huang, You, Wang, Qian, Xu. Knowledge Distillation from A Stronger Teacher. NeurIPS 2022"
    hparams = {
        "temperature": TEMPERATURE.at(4.0, "softmax temperature τ of both sides (both terms carry τ²)"),
        "ce_weight": CE_WEIGHT,
        "beta": HParam(2.0, "weight β of the inter-class term (1 − Pearson correlation per sample)", "non_negative"),
        "gamma": HParam(2.0, "weight γ of the intra-class term (1 − Pearson correlation per class, across the batch)",
                        "non_negative"),
        "kd_weight": KD_WEIGHT.at(1.0, "multiplies β and γ (the grid's KD-weight axis, as DKD's kd_weight multiplies "
                                       "α and β; 1 = the official weights)"),
    }

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, epoch: int = 1
    ) -> dict[str, Tensor]:
        inter, intra = dist_terms(student_logits, teacher_logits, self.temperature, **self.logit_args)
        w = self.kd_weight
        return {"ce": self.ce(student_logits, targets), "inter": w * self.beta * inter, "intra": w * self.gamma * intra}
