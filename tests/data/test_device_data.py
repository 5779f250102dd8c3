"""The on-device data path (lskd.data.device): the same images as the per-image DataLoader path for the same seeds,
run here on CPU tensors through the code a GPU runs; where it applies; and a training run that uses it."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import DataLoader, default_collate

from lskd.data import build_dataset, build_transform, get_spec
from lskd.data.device import DeviceBatches, resolve_data_path, unsupported_reason
from lskd.data.registry import RawSplit, ViewDataset
from lskd.engine import DataSpec, OptimSpec, RunSpec, train_one
from lskd.engine.io import read_json
from lskd.models import SMALL_MODELS
from lskd.workflow import ConfigError, Experiment, validate_config


def _random_split(name: str, n: int, seed: int = 0) -> ViewDataset:
    """``n`` random uint8 images shaped like dataset ``name``'s, with its real views (train, eval)."""
    spec = get_spec(name)
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, spec.in_chans, spec.image_size, spec.image_size), generator=gen,
                           dtype=torch.uint8)
    raw = RawSplit(spec=spec, targets=torch.randint(0, spec.num_classes, (n,), generator=gen), images=images)
    views = ("train", "eval")
    return ViewDataset(raw, views, [build_transform(name, v) for v in views], torch.arange(n), "train")


def _shuffled_batches(n: int, size: int, seed: int) -> list[list[int]]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return [order[k:k + size] for k in range(0, n, size)]


def _assert_same_batches(reference, device_batches) -> None:
    count = 0
    for (x, y, i), (dx, dy, di) in zip(reference, device_batches, strict=True):
        for a, b in zip(x, dx, strict=True):
            assert a.dtype == b.dtype == torch.float32 and torch.equal(a, b)
            assert a.stride() == b.stride()  # the same layout: convolutions choose their kernels by strides
        assert torch.equal(y, dy) and torch.equal(i, di)
        count += 1
    assert count


@pytest.mark.parametrize("name", ["cifar100", "fashion_mnist", "digits"])
def test_device_path_gives_the_dataloaders_images_for_the_same_seeds(name):
    """Crop with padding, flip (not on digits) and normalisation: bit-identical pixels, batch by batch, in a
    shuffled order with a short last batch, for two epochs' augmentation seeds."""
    ds = _random_split(name, 203)
    batches = _shuffled_batches(len(ds), 32, seed=5)
    device = DeviceBatches(ds, "cpu")
    for augment_seed in (11, 12):
        ds.seed_augmentation(augment_seed)
        _assert_same_batches(DataLoader(ds, batch_sampler=batches), device.loader(batches, augment_seed))
    ds.seed_augmentation(None)  # no per-item seed: both draw from torch's global generator in item order (a
    torch.manual_seed(3)        # DataLoader would first draw its base seed from it, so items are read directly)
    reference = [default_collate([ds[k] for k in batch]) for batch in batches]
    torch.manual_seed(3)
    _assert_same_batches(reference, device.loader(batches, None))


def test_the_augmentation_is_real():
    """The device path's train view differs from its eval view and between seeds (it is not an identity)."""
    ds = _random_split("cifar100", 64)
    device = DeviceBatches(ds, "cpu")
    (train_a, eval_a), _, _ = device.batch(range(64), 1)
    (train_b, _), _, _ = device.batch(range(64), 2)
    assert not torch.equal(train_a, eval_a) and not torch.equal(train_a, train_b)
    crops = device.draw(range(64), 1)["train"][0]
    assert len(set(crops)) > 20  # 81 windows on CIFAR (pad 4): most images get their own


def test_where_the_device_path_applies():
    ds = _random_split("cifar100", 8)
    assert unsupported_reason(ds) is None
    assert resolve_data_path("auto", ds, torch.device("cpu")) == "device"
    assert resolve_data_path("auto", ds, torch.device("cuda")) == "device"
    assert resolve_data_path("dataloader", ds, torch.device("cuda")) == "dataloader"
    strong = build_dataset("digits", "train", views=("train", "strong_fixmatch"), subset=20)
    assert "strong_fixmatch" in unsupported_reason(strong)
    assert resolve_data_path("auto", strong, torch.device("cuda")) == "dataloader"
    with pytest.raises(ValueError, match="data_path: device is not possible here.*strong_fixmatch"):
        resolve_data_path("device", strong, torch.device("cpu"))
    with pytest.raises(ValueError, match="data_path must be one of"):
        resolve_data_path("gpu", ds, torch.device("cpu"))


def _spec(model: str, method: str, data_path: str, teacher=None, **hparams) -> RunSpec:
    return RunSpec(model=model, data=DataSpec(name="digits", train_subset=300, test_subset=150),
                   optim=OptimSpec(epochs=2, batch_size=32, lr=0.05), method=method, hparams=hparams,
                   teacher_dir=str(teacher) if teacher else None, threads=1, data_path=data_path)


def test_a_run_on_the_device_path_equals_the_dataloader_run(tmp_path):
    """Teacher and KD student trained through the device path end bit-identical to the DataLoader path (training
    batches and evaluation); spec.json names the path, and the fingerprint does not depend on it."""
    teacher, student = SMALL_MODELS[0], SMALL_MODELS[1]
    runs = {}
    for path in ("dataloader", "device"):
        t_dir, s_dir = tmp_path / path / "teacher", tmp_path / path / "student"
        train_one(_spec(teacher, "ce", path), t_dir, progress=False)
        spec = _spec(student, "kd", path, teacher=t_dir, temperature=2.0, transform="zscore", kd_weight=3.0)
        train_one(spec, s_dir, progress=False)
        runs[path] = (t_dir, s_dir, spec)
    for role in (0, 1):
        a, b = runs["dataloader"][role], runs["device"][role]
        for name in ("metrics.json", "test_logits.safetensors", "model.safetensors"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        assert read_json(b / "spec.json")["resolved"]["data_path"] == "device"
        assert read_json(a / "spec.json")["resolved"]["data_path"] == "dataloader"
    spec = runs["device"][2]
    assert dataclasses.replace(spec, data_path="dataloader").fingerprint() == spec.fingerprint()


def test_the_config_refuses_the_device_path_where_it_cannot_apply():
    """``execution.data_path: device`` with MLKD (a per-image strong view) fails before any job, naming the key;
    without MLKD it is accepted and reaches every run spec."""
    root = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((root / "configs/smoke.yaml").read_text())
    raw["execution"]["data_path"] = "device"
    schema = root / "workflow/schemas/config.schema.yaml"
    with pytest.raises(ConfigError, match="execution.data_path: device .* mlkd reads strong"):
        validate_config(copy.deepcopy(raw), schema, check_data=False)
    raw["grid"]["methods"] = [m for m in raw["grid"]["methods"] if m != "mlkd"]
    config = validate_config(raw, schema, check_data=False)
    experiment = Experiment(config)
    assert {experiment.cell_spec(c)["data_path"] for c in experiment.cells()} == {"device"}


def test_bench_times_both_data_paths():
    from lskd.bench import BenchConfig, data_paths

    ms = data_paths(BenchConfig(dataset="digits", train_subset=300, batch_size=32), repeats=1)
    assert set(ms) == {"dataloader", "device"} and all(v > 0 for v in ms.values())
