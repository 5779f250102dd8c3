"""CIFAR VGGs with batch norm (CRD / mdistiller definition).

Five conv blocks (3x3 conv with bias -> BN -> ReLU), 2x2 max-pools after the first
three blocks (a fourth pool only for inputs >= 64 px, as the reference does for
64x64), global average pool and one linear layer.  ``vgg8`` uses one conv per
block (64-128-256-512-512); ``cifar_vgg13`` two (the paper's ``vgg13``; timm owns
the name ``vgg13``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._common import GapClassifier, build, cifar_cfg, init_kaiming

__all__ = ["CifarVGG", "VGG_CFGS"]

VGG_CFGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg8": ((64,), (128,), (256,), (512,), (512,)),
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
}


def _make_block(widths: Sequence[int], in_ch: int) -> nn.Sequential:
    """conv-BN-ReLU repeated, without the final ReLU (applied in forward, as the reference)."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(in_ch, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        in_ch = w
    return nn.Sequential(*layers[:-1])


class CifarVGG(GapClassifier):
    """VGG-BN for small images; ``cfg`` lists the conv widths of the five blocks."""

    head_path = "classifier"

    def __init__(
        self,
        cfg: Sequence[Sequence[int]],
        num_classes: int = 100,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(cfg) != 5:
            raise ValueError("a CIFAR VGG cfg has five blocks")
        in_ch = in_chans
        for i, widths in enumerate(cfg):
            setattr(self, f"block{i}", _make_block(widths, in_ch))
            in_ch = widths[-1]
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self._init_head(in_ch, num_classes, in_chans, drop_rate)
        init_kaiming(self, linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        big = x.shape[-2] >= 64
        x = self.pool(F.relu(self.block0(x)))
        x = self.pool(F.relu(self.block1(x)))
        x = self.pool(F.relu(self.block2(x)))
        x = F.relu(self.block3(x))
        if big:
            x = self.pool(x)
        return F.relu(self.block4(x))


default_cfgs = generate_default_cfgs(
    {
        "vgg8": cifar_cfg(first_conv="block0.0", classifier="classifier"),
        "cifar_vgg13": cifar_cfg(first_conv="block0.0", classifier="classifier"),
    }
)


@register_model
def vgg8(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """VGG-8 with BN (3.97M params at 100 classes)."""
    return build(CifarVGG, "vgg8", pretrained, cfg=VGG_CFGS["vgg8"], **kwargs)


@register_model
def cifar_vgg13(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """CIFAR VGG-13 with BN (9.46M); the paper's ``vgg13``."""
    return build(CifarVGG, "cifar_vgg13", pretrained, cfg=VGG_CFGS["vgg13"], **kwargs)
