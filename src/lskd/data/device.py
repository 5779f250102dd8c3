"""The on-device data path: an in-memory split kept on the training device as uint8, its views built there in batches.

CIFAR-100's training set is 50,000 x 3 x 32 x 32 bytes (154 MB) and Fashion-MNIST's 47 MB: both fit in any GPU's
memory next to the models. :class:`DeviceBatches` copies the split's uint8 images there once; each batch is then one
gather of its images, a padded crop and a flip for the whole batch (:meth:`PadRandomCrop.apply_batch`,
:meth:`RandomHFlip.apply_batch`) and one normalisation, with no DataLoader, no per-image Python and no host-to-device
copy of float images.

Same images as the per-image path. Each item's random parameters are drawn on the CPU exactly as
:class:`lskd.data.registry.ViewDataset` draws them: from a generator seeded by ``(augment seed, index, view)`` and in
the view's op order (``op.draw``), so for the same seeds both paths give the same pixels, bit for bit
(``tests/data/test_device_data.py`` runs this module on CPU tensors against the DataLoader path). The draws are a few
scalar RNG calls per image; on a GPU they overlap with the previous batch's kernels, which run asynchronously.

Covered views: ``train`` and ``eval`` of the in-memory datasets (their ops are a padded crop, a flip and the
normalisation). The strong views (RandAugment; the official MLKD code's PIL-based FixMatch ops) work per image on
the CPU, so a job that reads one keeps the DataLoader path: :func:`unsupported_reason` says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from lskd.data.registry import ViewDataset, item_seed
from lskd.data.transforms import view_ops

#: Views whose ops all have a batched form.
BATCHED_VIEWS: tuple[str, ...] = ("train", "eval")
#: ``execution.data_path`` values: ``auto`` = the device path wherever :func:`unsupported_reason` allows it.
DATA_PATHS: tuple[str, ...] = ("auto", "dataloader", "device")

Batch = tuple[Tensor | tuple[Tensor, ...], Tensor, Tensor]


def unsupported_reason(dataset: ViewDataset) -> str | None:
    """Why ``dataset`` cannot use the device path, or None when it can."""
    if dataset.images is None:
        return f"{dataset.spec.name} is read image by image from files, not held in memory"
    per_image = [v for v in dataset.views if v not in BATCHED_VIEWS]
    if per_image:
        return (f"the {', '.join(per_image)} view runs per image on the CPU (the device path batches "
                f"{' and '.join(BATCHED_VIEWS)} only)")
    for view in dataset.views:
        plain = [op for op in view_ops(dataset.spec.name, view) if not hasattr(op, "apply_batch")]
        if plain:
            return f"{dataset.spec.name}'s {view} view has ops without a batched form: {plain}"
    return None


def resolve_data_path(requested: str, dataset: ViewDataset, device: torch.device) -> str:
    """``dataloader`` or ``device`` for ``execution.data_path``: ``auto`` takes the device path whenever the dataset
    allows it (on the CPU too, where batching the crops and flips is also faster: ``lskd bench`` (e)); ``device``
    where it does not is an error that says why."""
    if requested not in DATA_PATHS:
        raise ValueError(f"data_path must be one of {', '.join(DATA_PATHS)}, got {requested!r}")
    reason = unsupported_reason(dataset)
    if requested == "device" and reason:
        raise ValueError(f"execution.data_path: device is not possible here: {reason}; use data_path: auto "
                         "(the device path where it applies) or dataloader")
    if requested == "auto":
        return "device" if reason is None else "dataloader"
    return requested


class DeviceBatches:
    """A :class:`ViewDataset`'s images and targets on ``device``, served as the same ``(x, y, index)`` batches as a
    DataLoader over it: ``x`` one float tensor per view (a tuple for several views), built on the device."""

    def __init__(self, dataset: ViewDataset, device: torch.device | str) -> None:
        reason = unsupported_reason(dataset)
        if reason:
            raise ValueError(f"the device data path cannot serve this dataset: {reason}")
        assert dataset.images is not None
        self.device = torch.device(device)
        self.views = dataset.views
        self.images = dataset.images.to(self.device)
        self.targets = dataset.targets.to(self.device)
        self.ops = {v: view_ops(dataset.spec.name, v) for v in self.views}
        self._shape = tuple(self.images.shape[1:])
        self._generator = torch.Generator()

    def __len__(self) -> int:
        return len(self.targets)

    def draw(self, indices: Sequence[int], seed: int | None) -> dict[str, list[Any]]:
        """Per view, per op, the parameters of every item of the batch (None for an op without randomness), drawn as
        the per-image path draws them: seeded per ``(seed, index, view)``, or from torch's global generator in item
        order when ``seed`` is None."""
        params: dict[str, list[Any]] = {v: [[] if hasattr(op, "draw") else None for op in self.ops[v]]
                                        for v in self.views}
        gen = None if seed is None else self._generator
        for index in indices:
            for view in self.views:
                if gen is not None:
                    gen.manual_seed(item_seed(seed, index, view))
                for op, out in zip(self.ops[view], params[view]):
                    if out is not None:
                        out.append(op.draw(self._shape, gen))
        return params

    def batch(self, indices: Sequence[int], seed: int | None = None) -> Batch:
        """The batch of ``indices`` (positions in the dataset), augmented with the per-item streams of ``seed``."""
        params = self.draw(indices, seed)
        index = torch.as_tensor(list(indices), dtype=torch.long)
        on_device = index.to(self.device, non_blocking=True)
        images = self.images.index_select(0, on_device)
        out = []
        for view in self.views:
            x = images
            for op, values in zip(self.ops[view], params[view]):
                x = op.apply_batch(x, None if values is None else torch.tensor(values).to(self.device, non_blocking=True))
            out.append(x)
        return (out[0] if len(out) == 1 else tuple(out)), self.targets.index_select(0, on_device), index

    def loader(self, batches: Iterable[Sequence[int]], seed: int | None = None) -> Iterator[Batch]:
        """The batches of ``batches`` (lists of positions) in order, like ``DataLoader(batch_sampler=batches)``."""
        for indices in batches:
            yield self.batch(indices, seed)
