"""Inference helpers: test-set logits of a model, and loading a finished run's model."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import timm
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

import lskd.models  # noqa: F401  (registers architectures)
from lskd.engine.io import read_json, read_tensors


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset | None, *, batch_size: int, device: torch.device,
            amp: str = "none", channels_last: bool = False,
            loader: Iterable[tuple[Tensor, Tensor, Tensor]] | None = None) -> tuple[Tensor, Tensor]:
    """``(logits float32 (N, K), targets int64 (N,))`` of ``model`` in eval mode over ``dataset`` in order, or over
    the ``(x, y, index)`` batches of ``loader`` (the on-device data path, :mod:`lskd.data.device`)."""
    was_training = model.training
    model.eval()
    if loader is None:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    logits, targets = [], []
    for x, y, _ in loader:
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            out = model(x)
        logits.append(out.float().cpu())
        targets.append(y.cpu())
    model.train(was_training)
    return torch.cat(logits), torch.cat(targets).long()


def create_model(name: str, num_classes: int, in_chans: int, **kwargs: Any) -> nn.Module:
    """Every model is built through timm's registry (CIFAR and small nets are registered by ``lskd.models``)."""
    return timm.create_model(name, num_classes=num_classes, in_chans=in_chans, **kwargs)


def load_run_model(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a finished run (``spec.json`` + ``model.safetensors``) in eval mode, and its spec."""
    run_dir = Path(run_dir)
    spec_path, weights = run_dir / "spec.json", run_dir / "model.safetensors"
    for path in (spec_path, weights):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: {run_dir} is not a finished run (train it first)")
    record = read_json(spec_path)
    resolved = record["resolved"]
    model = create_model(record["spec"]["model"], resolved["num_classes"], resolved["in_chans"])
    model.load_state_dict(read_tensors(weights))
    return model.to(device).eval(), record
