"""CIFAR ResNets of the KD literature (CRD / mdistiller definitions).

* ``resnet{20,32,56,110}``: 3-stage BasicBlock ResNet, widths 16-16-32-64,
  ``(depth - 2) / 6`` blocks per stage (He et al. 2016, CIFAR variant).
* ``resnet8x4`` / ``resnet32x4``: the same with 4x widths 32-64-128-256.
* ``cifar_resnet50``: 4-stage Bottleneck ResNet [3, 4, 6, 3] with a 3x3 stride-1
  stem and no max-pool (CRD's ``resnetv2``); named ``cifar_`` because timm owns
  ``resnet50``.

Module names follow the reference code so reference checkpoints load unchanged.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._common import GapClassifier, build, cifar_cfg, init_kaiming

__all__ = ["CifarResNet", "CifarResNetV2"]


def _conv_bn(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """1x1 projection shortcut (conv + BN)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_ch),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs with identity / 1x1-projection shortcut (post-activation)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class CifarResNet(GapClassifier):
    """3-stage CIFAR ResNet with BasicBlocks; ``widths = (stem, stage1, stage2, stage3)``."""

    head_path = "fc"

    def __init__(
        self,
        depth: int,
        widths: tuple[int, int, int, int],
        num_classes: int = 100,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"BasicBlock CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(widths[1], n, stride=1)
        self.layer2 = self._make_layer(widths[2], n, stride=2)
        self.layer3 = self._make_layer(widths[3], n, stride=2)
        self._init_head(widths[3], num_classes, in_chans, drop_rate)
        init_kaiming(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = _conv_bn(self.inplanes, planes, stride)
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 bottleneck, expansion 4, projection shortcut when needed."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = _conv_bn(in_planes, out, stride) if stride != 1 or in_planes != out else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class CifarResNetV2(GapClassifier):
    """4-stage CIFAR Bottleneck ResNet (widths 64-128-256-512, strides 1-2-2-2)."""

    head_path = "linear"

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (3, 4, 6, 3),
        num_classes: int = 100,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_chans, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, layers[0], stride=1)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self._init_head(512 * Bottleneck.expansion, num_classes, in_chans, drop_rate)
        init_kaiming(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(Bottleneck(self.in_planes, planes, s))
            self.in_planes = planes * Bottleneck.expansion
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


default_cfgs = generate_default_cfgs(
    {
        **{
            name: cifar_cfg(first_conv="conv1", classifier="fc")
            for name in ("resnet20", "resnet32", "resnet56", "resnet110", "resnet8x4", "resnet32x4")
        },
        "cifar_resnet50": cifar_cfg(first_conv="conv1", classifier="linear"),
    }
)

_W1 = (16, 16, 32, 64)
_W4 = (32, 64, 128, 256)


def _resnet(variant: str, depth: int, widths: tuple[int, int, int, int], pretrained: bool, **kwargs: Any) -> nn.Module:
    return build(CifarResNet, variant, pretrained, depth=depth, widths=widths, **kwargs)


@register_model
def resnet20(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-20 (0.28M params at 100 classes)."""
    return _resnet("resnet20", 20, _W1, pretrained, **kwargs)


@register_model
def resnet32(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-32 (0.47M)."""
    return _resnet("resnet32", 32, _W1, pretrained, **kwargs)


@register_model
def resnet56(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-56 (0.86M)."""
    return _resnet("resnet56", 56, _W1, pretrained, **kwargs)


@register_model
def resnet110(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-110 (1.74M)."""
    return _resnet("resnet110", 110, _W1, pretrained, **kwargs)


@register_model
def resnet8x4(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-8 with 4x widths (1.23M)."""
    return _resnet("resnet8x4", 8, _W4, pretrained, **kwargs)


@register_model
def resnet32x4(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-32 with 4x widths (7.43M)."""
    return _resnet("resnet32x4", 32, _W4, pretrained, **kwargs)


@register_model
def cifar_resnet50(pretrained: bool = False, **kwargs: Any) -> CifarResNetV2:
    """CIFAR ResNet-50 (Bottleneck [3, 4, 6, 3], 23.7M); the paper's ``resnet50``."""
    return build(CifarResNetV2, "cifar_resnet50", pretrained, layers=(3, 4, 6, 3), **kwargs)
