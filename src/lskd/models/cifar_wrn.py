"""Wide ResNets for CIFAR (Zagoruyko & Komodakis 2016), CRD / mdistiller definition.

``wrn_{depth}_{width}``: pre-activation BasicBlocks, widths 16-16w-32w-64w,
``(depth - 4) / 6`` blocks per stage.  Registered: wrn_16_2, wrn_16_4, wrn_28_2,
wrn_28_4, wrn_40_1, wrn_40_2; :func:`wrn` builds any other depth/width.

``drop_rate`` is timm's dropout before the classifier; ``block_drop_rate`` is the
reference's dropout between the two convs of each block (both default 0).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._common import GapClassifier, build, cifar_cfg, init_kaiming

__all__ = ["WideResNet", "wrn"]


class BasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3 + shortcut."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, padding=1, bias=False)
        self.droprate = drop_rate
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (
            None if self.equalInOut else nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(act)))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.conv2(out)
        # Reference semantics: identity shortcut uses the raw input, projection the activated one.
        shortcut = x if self.convShortcut is None else self.convShortcut(act)
        return shortcut + out


class NetworkBlock(nn.Module):
    """A stage of ``nb_layers`` BasicBlocks (first one carries the stride)."""

    def __init__(self, nb_layers: int, in_planes: int, out_planes: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *[
                BasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, drop_rate)
                for i in range(nb_layers)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(GapClassifier):
    """WRN-depth-width for 32x32 inputs (works on any size >= 8x8)."""

    head_path = "fc"

    def __init__(
        self,
        depth: int,
        widen_factor: int,
        num_classes: int = 100,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        block_drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        ch = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_chans, ch[0], 3, padding=1, bias=False)
        self.block1 = NetworkBlock(n, ch[0], ch[1], 1, block_drop_rate)
        self.block2 = NetworkBlock(n, ch[1], ch[2], 2, block_drop_rate)
        self.block3 = NetworkBlock(n, ch[2], ch[3], 2, block_drop_rate)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.relu = nn.ReLU(inplace=True)
        self._init_head(ch[3], num_classes, in_chans, drop_rate)
        init_kaiming(self, zero_linear_bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.relu(self.bn1(x))


_VARIANTS: tuple[tuple[int, int], ...] = ((16, 2), (16, 4), (28, 2), (28, 4), (40, 1), (40, 2))

default_cfgs = generate_default_cfgs(
    {f"wrn_{d}_{w}": cifar_cfg(first_conv="conv1", classifier="fc") for d, w in _VARIANTS}
)


def wrn(depth: int, widen_factor: int, **kwargs: Any) -> WideResNet:
    """Unregistered WRN-depth-width (no timm cfg); e.g. ``wrn(22, 8, num_classes=10)``."""
    return WideResNet(depth, widen_factor, **kwargs)


def _create(depth: int, width: int, pretrained: bool, **kwargs: Any) -> WideResNet:
    return build(WideResNet, f"wrn_{depth}_{width}", pretrained, depth=depth, widen_factor=width, **kwargs)


@register_model
def wrn_16_2(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-16-2 (0.70M params at 100 classes)."""
    return _create(16, 2, pretrained, **kwargs)


@register_model
def wrn_16_4(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-16-4 (2.77M)."""
    return _create(16, 4, pretrained, **kwargs)


@register_model
def wrn_28_2(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-28-2 (1.48M)."""
    return _create(28, 2, pretrained, **kwargs)


@register_model
def wrn_28_4(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-28-4 (5.87M)."""
    return _create(28, 4, pretrained, **kwargs)


@register_model
def wrn_40_1(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-40-1 (0.57M)."""
    return _create(40, 1, pretrained, **kwargs)


@register_model
def wrn_40_2(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-40-2 (2.26M)."""
    return _create(40, 2, pretrained, **kwargs)
