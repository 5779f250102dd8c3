"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, values 0..16), for smoke tests.

Pixels are rescaled to uint8 with ``round(v * 255 / 16)``.  The split is a deterministic stratified
``train_test_split(test_size=450, random_state=0)``: 1,347 train / 450 test, indices sorted.
Mean/std (0.3053, 0.3758) are the pixel statistics of the 1,347 training images in [0, 1].
"""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import numpy as np
import torch

from lskd.data.registry import DatasetBuilder, DatasetSpec, PathLike, RawSplit, register_dataset
from lskd.data.transforms import PadRandomCrop

TEST_SIZE = 450


@functools.cache
def _load() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Both splits as (uint8 N x 1 x 8 x 8 images, int64 labels)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy(np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_SIZE, random_state=0, stratify=bunch.target
    )
    out = {}
    for split, idx in (("train", np.sort(train_idx)), ("test", np.sort(test_idx))):
        sel = torch.from_numpy(idx)
        out[split] = (images[sel].contiguous(), labels[sel].clone())
    return out


@register_dataset
class Digits(DatasetBuilder):
    """Builder for the scikit-learn digits (always available; ``root``/``download`` are ignored)."""

    spec = DatasetSpec(
        name="digits", num_classes=10, in_chans=1, image_size=8,
        mean=(0.3053,), std=(0.3758,), class_names=tuple(str(i) for i in range(10)), in_memory=True,
    )

    def resolve_root(self, root: PathLike | None = None) -> pathlib.Path:
        """The folder of scikit-learn's bundled data (the digits ship with scikit-learn)."""
        import sklearn.datasets

        return pathlib.Path(sklearn.datasets.__file__).parent / "data"

    def load(self, split: str, root: PathLike | None = None, download: bool = False) -> RawSplit:
        """Load a split (cached in memory after the first call)."""
        images, targets = _load()[split]
        return RawSplit(spec=self.spec, targets=targets, images=images)

    def train_ops(self) -> list[Any]:
        """RandomCrop(8, padding=1); no flip (a mirrored digit is a different glyph)."""
        return [PadRandomCrop(8, padding=1)]
