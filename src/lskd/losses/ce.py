"""Plain cross-entropy training: the teacher's recipe and the CE-only student baseline (no teacher)."""

from __future__ import annotations

from torch import Tensor

from lskd.losses.base import DistillationMethod
from lskd.losses.registry import register_method


@register_method("ce")
class CrossEntropy(DistillationMethod):
    """``λ_CE · CE(y, softmax(z))``; returns ``{"ce"}`` and needs no teacher."""

    needs_teacher = False
    paper = "cross-entropy with the labels: teachers and the CE-only student baseline"

    def forward(self, student_logits: Tensor, teacher_logits: Tensor | None, targets: Tensor, epoch: int = 1) -> dict[str, Tensor]:
        return {"ce": self.ce(student_logits, targets)}
