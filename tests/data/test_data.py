"""Tests for the dataset registry ``lskd.data`` (specs, discovery, loading, views, downloads)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import pathlib
import struct
import threading
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

import lskd.data as data
from lskd.data import (
    DatasetNotFoundError,
    DatasetSpec,
    available_datasets,
    build_dataset,
    build_transform,
    get_spec,
    resolve_root,
)
from lskd.data import download as dl
from lskd.data import fashion_mnist as fm
from lskd.data.cifar100 import write_standin
from lskd.data.registry import DatasetCorruptedError, balanced_subset
from lskd.data.transforms import PadRandomCrop

DEBIAN = pathlib.Path("/usr/share/datasets/fashion-mnist")
FM_FILES = [f for pair in fm.FILES.values() for f in pair]
HAVE_DEBIAN = all((DEBIAN / f).is_file() for f in FM_FILES)
needs_debian = pytest.mark.skipif(
    not HAVE_DEBIAN, reason=f"Fashion-MNIST not installed in {DEBIAN} (sudo apt-get install dataset-fashion-mnist)"
)


@pytest.fixture(autouse=True)
def _no_env_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests control $LSKD_DATA themselves."""
    monkeypatch.delenv("LSKD_DATA", raising=False)


# ----------------------------------------------------------------------------------------------- registry


def test_registry_names_and_specs() -> None:
    assert available_datasets() == ["cifar100", "digits", "fashion_mnist", "imagenet"]
    expected = {  # name: (classes, channels, size, in_memory)
        "cifar100": (100, 3, 32, True), "digits": (10, 1, 8, True),
        "fashion_mnist": (10, 1, 28, True), "imagenet": (1000, 3, 224, False),
    }
    for name, (k, c, s, mem) in expected.items():
        spec = get_spec(name)
        assert isinstance(spec, DatasetSpec) and spec.name == name
        assert (spec.num_classes, spec.in_chans, spec.image_size, spec.in_memory) == (k, c, s, mem)
        assert len(spec.class_names) == len(set(spec.class_names)) == k
        assert len(spec.mean) == len(spec.std) == c
    assert get_spec("fashion_mnist").class_names == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert get_spec("digits").class_names == tuple("0123456789")
    cifar = get_spec("cifar100").class_names
    assert cifar == tuple(sorted(cifar)) and (cifar[0], cifar[-1]) == ("apple", "worm")
    assert get_spec("imagenet").class_names[0] == "tench"
    assert get_spec("cifar100").mean == (0.5071, 0.4865, 0.4409)
    with pytest.raises(AttributeError):
        get_spec("digits").num_classes = 3  # type: ignore[misc]


def test_unknown_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="cifar100, digits, fashion_mnist, imagenet"):
        get_spec("mnist")
    with pytest.raises(ValueError, match="view"):
        build_transform("digits", "weak")
    with pytest.raises(ValueError, match="split"):
        build_dataset("digits", "val")
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


@pytest.mark.parametrize("name", ["digits", "fashion_mnist", "cifar100"])
@pytest.mark.parametrize("view", ["train", "eval", "strong"])
def test_transforms_on_uint8_tensors(name: str, view: str) -> None:
    spec = get_spec(name)
    img = torch.randint(0, 256, (spec.in_chans, spec.image_size, spec.image_size), dtype=torch.uint8)
    threads = torch.get_num_threads()
    out = build_transform(name, view)(img)
    assert torch.get_num_threads() == threads
    assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.shape == img.shape
    if view == "eval":
        mean = torch.tensor(spec.mean).view(-1, 1, 1)
        std = torch.tensor(spec.std).view(-1, 1, 1)
        torch.testing.assert_close(out, (img.float() / 255 - mean) / std)


def test_pad_random_crop_matches_torchvision_semantics() -> None:
    """Each output is one of the (2p+1)^2 windows of the zero-padded image, and all windows occur."""
    from torchvision.transforms.v2 import functional as F

    img = torch.randint(1, 256, (1, 8, 8), dtype=torch.uint8)
    padded = F.pad(img, [1, 1, 1, 1], fill=0)
    windows = [F.crop(padded, i, j, 8, 8) for i in range(3) for j in range(3)]
    crop = PadRandomCrop(8, padding=1)
    seen = set()
    for _ in range(300):
        out = crop(img)
        seen.add(next(k for k, w in enumerate(windows) if torch.equal(out, w)))
    assert seen == set(range(9))


# ------------------------------------------------------------------------------------------ fashion-mnist


@needs_debian
def test_fashion_mnist_from_debian_folder() -> None:
    assert resolve_root("fashion_mnist") == DEBIAN
    train = build_dataset("fashion_mnist", "train")
    test = build_dataset("fashion_mnist", "test")
    assert (len(train), len(test)) == (60_000, 10_000)
    for ds, per_class in ((train, 6000), (test, 1000)):
        assert ds.targets.dtype == torch.long and ds.targets.shape == (len(ds),)
        assert int(ds.targets.min()) == 0 and int(ds.targets.max()) == 9
        assert torch.bincount(ds.targets).tolist() == [per_class] * 10
        assert ds.spec.class_names[0] == "T-shirt/top" and ds.spec.class_names[9] == "Ankle boot"
    x, y, i = test[1234]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert isinstance(y, int) and y == int(test.targets[1234]) and i == 1234


@needs_debian
def test_fashion_mnist_mean_std_match_training_set() -> None:
    raw = data.registry.get_builder("fashion_mnist").load("train")
    pixels = raw.images.double() / 255
    spec = get_spec("fashion_mnist")
    assert abs(pixels.mean().item() - spec.mean[0]) < 1e-4
    assert abs(pixels.std().item() - spec.std[0]) < 1e-4


@needs_debian
def test_fashion_mnist_torchvision_raw_layout_and_env(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in FM_FILES:
        (raw / f).symlink_to(DEBIAN / f)
    assert resolve_root("fashion_mnist", tmp_path) == raw
    ds = build_dataset("fashion_mnist", "test", root=tmp_path)
    ref = build_dataset("fashion_mnist", "test", root=DEBIAN)
    assert len(ds) == 10_000 and torch.equal(ds.targets, ref.targets) and torch.equal(ds[17][0], ref[17][0])
    monkeypatch.setenv("LSKD_DATA", str(tmp_path))
    assert resolve_root("fashion_mnist") == raw  # $LSKD_DATA comes before the Debian folder


def _fm_copy(tmp_path: pathlib.Path, damaged: str, content: bytes) -> pathlib.Path:
    """A Fashion-MNIST folder of symlinks to the Debian files, with one file replaced by ``content``."""
    folder = tmp_path / "fm"
    folder.mkdir()
    for f in FM_FILES:
        if f == damaged:
            (folder / f).write_bytes(content)
        else:
            (folder / f).symlink_to(DEBIAN / f)
    return folder


@needs_debian
def test_fashion_mnist_truncated_file_is_refused(tmp_path: pathlib.Path) -> None:
    name = "t10k-images-idx3-ubyte.gz"
    folder = _fm_copy(tmp_path, name, (DEBIAN / name).read_bytes()[:1_000_000])
    with pytest.raises(DatasetCorruptedError, match=rf"{name}.*truncated or corrupted"):
        build_dataset("fashion_mnist", "test", root=folder)


@needs_debian
def test_fashion_mnist_wrong_content_is_refused(tmp_path: pathlib.Path) -> None:
    """A well-formed gzip whose content differs from the official file fails the checksum."""
    name = "t10k-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress((DEBIAN / name).read_bytes()))
    payload[100] = (payload[100] + 1) % 10
    folder = _fm_copy(tmp_path, name, gzip.compress(bytes(payload)))
    with pytest.raises(DatasetCorruptedError, match=rf"{name} fails its checksum"):
        build_dataset("fashion_mnist", "test", root=folder)


@needs_debian
def test_fashion_mnist_recompressed_intact_file_is_accepted(tmp_path: pathlib.Path) -> None:
    name = "t10k-labels-idx1-ubyte.gz"
    folder = _fm_copy(tmp_path, name, gzip.compress(gzip.decompress((DEBIAN / name).read_bytes()), mtime=0))
    assert len(build_dataset("fashion_mnist", "test", root=folder)) == 10_000


def test_fashion_mnist_missing_root_says_how_to_get_it(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(DatasetNotFoundError) as err:
        resolve_root("fashion_mnist", tmp_path / "missing")
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "--data-root" in msg and "download=True" in msg and str(tmp_path / "missing") in msg
    with pytest.raises(FileNotFoundError):
        build_dataset("fashion_mnist", "train", root=tmp_path / "missing")


def _official_gz(name: str) -> bytes:
    """The official Fashion-MNIST file, rebuilt from the Debian copy (same deflate stream, original gzip header)."""
    deb = (DEBIAN / name).read_bytes()
    assert deb[:4] == b"\x1f\x8b\x08\x00"  # Debian's normalised header: no FNAME, 10 bytes
    mtime = dl.load_checksums()["fashion_mnist"]["files"][name]["gzip_mtime"]
    return b"\x1f\x8b\x08\x08" + struct.pack("<I", mtime) + b"\x00\x03" + name[:-3].encode() + b"\x00" + deb[10:]


@needs_debian
def test_fashion_mnist_download_verifies_official_checksums(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in FM_FILES:
        (mirror / name).write_bytes(_official_gz(name))
    monkeypatch.setitem(dl.load_checksums()["fashion_mnist"], "mirrors", [mirror.as_uri() + "/"])
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    root = tmp_path / "data"
    ds = build_dataset("fashion_mnist", "test", root=root, download=True)
    assert len(ds) == 10_000
    info = dl.load_checksums()["fashion_mnist"]["files"]
    for name in FM_FILES:  # bit-identical to the published official files
        dl.verify_file(root / "FashionMNIST" / "raw" / name, sha256=info[name]["sha256"], md5=info[name]["md5"])


# ------------------------------------------------------------------------------------ digits, subsets, views


def test_digits_split_sizes_and_determinism() -> None:
    train, test = build_dataset("digits", "train"), build_dataset("digits", "test")
    assert (len(train), len(test)) == (1347, 450)
    assert train[0][0].shape == (1, 8, 8)
    test_counts = torch.bincount(test.targets, minlength=10).double()
    total = test_counts + torch.bincount(train.targets, minlength=10)
    assert torch.all((test_counts - total * 450 / 1797).abs() <= 1)  # stratified
    again = build_dataset("digits", "test")
    assert torch.equal(again.targets, test.targets) and torch.equal(again[7][0], test[7][0])
    raw = data.registry.get_builder("digits").load("train")
    assert raw.images.dtype == torch.uint8 and int(raw.images.max()) == 255
    pixels = raw.images.double() / 255
    assert abs(pixels.mean().item() - get_spec("digits").mean[0]) < 1e-4
    assert abs(pixels.std().item() - get_spec("digits").std[0]) < 1e-4


def test_subset_is_balanced_sorted_and_deterministic() -> None:
    full = build_dataset("digits", "train")
    a = build_dataset("digits", "train", subset=53, seed=3)
    b = build_dataset("digits", "train", subset=53, seed=3)
    c = build_dataset("digits", "train", subset=53, seed=4)
    assert len(a) == 53 and torch.equal(a.indices, b.indices) and not torch.equal(a.indices, c.indices)
    assert torch.equal(a.indices, a.indices.sort().values)
    counts = torch.bincount(a.targets, minlength=10)
    assert int(counts.max()) - int(counts.min()) <= 1
    for pos in (0, 20, 52):
        x, y, index = a[pos]
        assert index == pos and y == int(full.targets[a.indices[pos]])
        assert torch.equal(x, full[int(a.indices[pos])][0])
    with pytest.raises(ValueError):
        build_dataset("digits", "train", subset=0)


def test_balanced_subset_redistributes_small_classes() -> None:
    targets = torch.tensor([0] * 2 + [1] * 50 + [2] * 50)
    idx = balanced_subset(targets, 30, num_classes=3, seed=0)
    assert torch.bincount(targets[idx], minlength=3).tolist() == [2, 14, 14]


def test_multi_view_items_are_independent_augmentations_of_one_image() -> None:
    eval_ds = build_dataset("digits", "train")
    ds = build_dataset("digits", "train", views=("train", "train", "strong"))
    spec = ds.spec
    zero = (0 - spec.mean[0]) / spec.std[0]  # normalised value of the zero padding
    torch.manual_seed(0)
    differ = 0
    for pos in range(0, 1347, 67):
        (v1, v2, strong), y, index = ds[pos]
        ref, y_ref, index_ref = eval_ds[pos]
        assert (y, index) == (y_ref, index_ref) == (int(ds.targets[pos]), pos)
        assert v1.shape == v2.shape == strong.shape == (1, 8, 8)
        padded = torch.nn.functional.pad(ref, (1, 1, 1, 1), value=zero)
        windows = [padded[:, i : i + 8, j : j + 8] for i in range(3) for j in range(3)]
        for view in (v1, v2):  # each train view is a crop of the same image
            assert any(torch.allclose(view, w, atol=1e-5) for w in windows)
        differ += not torch.equal(v1, v2)
    assert differ >= 10


def test_same_torch_seed_gives_identical_items_and_batches() -> None:
    ds = build_dataset("digits", "train", views=("train", "strong"), subset=64)

    def run(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(seed), num_workers=0
        )
        return [t for (weak, strong), y, idx in loader for t in (weak, strong, y, idx)]

    first, second, other = run(5), run(5), run(6)
    assert all(torch.equal(p, q) for p, q in zip(first, second, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(first, other, strict=True))


@needs_debian
def test_fashion_mnist_train_views_and_subset() -> None:
    ds = build_dataset("fashion_mnist", "train", views=("train", "strong"), subset=100, seed=1)
    assert len(ds) == 100 and torch.bincount(ds.targets).tolist() == [10] * 10
    torch.manual_seed(0)
    (weak, strong), y, i = ds[5]
    assert weak.shape == strong.shape == (1, 28, 28) and weak.dtype == strong.dtype == torch.float32 and i == 5


# --------------------------------------------------------------------------------------- cifar100 stand-in


FAKE_CIFAR_NAMES = [f"class_{k:02d}" for k in range(100)]


def test_cifar100_standin(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = write_standin(tmp_path, n_train=200, n_test=100, class_names=FAKE_CIFAR_NAMES)
    train = build_dataset("cifar100", "train", root=tmp_path, views=("train", "eval", "strong"))
    test = build_dataset("cifar100", "test", root=tmp_path)
    assert (len(train), len(test)) == (200, 100)
    assert train.spec.class_names == tuple(FAKE_CIFAR_NAMES) and train.spec.num_classes == 100
    assert torch.bincount(train.targets).tolist() == [2] * 100
    (weak, ref, strong), y, i = train[3]
    assert weak.shape == ref.shape == strong.shape == (3, 32, 32) and y == 1 and i == 3
    expected = torch.from_numpy(images["train"][3].reshape(3, 32, 32)).float() / 255
    mean, std = torch.tensor(train.spec.mean).view(3, 1, 1), torch.tensor(train.spec.std).view(3, 1, 1)
    torch.testing.assert_close(ref * std + mean, expected, atol=1e-5, rtol=0)
    assert resolve_root("cifar100", tmp_path / "cifar-100-python") == tmp_path
    monkeypatch.setenv("LSKD_DATA", str(tmp_path))
    assert resolve_root("cifar100") == tmp_path


def test_cifar100_missing_and_corrupted(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        build_dataset("cifar100", "train", root=tmp_path / "missing")
    write_standin(tmp_path, n_train=100, n_test=100, class_names=FAKE_CIFAR_NAMES)
    path = tmp_path / "cifar-100-python" / "test"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DatasetCorruptedError, match="truncated or corrupted"):
        build_dataset("cifar100", "test", root=tmp_path)


# --------------------------------------------------------------------------------------- imagenet stand-in


WNIDS = ["n01440764", "n01443537", "n01484850"]


@pytest.fixture
def imagenet_root(tmp_path: pathlib.Path) -> pathlib.Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("val", 1)):
        for k, wnid in enumerate(WNIDS):
            folder = tmp_path / split / wnid
            folder.mkdir(parents=True)
            for j in range(n):
                arr = rng.integers(0, 256, (30 + 7 * j, 40 + 5 * k, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{wnid}_{j}.JPEG", quality=90)
    return tmp_path


def test_imagenet_standin(imagenet_root: pathlib.Path) -> None:
    train = build_dataset("imagenet", "train", root=imagenet_root, views=("train", "eval", "strong"))
    test = build_dataset("imagenet", "test", root=imagenet_root)
    assert (len(train), len(test)) == (6, 3)
    assert train.spec.class_names == tuple(WNIDS) and train.spec.num_classes == 3 and not train.spec.in_memory
    assert train.targets.tolist() == [0, 0, 1, 1, 2, 2] and test.targets.tolist() == [0, 1, 2]
    (weak, ref, strong), y, i = train[3]
    assert weak.shape == ref.shape == strong.shape == (3, 224, 224) and ref.dtype == torch.float32
    assert (y, i) == (1, 3)
    x, y, _ = next(iter(torch.utils.data.DataLoader(test, batch_size=3)))
    assert x.shape == (3, 3, 224, 224) and y.tolist() == [0, 1, 2]


def test_imagenet_missing_explains_imagefolder_layout(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"ImageFolder layout DIR/train/<wnid>/\*\.JPEG"):
        resolve_root("imagenet", tmp_path)


# ------------------------------------------------------------------------------------------------ download


def _leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_file_url_verified_and_atomic(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "src.bin"
    payload = bytes(range(256)) * 5000
    src.write_bytes(payload)
    out = tmp_path / "out"
    dest = dl.download_file(src.as_uri(), out / "file.bin", sha256=hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload and _leftovers(out) == ["file.bin"]

    with pytest.raises(dl.ChecksumError, match="sha256"):
        dl.download_file(src.as_uri(), out / "bad.bin", sha256="0" * 64)
    assert _leftovers(out) == ["file.bin"]  # no bad.bin, no temporary file

    with pytest.raises(ValueError, match="unverified"):
        dl.download_file(src.as_uri(), out / "x.bin")


def test_download_failure_midway_leaves_nothing(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def __enter__(self) -> Broken:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self, n: int) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise ConnectionResetError("connection dropped")
            return b"x" * n

    monkeypatch.setattr(dl, "_open_url", lambda url, timeout: Broken())
    with pytest.raises(ConnectionResetError):
        dl.download_file("http://example.invalid/f", tmp_path / "f.bin", md5="0" * 32)
    assert _leftovers(tmp_path) == []


def test_download_over_local_http_server(tmp_path: pathlib.Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    payload = b"lskd" * 100_000
    (served / "blob.bin").write_bytes(payload)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        mirrors = [f"http://127.0.0.1:{server.server_port}/missing/", f"http://127.0.0.1:{server.server_port}/"]
        dest = dl.download_from_mirrors(mirrors, "blob.bin", tmp_path / "got" / "blob.bin",
                                        md5=hashlib.md5(payload).hexdigest())
        assert dest.read_bytes() == payload and _leftovers(dest.parent) == ["blob.bin"]
        with pytest.raises(OSError, match="could not download"):
            dl.download_from_mirrors(mirrors[1:], "blob.bin", tmp_path / "bad" / "blob.bin", md5="f" * 32)
        assert _leftovers(tmp_path / "bad") == []
    finally:
        server.shutdown()
        server.server_close()


def test_checksums_json_is_consistent_with_torchvision() -> None:
    from torchvision.datasets import CIFAR100, FashionMNIST

    sums = dl.load_checksums()
    assert {n: i["md5"] for n, i in sums["fashion_mnist"]["files"].items()} == dict(FashionMNIST.resources)
    assert sums["fashion_mnist"]["mirrors"] == FashionMNIST.mirrors
    cifar = sums["cifar100"]["files"]
    assert cifar["cifar-100-python.tar.gz"]["md5"] == CIFAR100.tgz_md5
    assert cifar["cifar-100-python/meta"]["md5"] == CIFAR100.meta["md5"]
    assert [cifar["cifar-100-python/train"]["md5"]] == [m for _, m in CIFAR100.train_list]


def test_seeded_augmentation_depends_only_on_seed_index_and_view():
    """An item's train view is the same whether or not a strong view is drawn beside it, and whatever the order."""
    from lskd.data import build_dataset

    one = build_dataset("digits", "train", views=("train",))
    two = build_dataset("digits", "train", views=("train", "strong"))
    one.seed_augmentation(123)
    two.seed_augmentation(123)
    torch.manual_seed(0)
    a = [one[i][0] for i in (5, 3, 7)]
    torch.manual_seed(1)
    b = [two[i][0][0] for i in (7, 3, 5)][::-1]
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    two.seed_augmentation(124)
    assert any(not torch.equal(one[i][0], two[i][0][0]) for i in range(20))
