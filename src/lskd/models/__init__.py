"""lskd model zoo: KD-literature CIFAR architectures registered in timm's registry.

Importing this package registers every model below, after which
``timm.create_model(name, num_classes=..., in_chans=...)`` builds it::

    import timm
    import lskd.models  # noqa: F401  (registers the models)

    model = timm.create_model("resnet32x4", num_classes=100)

Names follow the literature except where timm already owns the name: the paper's
``vgg13`` and ``resnet50`` are registered as ``cifar_vgg13`` and
``cifar_resnet50`` (timm's ImageNet ``vgg13`` / ``resnet50`` stay untouched).
:func:`paper_name` maps a registered name back to the paper's name.

No weights are hosted: ``pretrained=True`` raises unless a local file is given via
``pretrained_cfg_overlay=dict(file=path)`` (or use ``checkpoint_path=path``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from . import cifar_mobilenet, cifar_resnet, cifar_shufflenet, cifar_vgg, cifar_wrn, small  # noqa: F401  (register)
from ._common import GapClassifier
from .cifar_mobilenet import CifarMobileNetV2
from .cifar_resnet import CifarResNet, CifarResNetV2
from .cifar_shufflenet import ShuffleNetV1, ShuffleNetV2
from .cifar_vgg import CifarVGG
from .cifar_wrn import WideResNet, wrn
from .small import PlainCNN

__all__ = [
    "CIFAR_MODELS",
    "PAPER_NAMES",
    "SMALL_MODELS",
    "SMALL_STUDENT",
    "SMALL_TEACHER",
    "CifarMobileNetV2",
    "CifarResNet",
    "CifarResNetV2",
    "CifarVGG",
    "GapClassifier",
    "PlainCNN",
    "ShuffleNetV1",
    "ShuffleNetV2",
    "WideResNet",
    "paper_name",
    "wrn",
]

#: Registered CIFAR model names (input 3x32x32, 100 classes by default).
CIFAR_MODELS: tuple[str, ...] = (
    "resnet20",
    "resnet32",
    "resnet56",
    "resnet110",
    "resnet8x4",
    "resnet32x4",
    "cifar_resnet50",
    "wrn_16_2",
    "wrn_16_4",
    "wrn_28_2",
    "wrn_28_4",
    "wrn_40_1",
    "wrn_40_2",
    "vgg8",
    "cifar_vgg13",
    "mobilenet_v2",
    "shufflenet_v1",
    "shufflenet_v2",
)

#: The 28x28 grayscale demo pair (input 1x28x28, 10 classes by default).
SMALL_TEACHER: str = "cnn_w24d4"
SMALL_STUDENT: str = "cnn_w8d3"
SMALL_MODELS: tuple[str, ...] = (SMALL_TEACHER, SMALL_STUDENT)

_RENAMED: dict[str, str] = {"cifar_vgg13": "vgg13", "cifar_resnet50": "resnet50"}

#: Registered name -> name used in the paper / KD literature (read-only).
PAPER_NAMES: Mapping[str, str] = MappingProxyType(
    {name: _RENAMED.get(name, name) for name in CIFAR_MODELS + SMALL_MODELS}
)


def paper_name(model_name: str) -> str:
    """The paper's name for a registered model (``cifar_vgg13`` -> ``vgg13``).

    Names that are not lskd models (e.g. timm's own ``resnet50``) and lskd names
    that need no renaming are returned unchanged.
    """
    return PAPER_NAMES.get(model_name, model_name)
