"""Tiny plain CNNs for 28x28 grayscale images (the offline Fashion-MNIST demo).

Naming: ``cnn_w{W}d{D}`` is a stack of ``D`` conv3x3-BN-ReLU layers with base
width ``W``.  The first three layers have stride 2 and widths ``W, 2W, 4W``
(28 -> 14 -> 7 -> 4 px); any further layer keeps stride 1 and width ``4W``.
Global average pooling and one linear layer follow, so any input >= 8x8 works.

Registered pair (params at 10 classes, 1 input channel):

* ``cnn_w24d4`` -- teacher, 136,498 params (24-48-96-96).
* ``cnn_w8d3``  -- student, 6,274 params (8-16-32), clearly capacity limited.

Both are sized for CPU.  Measured with ``torch.set_num_threads(1)`` on one core
of the 2-core dev box: teacher eval (batch 512) ~16-17k images/s, student train
step (batch 256) ~23k images/s.  Trained identically for 3 epochs (SGD momentum
0.9, lr 0.1 cosine, wd 5e-4, batch 128, CE) on Fashion-MNIST the teacher reaches
~90.6% and the student ~87.2% test accuracy (2 seeds each): a ~3.5 point gap.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._common import GapClassifier, build, cifar_cfg, init_kaiming

__all__ = ["PlainCNN", "cnn_widths"]

FASHION_MNIST_MEAN: tuple[float] = (0.2860,)
FASHION_MNIST_STD: tuple[float] = (0.3530,)


def cnn_widths(width: int, depth: int) -> list[tuple[int, int]]:
    """``(out_channels, stride)`` of each conv layer of ``cnn_w{width}d{depth}``."""
    return [(width * 2 ** min(i, 2), 2 if i < 3 else 1) for i in range(depth)]


class PlainCNN(GapClassifier):
    """``depth`` conv3x3-BN-ReLU layers (see :func:`cnn_widths`), GAP, linear."""

    head_path = "fc"

    def __init__(self, width: int = 8, depth: int = 3, num_classes: int = 10, in_chans: int = 1,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError("width and depth must be positive")
        layers: list[nn.Module] = []
        in_ch = in_chans
        for out_ch, stride in cnn_widths(width, depth):
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self._init_head(in_ch, num_classes, in_chans, drop_rate)
        init_kaiming(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _cfg() -> dict[str, Any]:
    return cifar_cfg("features.0", "fc", num_classes=10, input_size=(1, 28, 28),
                     mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD)


default_cfgs = generate_default_cfgs({"cnn_w24d4": _cfg(), "cnn_w8d3": _cfg()})


@register_model
def cnn_w24d4(pretrained: bool = False, **kwargs: Any) -> PlainCNN:
    """Demo teacher: 24-48-96-96 plain CNN (136k params at 10 classes)."""
    return build(PlainCNN, "cnn_w24d4", pretrained, width=24, depth=4, **kwargs)


@register_model
def cnn_w8d3(pretrained: bool = False, **kwargs: Any) -> PlainCNN:
    """Demo student: 8-16-32 plain CNN (6.3k params at 10 classes)."""
    return build(PlainCNN, "cnn_w8d3", pretrained, width=8, depth=3, **kwargs)
