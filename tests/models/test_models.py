"""Tests for lskd.models: timm registration, reference parameter counts, interface."""

from __future__ import annotations

import functools
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

import lskd.models as lm

ALL_MODELS = lm.CIFAR_MODELS + lm.SMALL_MODELS

# Parameter counts at num_classes=100, in_chans=3 (CRD / mdistiller reference code).
REFERENCE_PARAMS = {
    "resnet20": 278_324,
    "resnet32": 472_756,
    "resnet56": 861_620,
    "resnet110": 1_736_564,
    "resnet8x4": 1_233_540,
    "resnet32x4": 7_433_860,
    "wrn_16_2": 703_284,
    "wrn_40_1": 569_780,
    "wrn_40_2": 2_255_156,
    "vgg8": 3_965_028,
    "cifar_vgg13": 9_462_180,
    "mobilenet_v2": 812_836,
    "shufflenet_v1": 949_258,
    "shufflenet_v2": 1_355_528,
    "cifar_resnet50": 23_705_252,
}
# Defaults of the 28x28 demo pair (num_classes=10, in_chans=1).
SMALL_PARAMS = {"cnn_w24d4": 136_498, "cnn_w8d3": 6_274}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny batches: one intra-op thread is faster and immune to a busy second core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.lru_cache(maxsize=None)
def default_model(name: str) -> nn.Module:
    """One shared instance per name with the cfg defaults (model init dominates test time)."""
    return timm.create_model(name)


def test_registered_in_timm() -> None:
    listed = set(timm.list_models())
    for name in ALL_MODELS:
        assert name in listed
        assert timm.models.model_entrypoint(name).__module__.startswith("lskd.models.")
    assert set(REFERENCE_PARAMS) <= set(lm.CIFAR_MODELS)
    assert set(SMALL_PARAMS) == set(lm.SMALL_MODELS)
    assert {"wrn_28_2", "wrn_16_4", "wrn_28_4"} <= set(lm.CIFAR_MODELS)


def test_timm_models_not_overwritten() -> None:
    assert "vgg13" not in ALL_MODELS and "resnet50" not in ALL_MODELS
    assert timm.models.model_entrypoint("resnet50").__module__ == "timm.models.resnet"
    assert timm.models.model_entrypoint("vgg13").__module__ == "timm.models.vgg"
    assert n_params(timm.create_model("resnet50")) == 25_557_032


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_reference_param_count(name: str) -> None:
    model = default_model(name)
    assert (model.num_classes, model.in_chans) == (100, 3)
    assert n_params(model) == REFERENCE_PARAMS[name]


@pytest.mark.parametrize("name", sorted(SMALL_PARAMS))
def test_small_param_count(name: str) -> None:
    model = default_model(name)
    assert (model.num_classes, model.in_chans) == (10, 1)
    assert n_params(model) == SMALL_PARAMS[name]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_default_cfg(name: str) -> None:
    cfg = timm.models.get_pretrained_cfg(name)
    assert cfg is not None and not cfg.has_weights and not cfg.url
    small = name in lm.SMALL_MODELS
    assert cfg.num_classes == (10 if small else 100)
    assert cfg.input_size == ((1, 28, 28) if small else (3, 32, 32))
    assert len(cfg.mean) == len(cfg.std) == cfg.input_size[0]
    model = default_model(name)
    first = model.get_submodule(cfg.first_conv)
    assert isinstance(first, nn.Conv2d) and first.in_channels == cfg.input_size[0]
    assert model.get_submodule(cfg.classifier) is model.get_classifier()
    assert isinstance(model.get_classifier(), nn.Linear)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_cifar(name: str) -> None:
    torch.manual_seed(0)
    small = name in lm.SMALL_MODELS
    model = timm.create_model(name, num_classes=100, in_chans=3) if small else default_model(name)
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 100)
    # timm interface
    feats = model.forward_features(x)
    assert feats.ndim == 4 and feats.shape[:2] == (2, model.num_features)
    pre = model.forward_head(feats, pre_logits=True)
    assert pre.shape == (2, model.num_features)
    assert model.get_classifier().out_features == model.num_classes == 100
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.forward_head(model.forward_features(x)))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_grayscale_small_inputs(name: str) -> None:
    model = timm.create_model(name, num_classes=10, in_chans=1, drop_rate=0.1)
    assert model.in_chans == 1
    for size in (28, 8):
        out = model(torch.randn(2, 1, size, size))
        assert out.shape == (2, 10)
        assert torch.isfinite(out).all()
    out.sum().backward()
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)


@pytest.mark.parametrize("name", ["resnet8x4", "wrn_16_2", "vgg8", "mobilenet_v2", "shufflenet_v1", "shufflenet_v2"])
def test_channels_last(name: str) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet20", "shufflenet_v2", "cnn_w8d3"])
def test_reset_classifier(name: str) -> None:
    model = timm.create_model(name, num_classes=100, in_chans=3)
    x = torch.randn(2, 3, 32, 32)
    model.reset_classifier(7)
    assert model.num_classes == 7 and model.get_classifier().out_features == 7
    assert model(x).shape == (2, 7)
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), nn.Identity)
    assert model(x).shape == (2, model.num_features)
    with pytest.raises(ValueError):
        model.reset_classifier(5, global_pool="max")


def test_pretrained_without_file_fails() -> None:
    with pytest.raises(RuntimeError, match="No pretrained weights"):
        timm.create_model("resnet20", pretrained=True)


def _assert_same_weights(a: nn.Module, b: nn.Module, skip: tuple[str, ...] = ()) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if not key.startswith(skip):
            torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_local_file(tmp_path, suffix: str) -> None:
    src = timm.create_model("resnet20", num_classes=10)
    path = tmp_path / f"resnet20{suffix}"
    if suffix == ".pth":
        torch.save(src.state_dict(), path)
    else:
        save_file(src.state_dict(), path)
    model = timm.create_model(
        "resnet20", pretrained=True, pretrained_cfg_overlay=dict(file=str(path), num_classes=10), num_classes=10
    )
    _assert_same_weights(src, model)
    assert model.pretrained_cfg["file"] == str(path)


def test_pretrained_local_file_new_head(tmp_path) -> None:
    src = timm.create_model("wrn_16_2", num_classes=100)
    path = tmp_path / "wrn.pth"
    torch.save(src.state_dict(), path)
    # checkpoint has 100 classes (the cfg default); the new 10-class head is re-initialised
    model = timm.create_model("wrn_16_2", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), num_classes=10)
    sa, sb = src.state_dict(), model.state_dict()
    for key in sb:
        if not key.startswith("fc."):
            torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)
    assert model.get_classifier().out_features == 10
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_pretrained_local_file_grayscale(tmp_path) -> None:
    src = timm.create_model(lm.SMALL_TEACHER)
    path = tmp_path / "teacher.pth"
    torch.save(src.state_dict(), path)
    model = timm.create_model(lm.SMALL_TEACHER, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    _assert_same_weights(src, model)


def test_checkpoint_path(tmp_path) -> None:
    src = timm.create_model("mobilenet_v2", num_classes=10)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": src.state_dict(), "epoch": 240}, path)  # mdistiller-style checkpoint
    model = timm.create_model("mobilenet_v2", num_classes=10, checkpoint_path=str(path))
    _assert_same_weights(src, model)


def test_paper_name() -> None:
    assert lm.paper_name("cifar_vgg13") == "vgg13"
    assert lm.paper_name("cifar_resnet50") == "resnet50"
    assert lm.paper_name("resnet32x4") == "resnet32x4"
    assert lm.paper_name("wrn_40_2") == "wrn_40_2"
    assert lm.paper_name("resnet50") == "resnet50"  # timm's own name passes through
    assert set(lm.PAPER_NAMES) == set(ALL_MODELS)
    assert len(set(lm.PAPER_NAMES.values())) == len(lm.PAPER_NAMES)
    with pytest.raises(TypeError):
        lm.PAPER_NAMES["x"] = "y"  # type: ignore[index]


def test_generic_wrn_and_validation() -> None:
    model = lm.wrn(22, 1, num_classes=10)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    with pytest.raises(ValueError):
        lm.wrn(21, 2)
    with pytest.raises(ValueError):
        lm.CifarResNet(21, (16, 16, 32, 64))
