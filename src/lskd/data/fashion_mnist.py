"""Fashion-MNIST (Xiao et al., 2017): 70,000 28x28 grayscale fashion images, 10 classes.

Files are searched in: the explicit ``root``, ``$LSKD_DATA``, then the Debian package folder
``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``), then lskd's per-user data
folder ``~/.local/share/lskd`` (``lskd setup-data`` downloads there when it cannot install the package).  In each folder
the four ``*-ubyte.gz`` files may sit directly, or in torchvision's ``FashionMNIST/raw/`` layout.
Each file is verified against ``checksums.json`` (official or Debian copy; an intact recompression is
accepted on the SHA-256 of its decompressed content) and parsed with numpy into a uint8 tensor.

Mean/std (0.2860, 0.3530) are the pixel statistics of the 60,000 training images in [0, 1]
(0.28604060, 0.35302424 with the population std over all 47,040,000 pixels).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import pathlib
import zlib
from typing import Any

import numpy as np
import torch

from lskd.data import registry as reg
from lskd.data.download import download_from_mirrors, load_checksums
from lskd.data.transforms import PadRandomCrop, RandomHFlip

#: Where the Debian package ``dataset-fashion-mnist`` installs the files (module attribute so tests can patch it).
DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SUBDIRS = (".", "FashionMNIST/raw", "fashion-mnist", "fashion_mnist")
_IDX_DTYPE = {0x08: np.uint8}


def _has_files(folder: pathlib.Path) -> bool:
    return all((folder / f).is_file() for pair in FILES.values() for f in pair)


def _read_verified(path: pathlib.Path) -> bytes:
    """Read a ``.gz`` file, check it against ``checksums.json`` and return its decompressed bytes."""
    info = load_checksums()["fashion_mnist"]["files"][path.name]
    data = path.read_bytes()
    known_archive = hashlib.sha256(data).hexdigest() in (info["sha256"], info["debian_sha256"])
    hint = (f"Delete it and fetch it again (sudo apt-get install --reinstall dataset-fashion-mnist, "
            f"or build_dataset(..., download=True, root=DIR)); the official file has MD5 {info['md5']}, "
            f"{info['size']} bytes.")
    try:
        payload = gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as err:
        raise reg.DatasetCorruptedError(
            f"Fashion-MNIST file {path} is truncated or corrupted ({len(data)} bytes; gzip: {err}). {hint}"
        ) from None
    if not known_archive and hashlib.sha256(payload).hexdigest() != info["payload_sha256"]:
        raise reg.DatasetCorruptedError(
            f"Fashion-MNIST file {path} fails its checksum: neither the file nor its decompressed content "
            f"matches the published SHA-256 in lskd/data/checksums.json. {hint}"
        )
    return payload


def parse_idx(payload: bytes, source: pathlib.Path | str = "<bytes>") -> np.ndarray:
    """Parse an IDX (MNIST format) payload into a numpy array, checking header and length."""
    if len(payload) < 4 or payload[:2] != b"\x00\x00" or payload[2] not in _IDX_DTYPE:
        raise reg.DatasetCorruptedError(f"{source}: not an unsigned-byte IDX file (bad magic {payload[:4].hex()})")
    ndim = payload[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(payload, dtype=">u4", count=ndim, offset=4))
    if len(payload) != header + int(np.prod(shape)):
        raise reg.DatasetCorruptedError(f"{source}: IDX header says {shape} but the payload has {len(payload) - header} bytes")
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=4)
def _load_arrays(folder: str, split: str, _stamp: tuple[Any, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded (images N x 1 x 28 x 28 uint8, labels int64), cached per folder/split/file stamp."""
    img_name, lbl_name = FILES[split]
    images = parse_idx(_read_verified(pathlib.Path(folder, img_name)), pathlib.Path(folder, img_name))
    labels = parse_idx(_read_verified(pathlib.Path(folder, lbl_name)), pathlib.Path(folder, lbl_name))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or images.shape[1:] != (28, 28):
        raise reg.DatasetCorruptedError(f"{folder}: inconsistent {split} files: images {images.shape}, labels {labels.shape}")
    images_t = torch.from_numpy(images.copy()).unsqueeze(1)
    return images_t, torch.from_numpy(labels.astype(np.int64))


@reg.register_dataset
class FashionMNIST(reg.DatasetBuilder):
    """Builder for Fashion-MNIST (see the module docstring for search order and verification)."""

    spec = reg.DatasetSpec(
        name="fashion_mnist", num_classes=10, in_chans=1, image_size=28,
        mean=(0.2860,), std=(0.3530,), class_names=CLASS_NAMES, in_memory=True,
    )

    def search_dirs(self, root: reg.PathLike | None) -> list[pathlib.Path]:
        """Folders checked, in order: the explicit root alone if given, else ``$LSKD_DATA``, the Debian folder and
        lskd's per-user data folder (:func:`lskd.data.registry.user_data_dir`, where ``lskd setup-data``
        downloads without root); each directly and in torchvision's ``FashionMNIST/raw`` layout."""
        bases = reg.candidate_roots(root) + ([DEBIAN_DIR, reg.user_data_dir()] if root is None else [])
        return [(b / sub) if sub != "." else b for b in bases for sub in SUBDIRS]

    def resolve_root(self, root: reg.PathLike | None = None) -> pathlib.Path:
        """First searched folder that holds all four ``.gz`` files."""
        searched = self.search_dirs(root)
        for folder in searched:
            if _has_files(folder):
                return folder
        names = ", ".join(f for pair in FILES.values() for f in pair)
        raise reg.DatasetNotFoundError(
            "Fashion-MNIST not found. Searched:\n  " + "\n  ".join(map(str, searched)) + "\n"
            f"Needs the four files {names}. Get them with ONE of:\n"
            "  * lskd setup-data   (the Debian package as root or with sudo, else a checksum-verified download)\n"
            "  * apt-get install dataset-fashion-mnist   (as root; installs them to /usr/share/datasets/fashion-mnist/)\n"
            "  * pass --data-root DIR (root=DIR) or set LSKD_DATA=DIR, where DIR holds the four .gz files "
            "directly or torchvision's DIR/FashionMNIST/raw/ layout\n"
            "  * build_dataset('fashion_mnist', ..., root=DIR, download=True)   (official mirror, checksum-verified)"
        )

    def download(self, root: reg.PathLike) -> pathlib.Path:
        """Download the four official files into ``root/FashionMNIST/raw`` (MD5 + SHA-256 verified)."""
        meta = load_checksums()["fashion_mnist"]
        folder = pathlib.Path(root).expanduser() / "FashionMNIST" / "raw"
        for name, info in meta["files"].items():
            download_from_mirrors(meta["mirrors"], name, folder / name, sha256=info["sha256"], md5=info["md5"])
        return folder

    def load(self, split: str, root: reg.PathLike | None = None, download: bool = False) -> reg.RawSplit:
        """Load a split as an in-memory uint8 tensor (downloading into ``root`` if asked and missing)."""
        folder = self.locate(root, download)
        stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in (folder / f for f in FILES[split]))
        images, targets = _load_arrays(str(folder.resolve()), split, stamp)
        return reg.RawSplit(spec=self.spec, targets=targets, images=images)

    def train_ops(self) -> list[Any]:
        """RandomCrop(28, padding=2) + RandomHorizontalFlip."""
        return [PadRandomCrop(28, padding=2), RandomHFlip()]
