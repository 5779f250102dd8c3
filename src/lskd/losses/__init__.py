"""Logit transforms and logit-based distillation losses.

Public API (a contract)::

    from lskd.losses import standardize, kd_loss, dkd_loss, build_method
    standardize(logits, kind="zscore", std="unbiased", eps=1e-7)
    kd_loss(student_logits, teacher_logits, temperature, transform="none")
    dkd_loss(student_logits, teacher_logits, targets, temperature, alpha, beta, transform="none")
    build_method("kd" | "dkd" | "ctkd" | "mlkd" | "ce", **hparams)  # nn.Module -> dict of named loss terms
"""

from lskd.losses.base import DistillationMethod

# importing the method modules registers them
from lskd.losses.ce import CrossEntropy
from lskd.losses.ctkd import CTKD, cosine_curriculum, gradient_reversal
from lskd.losses.dkd import DKD, dkd_loss, dkd_terms
from lskd.losses.kd import KD, kd_loss
from lskd.losses.mlkd import MLKD, bc_loss, cc_loss
from lskd.losses.registry import available_methods, build_method, method_class, method_hparams, register_method
from lskd.losses.transforms import STD_CONVENTIONS, TRANSFORMS, standardize

__all__ = [
    "CTKD", "DKD", "KD", "MLKD", "CrossEntropy", "DistillationMethod", "STD_CONVENTIONS", "TRANSFORMS",
    "available_methods", "bc_loss", "build_method", "cc_loss", "cosine_curriculum", "dkd_loss", "dkd_terms",
    "gradient_reversal", "kd_loss", "method_class", "method_hparams", "register_method", "standardize",
]
