"""Shared pieces of the lskd model zoo: timm head interface, default cfgs, builder.

Every lskd model subclasses :class:`GapClassifier`, which supplies timm's model
interface (``forward_features`` is model specific; ``forward_head``,
``get_classifier``, ``reset_classifier`` and ``forward`` live here).  The head is
global average pooling -> optional dropout -> linear, so every model accepts any
spatial input size the stem/strides allow (>= 8x8 for all lskd models).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from timm.models import build_model_with_cfg
from torch import nn

__all__ = [
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "GapClassifier",
    "build",
    "cifar_cfg",
    "init_kaiming",
    "make_linear",
]

# CIFAR-100 statistics as used by the CRD / mdistiller training scripts.
CIFAR100_MEAN: tuple[float, float, float] = (0.5071, 0.4867, 0.4408)
CIFAR100_STD: tuple[float, float, float] = (0.2675, 0.2565, 0.2761)


def cifar_cfg(first_conv: str, classifier: str, **kwargs: Any) -> dict[str, Any]:
    """Default pretrained cfg for a CIFAR-100 model; no URL, weights are never hosted."""
    cfg: dict[str, Any] = dict(
        url="",
        num_classes=100,
        input_size=(3, 32, 32),
        pool_size=None,
        crop_pct=1.0,
        interpolation="bilinear",
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        first_conv=first_conv,
        classifier=classifier,
        license="mit",
    )
    cfg.update(kwargs)
    return cfg


def make_linear(num_features: int, num_classes: int) -> nn.Module:
    """Linear classifier, or ``nn.Identity`` when ``num_classes == 0`` (timm convention)."""
    return nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()


class GapClassifier(nn.Module):
    """Base class: global-average-pool classifier head with timm's interface.

    Subclasses build their trunk, call :meth:`_init_head` and implement
    :meth:`forward_features` (returning an ``NCHW`` feature map).  ``head_path`` is
    the dotted name of the final ``nn.Linear`` (it matches the reference code
    bases' state-dict keys and the pretrained cfg's ``classifier`` entry).
    """

    head_path: str = "fc"
    num_features: int
    num_classes: int
    in_chans: int
    drop_rate: float

    def _init_head(self, num_features: int, num_classes: int, in_chans: int, drop_rate: float) -> None:
        """Record head attributes and create the classifier at ``head_path``."""
        self.num_features = num_features
        self.head_hidden_size = num_features
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self._set_classifier(make_linear(num_features, num_classes))

    def _set_classifier(self, module: nn.Module) -> None:
        parent_name, _, attr = self.head_path.rpartition(".")
        parent = self.get_submodule(parent_name) if parent_name else self
        setattr(parent, attr, module)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Trunk: image batch -> final feature map ``(B, num_features, H', W')``."""
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        """The final linear layer (``nn.Identity`` after ``reset_classifier(0)``)."""
        return self.get_submodule(self.head_path)

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Replace the classifier by a freshly initialised one with ``num_classes`` outputs."""
        if global_pool not in (None, "avg"):
            raise ValueError(f"only global_pool='avg' is supported, got {global_pool!r}")
        self.num_classes = num_classes
        self._set_classifier(make_linear(self.num_features, num_classes))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool, dropout, classifier (skipped when ``pre_logits``)."""
        x = x.mean(dim=(2, 3))
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)``."""
        return self.forward_head(self.forward_features(x))


def init_kaiming(module: nn.Module, linear_std: Optional[float] = None, zero_linear_bias: bool = False) -> None:
    """Reference init: conv ``kaiming_normal_(fan_out, relu)``, zero conv bias, BN (1, 0).

    With ``linear_std`` the linear layers get ``normal_(0, linear_std)`` and zero bias
    (VGG / MobileNetV2 references); otherwise PyTorch's default linear init is kept
    (ResNet reference), optionally with a zeroed bias (WRN reference).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            if linear_std is not None or zero_linear_bias:
                nn.init.zeros_(m.bias)


def build(model_cls: type[nn.Module], variant: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """``timm.models.build_model_with_cfg`` wrapper used by every lskd entrypoint.

    ``pretrained=True`` loads the cfg's ``file`` (pass
    ``pretrained_cfg_overlay=dict(file=...)``); without one timm raises
    ``RuntimeError: No pretrained weights exist for <name>``.
    """
    return build_model_with_cfg(model_cls, variant, pretrained, **kwargs)
