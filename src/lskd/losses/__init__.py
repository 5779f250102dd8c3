"""Logit transforms and logit-based distillation losses.

Public API (a contract)::

    from lskd.losses import standardize, kd_loss, dkd_loss, build_method
    standardize(logits, kind="zscore", std="unbiased", eps=1e-7)
    kd_loss(student_logits, teacher_logits, temperature, transform="none")
    dkd_loss(student_logits, teacher_logits, targets, temperature, alpha, beta, transform="none")
    build_method(name, **hparams)  # nn.Module -> dict of named loss terms; `lskd list` names the methods

Every module of this package is imported here, so a method registers by existing: adding one is its module (a pure
loss function plus a ``@register_method`` class), its test, and a config line that uses it.
"""

import importlib
import pkgutil

from lskd.losses.base import DistillationMethod, HParam
from lskd.losses.ce import CrossEntropy
from lskd.losses.ctkd import CTKD, cosine_curriculum, gradient_reversal
from lskd.losses.dkd import DKD, dkd_loss, dkd_terms
from lskd.losses.kd import KD, kd_loss
from lskd.losses.mlkd import MLKD, bc_loss, cc_loss
from lskd.losses.registry import (
    available_methods,
    build_method,
    distillation_methods,
    method_class,
    method_hparams,
    method_info,
    register_method,
)
from lskd.losses.transforms import STD_CONVENTIONS, TRANSFORMS, standardize

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "CTKD", "DKD", "KD", "MLKD", "CrossEntropy", "DistillationMethod", "HParam", "STD_CONVENTIONS", "TRANSFORMS",
    "available_methods", "bc_loss", "build_method", "cc_loss", "cosine_curriculum", "distillation_methods",
    "dkd_loss", "dkd_terms", "gradient_reversal", "kd_loss", "method_class", "method_hparams", "method_info",
    "register_method", "standardize",
]
