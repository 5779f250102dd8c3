"""Dataset specs, the dataset registry, and the generic dataset wrappers.

Each dataset module defines a :class:`DatasetBuilder` subclass and registers it with
:func:`register_dataset`.  The builder knows where its files live (:meth:`DatasetBuilder.resolve_root`),
how to load a split (:meth:`DatasetBuilder.load`) and which geometric augmentations its train/eval
views use; :mod:`lskd.data.transforms` turns those into the ``"train"``, ``"eval"``, ``"strong"`` and
``"strong_fixmatch"`` views.
"""

from __future__ import annotations

import abc
import hashlib
import os
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch.utils.data import Dataset

#: ``val`` is the class-balanced split held out of ``train`` (``holdout=N``); ``train`` is then the rest.
SPLITS: tuple[str, ...] = ("train", "val", "test")
VIEWS: tuple[str, ...] = ("train", "eval", "strong", "strong_fixmatch")

PathLike = str | os.PathLike[str]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files were not found; the message says how to get them."""


class DatasetCorruptedError(RuntimeError):
    """A dataset file exists but is truncated, corrupted or fails its checksum."""


@dataclass(frozen=True)
class DatasetSpec:
    """Static description of a dataset.

    ``mean``/``std`` are per-channel statistics of the training split in [0, 1] pixel units, used
    for normalisation.  ``in_memory`` is True when a whole split is held as one uint8 tensor in RAM.
    """

    name: str
    num_classes: int
    in_chans: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    in_memory: bool

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes")
        if not (len(self.mean) == len(self.std) == self.in_chans):
            raise ValueError(f"{self.name}: mean/std must have one entry per channel ({self.in_chans})")


@dataclass
class RawSplit:
    """One loaded split before views are applied.

    Exactly one of ``images`` (uint8 ``N x C x H x W`` tensor, in-memory datasets) or ``load_image``
    (a callable returning the i-th image, e.g. a PIL image read from disk) is set.
    """

    spec: DatasetSpec
    targets: torch.Tensor
    images: torch.Tensor | None = None
    load_image: Callable[[int], Any] | None = None


class DatasetBuilder(abc.ABC):
    """Per-dataset logic: file discovery, loading, and the geometric part of each view."""

    spec: ClassVar[DatasetSpec]

    @abc.abstractmethod
    def resolve_root(self, root: PathLike | None = None) -> pathlib.Path:
        """Return the folder holding the data or raise :class:`DatasetNotFoundError`."""

    @abc.abstractmethod
    def load(self, split: str, root: PathLike | None = None, download: bool = False) -> RawSplit:
        """Load ``split`` ("train" or "test"), downloading first where allowed and requested."""

    @abc.abstractmethod
    def train_ops(self) -> list[Callable[[Any], Any]]:
        """Random geometric augmentations of the ``"train"`` view (applied before normalisation)."""

    def download(self, root: PathLike) -> pathlib.Path:
        """Fetch the dataset into ``root`` (checksum-verified); builders that cannot download say how to get it."""
        raise DatasetNotFoundError(f"{self.spec.name} cannot be downloaded by lskd: {self.resolve_root.__doc__}")

    def locate(self, root: PathLike | None, download: bool) -> pathlib.Path:
        """:meth:`resolve_root`, or with ``download`` fetch into ``root`` (or the first ``$LSKD_DATA`` folder)."""
        try:
            return self.resolve_root(root)
        except DatasetNotFoundError:
            if not download:
                raise
            target = root if root is not None else next(iter(candidate_roots(None)), None)
            if target is None:
                raise ValueError("download=True needs a destination: pass root=DIR or set LSKD_DATA") from None
            return self.download(target)

    def eval_ops(self) -> list[Callable[[Any], Any]]:
        """Deterministic geometric ops of the ``"eval"`` view (default: none)."""
        return []


_REGISTRY: dict[str, DatasetBuilder] = {}
_B = TypeVar("_B", bound=type[DatasetBuilder])


def register_dataset(cls: _B) -> _B:
    """Class decorator: instantiate the builder and register it under ``cls.spec.name``."""
    name = cls.spec.name
    if name in _REGISTRY:
        raise ValueError(f"dataset {name!r} is already registered")
    _REGISTRY[name] = cls()
    return cls


def available_datasets() -> list[str]:
    """Sorted names of all registered datasets."""
    return sorted(_REGISTRY)


def get_builder(name: str) -> DatasetBuilder:
    """The registered builder for ``name``; unknown names raise ValueError listing the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}") from None


def get_spec(name: str) -> DatasetSpec:
    """The static :class:`DatasetSpec` of ``name`` (ValueError listing available names if unknown)."""
    return get_builder(name).spec


def resolve_root(name: str, root: PathLike | None = None) -> pathlib.Path:
    """Folder holding dataset ``name``'s files; raises :class:`DatasetNotFoundError` with instructions."""
    return get_builder(name).resolve_root(root)


def env_roots() -> list[pathlib.Path]:
    """Folders listed in ``$LSKD_DATA`` (``os.pathsep``-separated; empty entries ignored)."""
    return [pathlib.Path(p).expanduser() for p in os.environ.get("LSKD_DATA", "").split(os.pathsep) if p]


def user_data_dir() -> pathlib.Path:
    """lskd's per-user data folder (where ``lskd setup-data`` downloads without root): ``$XDG_DATA_HOME/lskd``,
    else ``~/.local/share/lskd``."""
    base = os.environ.get("XDG_DATA_HOME") or pathlib.Path.home() / ".local" / "share"
    return pathlib.Path(base) / "lskd"


def candidate_roots(root: PathLike | None) -> list[pathlib.Path]:
    """Where to look for user data: the explicit ``root`` only (a root the user names must hold the data; we
    never silently read another copy), else ``$LSKD_DATA``."""
    return [pathlib.Path(root).expanduser()] if root is not None else env_roots()


def balanced_subset(targets: torch.Tensor, n: int, num_classes: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of a class-balanced, seed-deterministic subset of ``n`` samples.

    Every class gets ``n // num_classes`` samples, the remainder going to classes chosen by the
    seeded permutation; a class with too few samples gives its unused quota to the others.
    """
    if not 0 < n <= len(targets):
        raise ValueError(f"subset must be in [1, {len(targets)}], got {n}")
    gen = torch.Generator().manual_seed(seed)
    by_class = [torch.nonzero(targets == c).flatten() for c in range(num_classes)]
    by_class = [idx[torch.randperm(len(idx), generator=gen)] for idx in by_class]
    order = torch.randperm(num_classes, generator=gen).tolist()
    quota = dict.fromkeys(order, 0)
    remaining = n
    while remaining:
        open_classes = [c for c in order if quota[c] < len(by_class[c])]
        share, extra = divmod(remaining, len(open_classes))
        for rank, c in enumerate(open_classes):
            take = min(share + (rank < extra), len(by_class[c]) - quota[c])
            quota[c] += take
            remaining -= take
    picked = torch.cat([by_class[c][: quota[c]] for c in range(num_classes)])
    return picked.sort().values


def item_seed(seed: int, index: int, view: str) -> int:
    """A 63-bit seed for one item's view (SHA-256, stable across processes)."""
    digest = hashlib.sha256(f"{seed}:{index}:{view}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class ViewDataset(Dataset):
    """A split with one or more views; items are ``(x, y, index)``.

    ``x`` is a tensor for a single view, else a tuple with one independently augmented tensor per
    view; ``y`` is the int class; ``index`` is the position in this (sub)set.  ``indices`` maps
    positions back to the full split.
    """

    def __init__(
        self, raw: RawSplit, views: Sequence[str], transforms: Sequence[Callable[[Any], torch.Tensor]],
        indices: torch.Tensor, split: str,
    ) -> None:
        self.spec: DatasetSpec = raw.spec
        self.split = split
        self.views: tuple[str, ...] = tuple(views)
        self.transforms = tuple(transforms)
        self.indices = indices
        self.targets: torch.Tensor = raw.targets[indices].clone()
        self._labels: list[int] = self.targets.tolist()
        full = len(indices) == len(raw.targets)
        self._images = None if raw.images is None else (raw.images if full else raw.images[indices].contiguous())
        self._load_image = raw.load_image
        self._source_index: list[int] = indices.tolist()
        self.augment_seed: int | None = None

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def images(self) -> torch.Tensor | None:
        """This (sub)set's uint8 ``N x C x H x W`` images for an in-memory dataset (None when read from files)."""
        return self._images

    def __getitem__(self, index: int) -> tuple[torch.Tensor | tuple[torch.Tensor, ...], int, int]:
        if self._images is not None:
            img = self._images[index]
        else:
            assert self._load_image is not None
            img = self._load_image(self._source_index[index])
        if self.augment_seed is None:
            views = tuple(t(img) for t in self.transforms)
        else:
            views = self._seeded_views(img, index, self.augment_seed)
        return (views[0] if len(views) == 1 else views), self._labels[index], index

    def seed_augmentation(self, seed: int | None) -> None:
        """Draw each item's augmentation from its own stream seeded by ``(seed, index, view)``.

        An item's views then depend only on the seed, not on batch composition, sample order, worker process
        or which other views are drawn, so runs that share a seed see identical images. ``None`` falls back
        to torch's global generator.
        """
        self.augment_seed = seed

    def _seeded_views(self, img: Any, index: int, seed: int) -> tuple[torch.Tensor, ...]:
        gen = torch.default_generator
        saved = gen.get_state()
        try:
            out = []
            for view, transform in zip(self.views, self.transforms):
                gen.manual_seed(item_seed(seed, index, view))
                out.append(transform(img))
            return tuple(out)
        finally:
            gen.set_state(saved)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name!r}, split={self.split!r}, n={len(self)}, views={self.views})"


def build_dataset(
    name: str, split: str, *, root: PathLike | None = None, views: Sequence[str] = ("eval",),
    subset: int | None = None, seed: int = 0, download: bool = False, holdout: int | None = None,
    holdout_seed: int = 1,
) -> ViewDataset:
    """Build ``split`` ("train", "val" or "test") of dataset ``name`` with the given views.

    Items are ``(x, y, index)``; see :class:`ViewDataset`.  ``holdout=N`` holds a class-balanced validation split
    of N training images out, drawn with its own ``holdout_seed``: ``"val"`` is that split and ``"train"`` the
    rest, so no validation image is ever trained on (``"val"`` needs ``holdout``).  ``subset=N`` then keeps a
    class-balanced, ``seed``-deterministic subset of N samples of the split (sorted by original index).  The
    result exposes ``.targets`` (LongTensor) and ``.spec`` (the spec of the loaded data: for ImageNet stand-ins,
    classes come from the folder).
    """
    from lskd.data.transforms import build_transform

    builder = get_builder(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(views, str) or not views:
        raise ValueError(f"views must be a non-empty sequence of {VIEWS}, got {views!r}")
    transforms = [build_transform(name, v) for v in views]
    if split == "val" and not holdout:
        raise ValueError("split 'val' is held out of the training set: give holdout=N (protocol.validation.size)")
    raw = builder.load("test" if split == "test" else "train", root, download)
    pool = holdout_split(raw.targets, holdout, raw.spec.num_classes, holdout_seed)[split == "val"] \
        if holdout and split != "test" else torch.arange(len(raw.targets))
    if subset is None:
        indices = pool
    else:
        indices = pool[balanced_subset(raw.targets[pool], subset, raw.spec.num_classes, seed)]
    return ViewDataset(raw, views, transforms, indices, split)


def holdout_split(targets: torch.Tensor, n: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rest, held)``: sorted indices of a class-balanced validation split of ``n`` samples drawn with ``seed``
    (:func:`balanced_subset`) and of every other sample. Disjoint, and together all of ``targets``."""
    if not 0 < n < len(targets):
        raise ValueError(f"validation split size must be in [1, {len(targets) - 1}], got {n}")
    held = balanced_subset(targets, n, num_classes, seed)
    keep = torch.ones(len(targets), dtype=torch.bool)
    keep[held] = False
    return torch.nonzero(keep).flatten(), held
