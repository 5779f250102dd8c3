"""MobileNetV2 for CIFAR (CRD / mdistiller ``mobile_half``: width 0.5, expansion 6).

Stem 3x3 stride 2, seven inverted-residual stages (t, c, n, s) =
(1,16,1,1) (T,24,2,1) (T,32,3,2) (T,64,4,2) (T,96,3,1) (T,160,3,2) (T,320,1,1)
with channels scaled by the width multiplier, a 1x1 conv to 1280 channels, global
average pool and a linear layer.  Every inverted residual keeps its 1x1 expansion
conv, also when t = 1, exactly as the reference.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._common import GapClassifier, build, cifar_cfg, init_kaiming

__all__ = ["CifarMobileNetV2"]


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]


class InvertedResidual(nn.Module):
    """1x1 expand -> 3x3 depthwise (stride) -> 1x1 linear projection; residual if shapes match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            *_conv_bn_relu(inp, hidden, 1),
            *_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_res_connect else out


class CifarMobileNetV2(GapClassifier):
    """MobileNetV2 with expansion ``expansion`` and ``width_mult`` (reference: 6 and 0.5)."""

    head_path = "classifier.0"

    def __init__(
        self,
        expansion: int = 6,
        width_mult: float = 0.5,
        num_classes: int = 100,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        t = expansion
        setting = ((1, 16, 1, 1), (t, 24, 2, 1), (t, 32, 3, 2), (t, 64, 4, 2), (t, 96, 3, 1), (t, 160, 3, 2), (t, 320, 1, 1))
        in_ch = int(32 * width_mult)
        self.conv1 = nn.Sequential(*_conv_bn_relu(in_chans, in_ch, 3, stride=2))
        self.blocks = nn.ModuleList()
        for ti, c, n, s in setting:
            out_ch = int(c * width_mult)
            stage = []
            for i in range(n):
                stage.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, ti))
                in_ch = out_ch
            self.blocks.append(nn.Sequential(*stage))
        last = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = nn.Sequential(*_conv_bn_relu(in_ch, last, 1))
        self.classifier = nn.Sequential(nn.Identity())  # replaced by the linear at ``classifier.0``
        self._init_head(last, num_classes, in_chans, drop_rate)
        init_kaiming(self, linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        return self.conv2(x)


default_cfgs = generate_default_cfgs(
    {"mobilenet_v2": cifar_cfg(first_conv="conv1.0", classifier="classifier.0")}
)


@register_model
def mobilenet_v2(pretrained: bool = False, **kwargs: Any) -> CifarMobileNetV2:
    """CIFAR MobileNetV2, width 0.5, expansion 6 (0.81M params at 100 classes)."""
    kwargs.setdefault("expansion", 6)
    kwargs.setdefault("width_mult", 0.5)
    return build(CifarMobileNetV2, "mobilenet_v2", pretrained, **kwargs)
