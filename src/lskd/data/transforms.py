"""The ``"train"``, ``"eval"`` and ``"strong"`` views, built once for every dataset.

* ``eval``   = the dataset's deterministic ops (ImageNet: Resize(256) + CenterCrop(224)) + normalise.
* ``train``  = the dataset's random crop/flip (declared by its builder) + normalise.
* ``strong`` = RandAugment(num_ops=2, default magnitude 9) + the train view's crop/flip + normalise
  + Cutout, implemented as ``v2.RandomErasing(p=1, scale=(0.02, 0.25), value=0)`` on the normalised
  tensor (0 = the dataset mean colour; 0.25 of the area is Cutout's 16x16 patch on 32x32 CIFAR).

Inputs are uint8 CHW tensors (PIL images also work; ImageNet feeds PIL); outputs are float32
normalised CHW tensors.  All randomness comes from torch's global RNG, so seeding torch (and the
DataLoader generator) makes batches reproducible.

For speed on the small in-memory datasets, the padded random crop, the flip and the
ToDtype+Normalize step are thin tensor classes with the same semantics as ``v2.RandomCrop(size,
padding=p, fill=0)``, ``v2.RandomHorizontalFlip()`` and ``v2.ToDtype(float32, scale=True)`` +
``v2.Normalize`` (non-tensor inputs fall back to torchvision).  They skip v2's per-call pytree
dispatch: ~200 us -> ~30 us per 28x28 train item on this project's 2-core CPU.  The strong view
runs single-threaded (see :class:`SingleThreaded`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from lskd.data.registry import VIEWS, get_builder

Transform = Callable[[Any], Any]


class PadRandomCrop:
    """Zero-pad by ``padding`` on every side, then crop a random ``size`` x ``size`` window.

    Equivalent to ``v2.RandomCrop(size, padding=padding, fill=0)``; one RNG draw per call.
    """

    def __init__(self, size: int, padding: int) -> None:
        self.size, self.padding = size, padding
        self._fallback = v2.RandomCrop(size, padding=padding, fill=0)

    def __call__(self, img: Any) -> Any:
        if type(img) is not torch.Tensor:
            return self._fallback(img)
        p, s = self.padding, self.size
        padded = torch.nn.functional.pad(img, (p, p, p, p)) if p else img  # = F.pad_image(fill=0), 2x faster
        h, w = padded.shape[-2:]
        if h < s or w < s:
            raise ValueError(f"PadRandomCrop: padded image {h}x{w} is smaller than the crop size {s}")
        i, j = divmod(int(torch.randint(0, (h - s + 1) * (w - s + 1), ())), w - s + 1)
        return padded[..., i : i + s, j : j + s]

    def __repr__(self) -> str:
        return f"PadRandomCrop(size={self.size}, padding={self.padding})"


class RandomHFlip:
    """Horizontal flip with probability ``p`` (``v2.RandomHorizontalFlip`` semantics)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Any) -> Any:
        if torch.rand(()).item() >= self.p:
            return img
        return F.horizontal_flip_image(img) if type(img) is torch.Tensor else F.horizontal_flip(img)

    def __repr__(self) -> str:
        return f"RandomHFlip(p={self.p})"


class NormalizeToFloat:
    """``v2.ToImage`` (for PIL) + ``v2.ToDtype(float32, scale=True)`` + ``v2.Normalize(mean, std)``, fused.

    Computes ``x * (1 / (255 * std)) + (-mean / std)`` for uint8 input (``x / std - mean / std`` for
    float input already in [0, 1]); returns a plain float32 tensor.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = tuple(mean), tuple(std)
        std_t = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        self._shift = -torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1) / std_t
        self._scale_uint8 = 1.0 / (255.0 * std_t)
        self._scale_float = 1.0 / std_t

    def __call__(self, img: Any) -> torch.Tensor:
        if not isinstance(img, torch.Tensor):
            img = F.to_image(img)
        img = img.as_subclass(torch.Tensor)
        scale = self._scale_uint8 if img.dtype == torch.uint8 else self._scale_float
        return img.to(torch.float32).mul_(scale).add_(self._shift)

    def __repr__(self) -> str:
        return f"NormalizeToFloat(mean={self.mean}, std={self.std})"


class SingleThreaded:
    """Run a per-image transform with torch's intra-op threads set to 1, then restore the count.

    Used for the strong view: RandAugment's affine ops (``affine_grid``/``grid_sample``) on one tiny
    image gain nothing from threads, but when the CPU is busy (e.g. 2 threads on 2 shared cores)
    the OpenMP hand-off made them ~30x slower here (~12 ms vs ~0.4 ms per 28x28 item).  Not thread-safe
    if another Python thread runs torch ops concurrently (the engine's default num_workers=0 has none;
    DataLoader workers already run single-threaded, so nothing is toggled there).
    """

    def __init__(self, transform: Callable[[Any], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, img: Any) -> torch.Tensor:
        n = torch.get_num_threads()
        if n == 1:
            return self.transform(img)
        torch.set_num_threads(1)
        try:
            return self.transform(img)
        finally:
            torch.set_num_threads(n)

    def __repr__(self) -> str:
        return f"SingleThreaded({self.transform!r})"


def cutout() -> v2.RandomErasing:
    """Cutout for the strong view: always erase one rectangle (2-25% of the area) to 0 after normalisation."""
    return v2.RandomErasing(p=1.0, scale=(0.02, 0.25), ratio=(0.3, 3.3), value=0)


def build_transform(name: str, view: str) -> Callable[[Any], torch.Tensor]:
    """The transform of ``view`` ("train", "eval" or "strong") for dataset ``name``."""
    builder = get_builder(name)
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    spec = builder.spec
    normalize = NormalizeToFloat(spec.mean, spec.std)
    if view == "eval":
        ops: list[Transform] = [*builder.eval_ops(), normalize]
    elif view == "train":
        ops = [*builder.train_ops(), normalize]
    else:
        strong = [v2.RandAugment(num_ops=2), *builder.train_ops(), normalize, cutout()]
        return SingleThreaded(v2.Compose(strong))
    return v2.Compose(ops)
