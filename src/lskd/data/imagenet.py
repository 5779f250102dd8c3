"""ImageNet-1k (ILSVRC2012) in torchvision's ImageFolder layout: ``<root>/{train,val}/<wnid>/*.JPEG``.

Split "test" reads ``val``.  Images stay on disk (``in_memory=False``) and are decoded to RGB PIL
images per item.  The registered spec has the 1000 human-readable class names (torchvision's, in
sorted-wnid order); a dataset built from a folder derives ``num_classes``/``class_names`` from its
class folders (so small stand-ins work), except that a 1000-class folder keeps the registered spec.
"""

from __future__ import annotations

import pathlib
from dataclasses import replace
from typing import Any

import torch
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from torchvision.models import ResNet18_Weights
from torchvision.transforms import v2

from lskd.data import registry as reg

SPLIT_DIRS = {"train": "train", "test": "val"}

_HOW_TO = (
    "ImageNet cannot be downloaded automatically (its licence requires registering at https://image-net.org). "
    "Download ILSVRC2012 (train and validation images), extract them into the ImageFolder layout "
    "DIR/train/<wnid>/*.JPEG and DIR/val/<wnid>/*.JPEG (the validation images must be moved into one folder "
    "per wnid, e.g. with the widely used valprep.sh), then pass --data-root DIR (root=DIR) or set LSKD_DATA=DIR "
    "(DIR/imagenet also works)."
)


#: PIL modes whose conversion to 8-bit RGB clips or rescales values (16-bit and float images): refused, since the
#: result would be a silently wrong picture. 1-bit, grayscale, palette, RGBA and CMYK images are converted to RGB.
NOT_8BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class _PathLoader:
    """Picklable ``i -> RGB PIL image`` over a list of file paths (works with spawned DataLoader workers).

    Any size is accepted (the views resize and crop); a file that cannot be decoded, is truncated, or holds a
    16-bit/float image raises :class:`reg.DatasetCorruptedError` naming the file."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __call__(self, i: int) -> Any:
        path = self.paths[i]
        try:
            with open(path, "rb") as fh:
                img = Image.open(fh)
                if img.mode in NOT_8BIT_MODES:
                    raise reg.DatasetCorruptedError(
                        f"{path}: image mode {img.mode!r} is not 8-bit; converting it to RGB would clip its values. "
                        "Convert the file to an 8-bit JPEG/PNG (e.g. with PIL or ImageMagick) or remove it")
                return img.convert("RGB")
        except (OSError, SyntaxError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
            raise reg.DatasetCorruptedError(f"{path}: not a readable image ({err}); the file is truncated or corrupted: "
                                        "replace it (or remove it) and rerun") from None


@reg.register_dataset
class ImageNet(reg.DatasetBuilder):
    """Builder for ImageNet-1k and small ImageFolder stand-ins."""

    spec = reg.DatasetSpec(
        name="imagenet", num_classes=1000, in_chans=3, image_size=224,
        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
        class_names=tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"]), in_memory=False,
    )

    def resolve_root(self, root: reg.PathLike | None = None) -> pathlib.Path:
        """First of root, ``$LSKD_DATA`` (each also with ``/imagenet``) holding ``train/`` or ``val/``."""
        searched = [d for base in reg.candidate_roots(root) for d in (base, base / "imagenet")]
        for folder in searched:
            if any((folder / d).is_dir() for d in SPLIT_DIRS.values()):
                return folder
        where = ", ".join(map(str, searched)) or "nothing (no root given, LSKD_DATA unset)"
        raise reg.DatasetNotFoundError(f"ImageNet not found (searched: {where}). {_HOW_TO}")

    def load(self, split: str, root: reg.PathLike | None = None, download: bool = False) -> reg.RawSplit:
        """Index ``<root>/<train|val>`` like ``ImageFolder``; images are loaded lazily as RGB PIL images."""
        folder = self.resolve_root(root) / SPLIT_DIRS[split]
        if not folder.is_dir():
            raise reg.DatasetNotFoundError(f"ImageNet split {split!r} needs {folder}/<wnid>/*.JPEG. {_HOW_TO}")
        classes, class_to_idx = find_classes(str(folder))
        samples = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS)
        paths = [p for p, _ in samples]
        targets = torch.tensor([t for _, t in samples], dtype=torch.long)
        spec = self.spec if len(classes) == self.spec.num_classes else replace(
            self.spec, num_classes=len(classes), class_names=tuple(classes)
        )
        return reg.RawSplit(spec=spec, targets=targets, load_image=_PathLoader(paths))

    def train_ops(self) -> list[Any]:
        """RandomResizedCrop(224) + RandomHorizontalFlip."""
        return [v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()]

    def eval_ops(self) -> list[Any]:
        """Resize(256) + CenterCrop(224)."""
        return [v2.Resize(256, antialias=True), v2.CenterCrop(224)]
