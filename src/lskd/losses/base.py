"""The contract every distillation method follows.

A method is an ``nn.Module`` whose ``forward(student_logits, teacher_logits, targets, epoch)`` returns a dict of
named, already weighted loss terms (``{"ce": ..., "kd": ...}``). The engine sums the terms and logs each by
name, so a new method never touches the engine (the mdistiller / timm-distillation contract).

Class attributes declare what a method needs from the engine instead of the engine testing method names:

* ``hparams``: the method's hyper-parameters, each a :class:`HParam` (default, meaning, the check its value must
  pass). A class declares only its own and the defaults it changes; :meth:`DistillationMethod.declared` merges
  them with its bases' (the logit-transform settings ``transform``, ``std``, ``eps`` for every method that has a
  teacher). ``__init__`` takes exactly these keywords, checks them and sets each as an attribute, so a method
  rarely needs an ``__init__``; ``lskd list``, the config checks and the docs read them from the registry.
* ``views``: the input views per batch (``("train",)``; MLKD asks ``("train", strong_view)``, set per instance
  from its ``strong_view`` hyper-parameter, so the engine reads ``method.views``). With several views
  the engine passes tuples of logits, one entry per view, in this order.
* ``needs_teacher``: ``False`` for plain cross-entropy (teacher training and the CE student baseline).
* ``paper``: the citation of the method's paper.
* ``transforms``: the logit transforms the method is meaningful with (None: all of ``none, center, scale,
  zscore``); the config check refuses the others.
* ``learns_temperature``: the method learns its temperature (CTKD), so the grid's temperature axis collapses to
  one cell for it.

A method may own parameters (CTKD's temperature); the engine optimises ``method.parameters()`` together with
the student's. ``log_values()`` returns scalars worth logging that are not loss terms.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from lskd.losses.transforms import as_float, check_transform

#: Value checks a hyper-parameter may declare: the test, how the error states it, and the type it is cast to.
CHECKS: dict[str, tuple[Any, str, type]] = {
    "positive": (lambda v: v > 0, "> 0", float),
    "non_negative": (lambda v: v >= 0, ">= 0", float),
    "count": (lambda v: v >= 0 and float(v).is_integer(), "a whole number >= 0", int),
    "number": (lambda v: True, "a number", float),
}


@dataclass(frozen=True)
class HParam:
    """One declared hyper-parameter: its ``default``, what it means (``help``), and either a value ``check`` (a key
    of :data:`CHECKS`: the value is tested and cast) or the allowed ``choices`` (neither: taken as given)."""

    default: Any
    help: str
    check: str | None = None
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.check is not None and self.check not in CHECKS:
            raise ValueError(f"unknown hyper-parameter check {self.check!r}; allowed: {', '.join(CHECKS)}")

    def at(self, default: Any, help: str | None = None) -> HParam:
        """The same hyper-parameter with another default (and meaning), for a method whose recipe differs."""
        return dataclasses.replace(self, default=default, help=self.help if help is None else help)

    def validate(self, key: str, value: Any) -> Any:
        """``value`` checked and cast; raises ``ValueError`` naming ``key`` and what it must be."""
        if self.choices and value not in self.choices:
            raise ValueError(f"unknown {key} {value!r}; allowed: {', '.join(map(str, self.choices))}")
        if self.check is None:
            return value
        test, must, cast = CHECKS[self.check]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not test(value):
            raise ValueError(f"{key} must be {must}, got {value!r}")
        return cast(value)


#: Shared declarations, re-used (``.at`` for another default) by the methods.
CE_WEIGHT = HParam(1.0, "weight λ_CE of the cross-entropy term", "non_negative")
TEMPERATURE = HParam(4.0, "softmax temperature T (the base temperature τ under zscore)", "positive")
KD_WEIGHT = HParam(1.0, "weight λ_KD of the T²-scaled KL term", "non_negative")
#: The logit-transform settings every method with a teacher takes (:mod:`lskd.losses.transforms`; ``__init__`` checks
#: ``transform`` and ``std`` with :func:`~lskd.losses.transforms.check_transform` and the class's ``transforms``).
LOGIT_HPARAMS: dict[str, HParam] = {
    "transform": HParam("none", "logit transform applied to student and teacher logits: none, center, scale or zscore"),
    "std": HParam("unbiased", "standard deviation of the transform: unbiased (the official code) or population "
                  "(the paper's Alg. 1)"),
    "eps": HParam(1e-7, "added to the standard deviation of the transform", "positive"),
}


class DistillationMethod(nn.Module):
    """Base class: declares the CE weight and (for methods with a teacher) the logit-transform settings, and checks
    and sets every declared hyper-parameter."""

    name: ClassVar[str] = ""
    views: ClassVar[tuple[str, ...]] = ("train",)
    needs_teacher: ClassVar[bool] = True
    hparams: ClassVar[dict[str, HParam]] = {"ce_weight": CE_WEIGHT}
    paper: ClassVar[str] = ""
    transforms: ClassVar[tuple[str, ...] | None] = None
    learns_temperature: ClassVar[bool] = False

    @classmethod
    def declared(cls) -> dict[str, HParam]:
        """Every hyper-parameter the class takes: its own first, then its bases' not redeclared, then (with a
        teacher) :data:`LOGIT_HPARAMS`."""
        out: dict[str, HParam] = {}
        for klass in cls.__mro__:
            for key, hp in vars(klass).get("hparams", {}).items():
                out.setdefault(key, hp)
        if cls.needs_teacher:
            for key, hp in LOGIT_HPARAMS.items():
                out.setdefault(key, hp)
        return out

    def __init__(self, **hparams: Any) -> None:
        super().__init__()
        declared = self.declared()
        unknown = sorted(set(hparams) - set(declared))
        if unknown:
            raise TypeError(f"method {self.name or type(self).__name__!r} does not take {', '.join(unknown)}; "
                            f"accepted: {', '.join(declared)}")
        for key, hp in declared.items():
            setattr(self, key, hp.validate(key, hparams.get(key, hp.default)))
        if self.needs_teacher:
            check_transform(self.transform, self.std)
            if self.transforms is not None and self.transform not in self.transforms:
                raise ValueError(f"{self.name} does not take transform {self.transform!r}; allowed: "
                                 f"{', '.join(self.transforms)} ({self.summary()})")

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @property
    def logit_args(self) -> dict[str, Any]:
        """The logit-transform settings as keywords of the loss functions (``transform``, ``std``, ``eps``)."""
        return {key: getattr(self, key) for key in LOGIT_HPARAMS}

    def ce(self, student_logits: Tensor, targets: Tensor) -> Tensor:
        """``λ_CE · CE(y, softmax(z))`` computed in float32."""
        return self.ce_weight * F.cross_entropy(as_float(student_logits), targets)

    def log_values(self) -> dict[str, float]:
        """Scalars to log per epoch besides the loss terms (e.g. CTKD's learned temperature)."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in self.declared())
