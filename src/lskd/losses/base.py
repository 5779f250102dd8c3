"""The contract every distillation method follows.

A method is an ``nn.Module`` whose ``forward(student_logits, teacher_logits, targets, epoch)`` returns a dict of
named, already weighted loss terms (``{"ce": ..., "kd": ...}``). The engine sums the terms and logs each by
name, so a new method never touches the engine (the mdistiller / timm-distillation contract).

Class attributes declare what a method needs from the engine instead of the engine testing method names:

* ``views``: the input views per batch (``("train",)``; MLKD asks ``("train", strong_view)``, set per instance
  from its ``strong_view`` hyper-parameter, so the engine reads ``method.views``). With several views
  the engine passes tuples of logits, one entry per view, in this order.
* ``needs_teacher``: ``False`` for plain cross-entropy (teacher training and the CE student baseline).
* ``hparam_help``: one line per ``__init__`` hyper-parameter saying what it is (the defaults come from the
  signature); ``lskd list``, the config checks and the docs read both from here. A method passes the logit-
  transform settings (``transform``, ``std``, ``eps``) on to this class as ``**logits``; the registry reads them
  from here.
* ``paper``: the citation of the method's paper.
* ``transforms``: the logit transforms the method is meaningful with (None: all of ``none, center, scale,
  zscore``); the config check refuses the others.
* ``learns_temperature``: the method learns its temperature (CTKD), so the grid's temperature axis collapses to
  one cell for it.

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
    hparam_help: ClassVar[dict[str, str]] = {
        "ce_weight": "weight λ_CE of the cross-entropy term",
        "transform": "logit transform applied to student and teacher logits: none, center, scale or zscore",
        "std": "standard deviation of the transform: unbiased (the official code) or population (the paper's Alg. 1)",
        "eps": "added to the standard deviation of the transform",
    }
    paper: ClassVar[str] = ""
    transforms: ClassVar[tuple[str, ...] | None] = None
    learns_temperature: ClassVar[bool] = False

    def __init__(self, ce_weight: float = 1.0, transform: str = "none", std: str = "unbiased", eps: float = 1e-7) -> None:
        super().__init__()
        check_transform(transform, std)
        if self.transforms is not None and transform not in self.transforms:
            raise ValueError(f"{self.name} does not take transform {transform!r}; allowed: {', '.join(self.transforms)}"
                             f" ({type(self).__doc__.strip().splitlines()[0] if type(self).__doc__ else ''})")
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
