"""A distillation method kept outside lskd, as a user's own would be: it registers by being imported
(``LSKD_PLUGINS=toy_method`` with this folder on ``PYTHONPATH``) and then runs in ``lskd distill`` and the pipeline.

``L = λ_CE · CE(y, softmax(z)) + λ · K · mean_i mean_k (softmax(f(z_i)/T)_k − softmax(f(v_i)/T)_k)²``: the squared
distance between the softened distributions (a Brier-style match; no paper, a test fixture).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from lskd.losses import DistillationMethod, HParam, register_method, standardize
from lskd.losses.transforms import as_float


def toy_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float, transform: str = "none") -> Tensor:
    """``K · mean_i mean_k (p_s − p_t)²`` at temperature ``T`` after the logit transform."""
    p_s = F.softmax(standardize(as_float(student_logits), transform) / temperature, dim=-1)
    p_t = F.softmax(standardize(as_float(teacher_logits), transform) / temperature, dim=-1)
    return (p_s - p_t).pow(2).sum(dim=-1).mean()


@register_method("toy_mse")
class ToyMSE(DistillationMethod):
    """Squared distance between softened distributions (a plug-in test fixture); returns ``{"ce", "mse"}``."""

    paper = "none: a test fixture for adding a method from outside lskd"
    hparams = {"temperature": HParam(4.0, "softmax temperature", "positive"),
               "kd_weight": HParam(1.0, "weight of the squared-distance term", "non_negative")}

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, epoch: int = 1) -> dict[str, Tensor]:
        return {"ce": self.ce(student_logits, targets),
                "mse": self.kd_weight * toy_loss(student_logits, teacher_logits, self.temperature, self.transform)}
