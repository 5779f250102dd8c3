"""Dataset registry: specs, discovery, loading and augmentation views.

>>> from lskd.data import build_dataset, get_spec
>>> ds = build_dataset("digits", "train", views=("train", "strong"), subset=100)
>>> (x_weak, x_strong), y, index = ds[0]

Registered datasets: ``cifar100``, ``digits``, ``fashion_mnist``, ``imagenet``.
"""

from lskd.data.registry import (
    DatasetCorruptedError,
    DatasetNotFoundError,
    DatasetSpec,
    ViewDataset,
    available_datasets,
    build_dataset,
    get_spec,
    register_dataset,
    resolve_root,
)
from lskd.data.transforms import build_transform

# Importing the dataset modules registers them.
from lskd.data import cifar100, digits, fashion_mnist, imagenet  # noqa: E402,F401  isort: skip

__all__ = [
    "DatasetCorruptedError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "ViewDataset",
    "available_datasets",
    "build_dataset",
    "build_transform",
    "get_spec",
    "register_dataset",
    "resolve_root",
]
