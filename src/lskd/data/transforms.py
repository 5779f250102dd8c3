"""The ``"train"``, ``"eval"``, ``"strong"`` and ``"strong_fixmatch"`` views, built once for every dataset.

* ``eval``   = the dataset's deterministic ops (ImageNet: Resize(256) + CenterCrop(224)) + normalise.
* ``train``  = the dataset's random crop/flip (declared by its builder) + normalise.
* ``strong`` = RandAugment(num_ops=2, default magnitude 9) + the train view's crop/flip + normalise
  + Cutout, implemented as ``v2.RandomErasing(p=1, scale=(0.02, 0.25), value=0)`` on the normalised
  tensor (0 = the dataset mean colour; 0.25 of the area is Cutout's 16x16 patch on 32x32 CIFAR).
* ``strong_fixmatch`` = the train view's crop/flip + the official MLKD code's FixMatch-style RandAugment
  and gray Cutout on the uint8 image (:class:`FixMatchRandAugment`) + normalise.

Inputs are uint8 CHW tensors (PIL images also work; ImageNet feeds PIL); outputs are float32
normalised CHW tensors.  All randomness comes from torch's global RNG (``strong_fixmatch`` too: its PIL ops
take their parameters from torch draws, never from Python's ``random``), so seeding torch (and the DataLoader
generator) makes batches reproducible.

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

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from lskd.data.registry import VIEWS, get_builder

Transform = Callable[[Any], Any]


class PadRandomCrop:
    """Zero-pad by ``padding`` on every side, then crop a random ``size`` x ``size`` window.

    Equivalent to ``v2.RandomCrop(size, padding=padding, fill=0)``; one RNG draw per call (:meth:`draw`), the window's
    flat offset ``i * (W - size + 1) + j`` in the padded image. :meth:`apply_batch` crops a batch of images, each at
    its own drawn offset, on whatever device the batch is on (the on-device data path, :mod:`lskd.data.device`).
    """

    def __init__(self, size: int, padding: int) -> None:
        self.size, self.padding = size, padding
        self._fallback = v2.RandomCrop(size, padding=padding, fill=0)

    def _padded(self, shape: Sequence[int]) -> tuple[int, int]:
        h, w = shape[-2] + 2 * self.padding, shape[-1] + 2 * self.padding
        if h < self.size or w < self.size:
            raise ValueError(f"PadRandomCrop: padded image {h}x{w} is smaller than the crop size {self.size}")
        return h, w

    def draw(self, shape: Sequence[int], generator: torch.Generator | None = None) -> int:
        """The random window for an image of ``shape`` (``... x H x W``), from ``generator`` (torch's global one
        when None): one ``torch.randint`` draw."""
        h, w = self._padded(shape)
        s = self.size
        return int(torch.randint(0, (h - s + 1) * (w - s + 1), (), generator=generator))

    def __call__(self, img: Any) -> Any:
        if type(img) is not torch.Tensor:
            return self._fallback(img)
        return self.apply(img, self.draw(img.shape))

    def apply(self, img: torch.Tensor, offset: int) -> torch.Tensor:
        """Crop one ``C x H x W`` image at the window ``offset`` (from :meth:`draw`)."""
        p, s = self.padding, self.size
        padded = torch.nn.functional.pad(img, (p, p, p, p)) if p else img  # = F.pad_image(fill=0), 2x faster
        i, j = divmod(offset, padded.shape[-1] - s + 1)
        return padded[..., i : i + s, j : j + s]

    def apply_batch(self, images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Crop each image of a ``B x C x H x W`` batch at its own window (``offsets``: ``B`` int64 on the batch's
        device); one padding and one gather for the whole batch, the same pixels as :meth:`apply` per image."""
        p, s = self.padding, self.size
        padded = torch.nn.functional.pad(images, (p, p, p, p)) if p else images
        b, c, _, w = padded.shape
        span = torch.arange(s, device=images.device)
        i, j = offsets // (w - s + 1), offsets % (w - s + 1)
        pixels = ((i[:, None] + span)[:, :, None] * w + (j[:, None] + span)[:, None, :]).view(b, 1, s * s)
        # gather writes a fresh tensor in the standard N x C x H x W layout (as the DataLoader's stack does: the
        # convolution kernels that follow pick their algorithm by strides)
        return padded.flatten(2).gather(2, pixels.expand(b, c, s * s)).view(b, c, s, s)

    def __repr__(self) -> str:
        return f"PadRandomCrop(size={self.size}, padding={self.padding})"


class RandomHFlip:
    """Horizontal flip with probability ``p`` (``v2.RandomHorizontalFlip`` semantics): one ``torch.rand`` draw per
    call (:meth:`draw`); :meth:`apply_batch` flips the drawn images of a batch on its device."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def draw(self, shape: Sequence[int], generator: torch.Generator | None = None) -> bool:
        """Whether to flip (the draw is the same for every image shape)."""
        return torch.rand((), generator=generator).item() < self.p

    def __call__(self, img: Any) -> Any:
        if not self.draw(()):
            return img
        return F.horizontal_flip_image(img) if type(img) is torch.Tensor else F.horizontal_flip(img)

    def apply(self, img: torch.Tensor, flip: bool) -> torch.Tensor:
        return F.horizontal_flip_image(img) if flip else img

    def apply_batch(self, images: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """Flip the images of a ``B x C x H x W`` batch whose ``flips`` entry (``B`` bool) is set."""
        return torch.where(flips.view(-1, 1, 1, 1), images.flip(-1), images)

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
        shift = -torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1) / std_t
        cpu = torch.device("cpu")
        # (scale for uint8, scale for float, shift) per device: copied to a training device once
        self._constants = {cpu: (1.0 / (255.0 * std_t), 1.0 / std_t, shift)}

    def __call__(self, img: Any) -> torch.Tensor:
        if not isinstance(img, torch.Tensor):
            img = F.to_image(img)
        return self.apply_batch(img.as_subclass(torch.Tensor), None)

    def apply_batch(self, images: torch.Tensor, params: None = None) -> torch.Tensor:
        """The same arithmetic on a ``C x H x W`` image or a ``B x C x H x W`` batch, on the images' device."""
        if images.device not in self._constants:
            self._constants[images.device] = tuple(t.to(images.device) for t in self._constants[torch.device("cpu")])
        scale_uint8, scale_float, shift = self._constants[images.device]
        return images.to(torch.float32).mul_(scale_uint8 if images.dtype == torch.uint8 else scale_float).add_(shift)

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


# ---------------------------------------------------------------- FixMatch-style strong view (official MLKD)
# The image travels as a uint8 H x W x C numpy array. Each op takes it and a value drawn uniformly in [low, high]
# (ops without a magnitude ignore it). The official code calls PIL for every op; here the histogram/LUT ops are
# numpy re-implementations of PIL's ImageOps functions with the same output (tests/losses/test_mlkd.py compares them;
# PIL builds their lookup tables in Python, 80-200 us per call on 32 px), the others call PIL as it does
# (NEAREST resampling, black fill, shear and translate about the top-left origin, rotation about the centre).
def _pil_image(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)


def _with_pil(fn: Callable[[Image.Image, float], Image.Image]) -> Callable[[np.ndarray, float], np.ndarray]:
    def op(a: np.ndarray, v: float) -> np.ndarray:
        return np.asarray(fn(_pil_image(a), v)).reshape(a.shape)

    return op


def _affine(img: Image.Image, coeffs: tuple[float, ...]) -> Image.Image:
    return img.transform(img.size, Image.Transform.AFFINE, coeffs)


_LEVELS = np.arange(256)


def _histograms(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel 256-bin histograms ``(C, 256)`` of a uint8 H x W x C array, and each channel's min and max."""
    offsets = 256 * np.arange(a.shape[2])
    hist = np.bincount((a + offsets).ravel(), minlength=256 * a.shape[2]).reshape(-1, 256)
    used = hist > 0
    return hist, used.argmax(axis=1), 255 - used[:, ::-1].argmax(axis=1)


def _apply_luts(a: np.ndarray, luts: np.ndarray) -> np.ndarray:
    """``out[..., c] = luts[c][a[..., c]]`` for a uint8 H x W x C array and C x 256 tables."""
    return luts.astype(np.uint8).ravel().take(a + 256 * np.arange(a.shape[2]))


def _autocontrast(a: np.ndarray, v: float) -> np.ndarray:
    """``ImageOps.autocontrast(img)`` (cutoff 0): per channel map [min, max] to [0, 255] with PIL's ``int()``."""
    _, lo, hi = _histograms(a)
    flat = hi <= lo
    scale = 255.0 / np.where(flat, 1, hi - lo)
    luts = np.clip(np.trunc(_LEVELS * scale[:, None] + (-lo * scale)[:, None]), 0, 255)
    return _apply_luts(a, np.where(flat[:, None], _LEVELS, luts))


def _equalize(a: np.ndarray, v: float) -> np.ndarray:
    """``ImageOps.equalize(img)``: per channel ``lut[i] = (step // 2 + #pixels below i) // step`` with
    ``step = (#pixels - #pixels at the largest value) // 255``; identity for one value or ``step == 0``."""
    hist, lo, hi = _histograms(a)
    step = (a.shape[0] * a.shape[1] - hist[np.arange(a.shape[2]), hi]) // 255
    keep = (hi <= lo) | (step == 0)
    below = np.cumsum(hist, axis=1) - hist
    luts = np.clip((step[:, None] // 2 + below) // np.maximum(step, 1)[:, None], 0, 255)
    return _apply_luts(a, np.where(keep[:, None], _LEVELS, luts))


def _posterize(a: np.ndarray, v: float) -> np.ndarray:
    """``ImageOps.posterize(img, max(1, int(v)))``: keep the top ``bits`` bits."""
    bits = max(1, int(v))
    return a & np.uint8(0xFF & ~(2 ** (8 - bits) - 1))


def _solarize(a: np.ndarray, v: float) -> np.ndarray:
    """``ImageOps.solarize(img, v)``: invert every value ``>= v``."""
    return np.where(a < v, a, 255 - a).astype(np.uint8)


FixMatchOp = Callable[[np.ndarray, float], np.ndarray]

#: The official ``augment_list()``: (name, op, low, high).
FIXMATCH_OPS: tuple[tuple[str, FixMatchOp, float, float], ...] = (
    ("AutoContrast", _autocontrast, 0.0, 1.0),
    ("Brightness", _with_pil(lambda img, v: ImageEnhance.Brightness(img).enhance(v)), 0.05, 0.95),
    ("Color", _with_pil(lambda img, v: ImageEnhance.Color(img).enhance(v)), 0.05, 0.95),
    ("Contrast", _with_pil(lambda img, v: ImageEnhance.Contrast(img).enhance(v)), 0.05, 0.95),
    ("Equalize", _equalize, 0.0, 1.0),
    ("Identity", lambda a, v: a, 0.0, 1.0),
    ("Posterize", _posterize, 4.0, 8.0),
    ("Rotate", _with_pil(lambda img, v: img.rotate(v)), -30.0, 30.0),
    ("Sharpness", _with_pil(lambda img, v: ImageEnhance.Sharpness(img).enhance(v)), 0.05, 0.95),
    ("ShearX", _with_pil(lambda img, v: _affine(img, (1, v, 0, 0, 1, 0))), -0.3, 0.3),
    ("ShearY", _with_pil(lambda img, v: _affine(img, (1, 0, 0, v, 1, 0))), -0.3, 0.3),
    ("Solarize", _solarize, 0.0, 256.0),
    ("TranslateX", _with_pil(lambda img, v: _affine(img, (1, 0, v * img.size[0], 0, 1, 0))), -0.3, 0.3),
    ("TranslateY", _with_pil(lambda img, v: _affine(img, (1, 0, 0, 0, 1, v * img.size[1]))), -0.3, 0.3),
)

#: The official Cutout colour (``CutoutAbs`` in the official ``mdistiller/dataset/cifar100.py``: (125, 123, 114),
#: CIFAR-10's mean pixel, for every dataset); 1-channel images get the mean of the three, 121.
FIXMATCH_CUTOUT_FILL: tuple[int, ...] = (125, 123, 114)
FIXMATCH_CUTOUT_FILL_GRAY = 121


def fixmatch_cutout(a: np.ndarray, fraction: float, u_x: float, u_y: float) -> np.ndarray:
    """The official ``Cutout``/``CutoutAbs`` on a writable uint8 H x W x C array, in place; returns ``a``.

    ``v = fraction * W`` (the official ``fraction`` is ``0.5 U``, so ``v`` is in [0, W/2)); nothing happens if
    ``v <= 0``. The centre is ``W - (W - 1) u_x`` (the official ``np.random.uniform(w)`` is
    ``uniform(low=w, high=1)``, a value in (1, W]), likewise for y with H; ``x0 = int(max(0, cx - v/2))``,
    ``x1 = min(W, x0 + v)``, and PIL's ``ImageDraw.rectangle`` fills columns ``x0 .. int(x1)`` inclusive (rows
    likewise): a square of side ``int(v) + 1`` (1 to 16 px on 32 px images, each side equally likely), clipped at
    the border, painted :data:`FIXMATCH_CUTOUT_FILL`.
    """
    h, w, c = a.shape
    v = fraction * w
    if v <= 0:
        return a
    x0 = int(max(0.0, (w - (w - 1) * u_x) - v / 2.0))
    y0 = int(max(0.0, (h - (h - 1) * u_y) - v / 2.0))
    x1, y1 = int(min(w, x0 + v)), int(min(h, y0 + v))
    a[y0 : y1 + 1, x0 : x1 + 1] = FIXMATCH_CUTOUT_FILL if c == 3 else (FIXMATCH_CUTOUT_FILL_GRAY,) * c
    return a


def _as_hwc(img: Any) -> np.ndarray:
    if isinstance(img, Image.Image):
        a = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)
        return a.reshape(*a.shape[:2], -1)
    t = img.as_subclass(torch.Tensor)
    if t.dtype != torch.uint8 or t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"strong_fixmatch needs a uint8 CxHxW image with 1 or 3 channels, got {tuple(t.shape)} "
                         f"{t.dtype}")
    return np.array(t.numpy().transpose(1, 2, 0), order="C")  # a copy: Cutout paints in place


class FixMatchRandAugment:
    """The official MLKD strong augmentation (FixMatch-style RandAugment + Cutout) on the uint8 image.

    As ``RandAugment(2, 10)`` in ``mdistiller/dataset/cifar100.py`` of Jin-Ying/Multi-Level-Logit-Distillation
    (the LS repository sunshangquan/logit-standardization-KD ships the same file, and ``imagenet.py`` the same
    class), applied after the crop/flip and before ``ToTensor``/``Normalize``: pick ``num_ops`` ops from
    :data:`FIXMATCH_OPS` with replacement (``random.choices``), apply each (no skip probability) with a value
    uniform over its whole range ``[low, high]`` (the ``m = 10`` argument is unused there), then
    :func:`fixmatch_cutout` with ``fraction = 0.5 U``: the square's side scales with the image width, at most
    16 px on 32 px images, 14 on 28 px, 4 on 8 px, 112 on 224 px (as the official code on ImageNet).

    All draws come from one ``torch.rand`` call (float64) on torch's global generator, so the per-item seeding of
    :class:`lskd.data.registry.ViewDataset` covers them; Python's ``random`` and numpy's RNG are never used.
    Input: a uint8 CxHxW tensor (1 or 3 channels) or a PIL image; output: a uint8 CxHxW tensor.
    """

    def __init__(self, num_ops: int = 2, max_cutout_fraction: float = 0.5) -> None:
        self.num_ops, self.max_cutout_fraction = num_ops, max_cutout_fraction

    def __call__(self, img: Any) -> torch.Tensor:
        u = torch.rand(2 * self.num_ops + 3, dtype=torch.float64).tolist()
        a = _as_hwc(img)
        n = len(FIXMATCH_OPS)
        for k in range(self.num_ops):
            _, op, low, high = FIXMATCH_OPS[min(int(u[2 * k] * n), n - 1)]
            a = op(a, low + (high - low) * u[2 * k + 1])
        if not a.flags.writeable:
            a = a.copy()
        a = fixmatch_cutout(a, u[-3] * self.max_cutout_fraction, u[-2], u[-1])
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))

    def __repr__(self) -> str:
        return f"FixMatchRandAugment(num_ops={self.num_ops}, max_cutout_fraction={self.max_cutout_fraction})"


def view_ops(name: str, view: str) -> list[Transform]:
    """The ops of ``view`` ("train", "eval", "strong" or "strong_fixmatch") for dataset ``name``, in order."""
    builder = get_builder(name)
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    spec = builder.spec
    normalize = NormalizeToFloat(spec.mean, spec.std)
    if view == "eval":
        return [*builder.eval_ops(), normalize]
    if view == "train":
        return [*builder.train_ops(), normalize]
    if view == "strong_fixmatch":
        return [*builder.train_ops(), FixMatchRandAugment(), normalize]
    return [v2.RandAugment(num_ops=2), *builder.train_ops(), normalize, cutout()]


def build_transform(name: str, view: str) -> Callable[[Any], torch.Tensor]:
    """The per-image transform of ``view`` ("train", "eval", "strong" or "strong_fixmatch") for dataset ``name``."""
    ops = view_ops(name, view)
    return SingleThreaded(v2.Compose(ops)) if view == "strong" else v2.Compose(ops)
