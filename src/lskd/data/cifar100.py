"""CIFAR-100 (Krizhevsky, 2009): 60,000 32x32 colour images, 100 fine classes.

Expects torchvision's layout ``<root>/cifar-100-python/{train,test,meta}`` (the pickles of the
official "python version" tarball), found via the explicit ``root`` or ``$LSKD_DATA``.
``download=True`` uses torchvision's downloader with its MD5s (tarball and extracted files).
A split is loaded into one uint8 ``N x 3 x 32 x 32`` tensor; class names come from ``meta``.
"""

from __future__ import annotations

import functools
import pathlib
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lskd.data import registry as reg
from lskd.data.download import load_checksums
from lskd.data.transforms import PadRandomCrop, RandomHFlip

BASE_FOLDER = "cifar-100-python"

CLASS_NAMES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)


# What the official files (and numpy arrays pickled by any numpy version) may reference. Anything else, e.g.
# ``os.system`` in a crafted file, is refused before it is called.
_SAFE_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"), ("collections", "OrderedDict"),
})


class _DataOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds containers, strings, numbers and numpy arrays, and no other object."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: CIFAR files hold only data")
        return super().find_class(module, name)


def _unpickle(path: pathlib.Path) -> dict[str, Any]:
    """Load one CIFAR pickle (Python 2 format, hence latin1) without running code, with a clear error if damaged."""
    try:
        with open(path, "rb") as f:
            return _DataOnlyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise reg.DatasetCorruptedError(
            f"CIFAR-100 file {path} is truncated or corrupted ({err}); delete {path.parent} and use download=True"
        ) from None


@functools.lru_cache(maxsize=2)
def _load_split(folder: str, split: str, _stamp: tuple[Any, ...]) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(uint8 N x 3 x 32 x 32 images, int64 fine labels, fine class names) of one split."""
    base = pathlib.Path(folder, BASE_FOLDER)
    entry = _unpickle(base / split)
    names = tuple(_unpickle(base / "meta")["fine_label_names"])
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = np.asarray(entry["fine_labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise reg.DatasetCorruptedError(f"{base / split}: unexpected data {data.shape} / labels {labels.shape}")
    if len(labels) and not 0 <= labels.min() <= labels.max() < len(names):
        raise reg.DatasetCorruptedError(f"{base / split}: labels outside [0, {len(names)})")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels), names


@reg.register_dataset
class CIFAR100(reg.DatasetBuilder):
    """Builder for CIFAR-100 (fine labels)."""

    spec = reg.DatasetSpec(
        name="cifar100", num_classes=100, in_chans=3, image_size=32,
        mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762), class_names=CLASS_NAMES, in_memory=True,
    )

    def resolve_root(self, root: reg.PathLike | None = None) -> pathlib.Path:
        """First of root, ``$LSKD_DATA`` holding ``cifar-100-python/{train,test,meta}`` (a path to that folder works too)."""
        searched = reg.candidate_roots(root)
        for base in searched:
            if base.name == BASE_FOLDER:
                base = base.parent
            if all((base / BASE_FOLDER / f).is_file() for f in ("train", "test", "meta")):
                return base
        where = ", ".join(map(str, searched)) or "nothing (no root given, LSKD_DATA unset)"
        raise reg.DatasetNotFoundError(
            f"CIFAR-100 not found (searched: {where}). Either pass --data-root DIR (root=DIR) or set LSKD_DATA=DIR "
            f"where DIR/{BASE_FOLDER}/{{train,test,meta}} exist (the extracted official cifar-100-python.tar.gz), "
            "or use build_dataset('cifar100', ..., root=DIR, download=True) to fetch it with torchvision "
            "(MD5-verified, ~161 MB)."
        )

    def download(self, root: reg.PathLike) -> pathlib.Path:
        """Fetch and extract the official tarball into ``root`` with torchvision, then check the files' MD5s."""
        from torchvision.datasets.utils import check_integrity, download_and_extract_archive

        files = load_checksums()["cifar100"]["files"]
        root = pathlib.Path(root).expanduser()
        download_and_extract_archive(
            load_checksums()["cifar100"]["url"], str(root), filename="cifar-100-python.tar.gz",
            md5=files["cifar-100-python.tar.gz"]["md5"],
        )
        for name in ("train", "test", "meta"):
            rel = f"{BASE_FOLDER}/{name}"
            if not check_integrity(str(root / rel), files[rel]["md5"]):
                raise reg.DatasetCorruptedError(f"{root / rel}: MD5 mismatch after extraction")
        return root

    def load(self, split: str, root: reg.PathLike | None = None, download: bool = False) -> reg.RawSplit:
        """Load a split into memory; the returned spec's class names are read from ``meta``."""
        base = self.locate(root, download)
        files = [base / BASE_FOLDER / f for f in (split, "meta")]
        stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        images, targets, names = _load_split(str(base.resolve()), split, stamp)
        spec = self.spec if names == self.spec.class_names else _with_classes(self.spec, names)
        return reg.RawSplit(spec=spec, targets=targets, images=images)

    def train_ops(self) -> list[Any]:
        """RandomCrop(32, padding=4) + RandomHorizontalFlip."""
        return [PadRandomCrop(32, padding=4), RandomHFlip()]


def write_standin(root: reg.PathLike, n_train: int, n_test: int, seed: int = 0,
                  class_names: Sequence[str] = CLASS_NAMES) -> dict[str, np.ndarray]:
    """Write a CIFAR-100 stand-in of random uint8 images in the official layout, ``root/cifar-100-python/{train,
    test,meta}`` (the python-version pickles, protocol 2), for tests and throughput checks; return each split's
    ``N x 3072`` images.

    Labels are balanced and sorted: image ``i`` of a split of ``n`` has class ``i * K // n`` (``K`` classes), so a
    split of ``m * K`` images holds ``m`` per class. The images come from one ``numpy`` generator seeded by ``seed``,
    train first.
    """
    base = pathlib.Path(root).expanduser() / BASE_FOLDER
    base.mkdir(parents=True, exist_ok=True)
    names, rng, images = list(class_names), np.random.default_rng(seed), {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = [i * len(names) // n for i in range(n)]
        flat = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        entry = {"filenames": [f"{split}_{i}.png" for i in range(n)], "batch_label": f"{split} batch",
                 "fine_labels": labels, "coarse_labels": [k * 20 // len(names) for k in labels], "data": flat}
        (base / split).write_bytes(pickle.dumps(entry, protocol=2))
        images[split] = flat
    meta = {"fine_label_names": names, "coarse_label_names": [f"superclass_{k:02d}" for k in range(20)]}
    (base / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return images


def _with_classes(spec: reg.DatasetSpec, names: tuple[str, ...]) -> reg.DatasetSpec:
    """``spec`` with the class list replaced (for stand-in data whose meta differs from the real one)."""
    from dataclasses import replace

    return replace(spec, num_classes=len(names), class_names=names)
