"""The contract every distillation method follows.

A method is an ``nn.Module`` whose ``forward(student_logits, teacher_logits, targets, epoch)`` returns a dict of
named, already weighted loss terms (``{"ce": ..., "kd": ...}``). The engine sums the terms and logs each by
name, so a new method never touches the engine (the mdistiller / timm-distillation contract).

Class attributes declare what a method needs from the engine instead of the engine testing method names:

* ``views``: the input views per batch (``("train",)``; MLKD asks ``("train", strong_view)``, set per instance
  from its ``strong_view`` hyper-parameter, so the engine reads ``method.views``). With several views
  the engine passes tuples of logits, one entry per view, in this order.
* ``needs_teacher``: ``False`` for plain cross-entropy (teacher training and the CE student baseline).

A method may own parameters (CTKD's temperature); the engine optimises ``method.parameters()`` together with
the student's. ``log_values()`` returns scalars worth logging that are not loss terms.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from lskd.losses.transforms import as_float, check_transform


class DistillationMethod(nn.Module):
    """Base class: holds the CE weight and the logit-transform settings shared by all methods."""

    name: ClassVar[str] = ""
    views: ClassVar[tuple[str, ...]] = ("train",)
    needs_teacher: ClassVar[bool] = True

    def __init__(self, ce_weight: float = 1.0, transform: str = "none", std: str = "unbiased", eps: float = 1e-7) -> None:
        super().__init__()
        check_transform(transform, std)
        self.ce_weight = self.non_negative("ce_weight", ce_weight)
        self.transform = transform
        self.std = std
        self.eps = self.positive("eps", eps)

    def ce(self, student_logits: Tensor, targets: Tensor) -> Tensor:
        """``λ_CE · CE(y, softmax(z))`` computed in float32."""
        return self.ce_weight * F.cross_entropy(as_float(student_logits), targets)

    def log_values(self) -> dict[str, float]:
        """Scalars to log per epoch besides the loss terms (e.g. CTKD's learned temperature)."""
        return {}

    @staticmethod
    def positive(key: str, value: float) -> float:
        if not value > 0:
            raise ValueError(f"{key} must be > 0, got {value!r}")
        return float(value)

    @staticmethod
    def non_negative(key: str, value: float) -> float:
        if not value >= 0:
            raise ValueError(f"{key} must be >= 0, got {value!r}")
        return float(value)

    def extra_repr(self) -> str:
        keys = [k for k in vars(self) if not k.startswith("_") and k != "training"]
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in keys)
