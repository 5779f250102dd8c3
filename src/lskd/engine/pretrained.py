"""Teachers from published weights: fetch (or take a local file), verify SHA-256, load without executing code,
evaluate on the test set, and write a run folder that looks like a trained teacher's."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from lskd.data import build_dataset
from lskd.data.download import download_file, verify_file
from lskd.engine.evaluate import create_model, predict
from lskd.engine.io import read_tensors
from lskd.engine.metrics import classification_metrics
from lskd.engine.spec import RunSpec
from lskd.engine.trainer import is_finished, resolve_device, write_final_outputs, write_spec_record

FORMATS = ("safetensors", "state_dict", "mdistiller")


def fetch_weights(pretrained: dict[str, Any], out_dir: Path) -> Path:
    """The verified weight file: ``pretrained.file`` checked in place, or ``pretrained.url`` downloaded
    atomically into ``out_dir/download/`` and checked before use. A mismatch raises and leaves no file."""
    sha256 = pretrained["sha256"]
    if pretrained.get("file"):
        path = Path(pretrained["file"])
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weight file {path} does not exist")
        verify_file(path, sha256=sha256)
        return path
    url = pretrained["url"]
    return download_file(url, out_dir / "download" / url.rsplit("/", 1)[-1], sha256=sha256)


def load_state_dict(path: Path, fmt: str) -> dict[str, torch.Tensor]:
    """Weights from a verified file; pickled formats are read with ``weights_only=True`` (no code runs)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown weight format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "safetensors":
        return read_tensors(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if fmt == "mdistiller":
        if not isinstance(state, dict) or "model" not in state:
            raise ValueError(f"{path} is not an mdistiller checkpoint (no 'model' key)")
        state = state["model"]
    return state


def import_pretrained(spec: RunSpec, pretrained: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Create a teacher run folder from published weights (see the module docstring)."""
    out_dir = Path(out_dir)
    spec.validate()
    if is_finished(spec, out_dir):
        from lskd.engine.io import read_json

        return read_json(out_dir / "metrics.json")
    device = resolve_device(spec.device)
    start = time.perf_counter()
    weights = fetch_weights(pretrained, out_dir)
    test_set = build_dataset(spec.data.name, "test", root=spec.data.root, views=("eval",),
                             subset=spec.data.test_subset, seed=spec.data.subset_seed, download=spec.data.download)
    info = test_set.spec
    model = create_model(spec.model, info.num_classes, info.in_chans)
    try:
        model.load_state_dict(load_state_dict(weights, pretrained.get("format", "safetensors")))
    except RuntimeError as err:
        raise ValueError(f"{weights} does not fit {spec.model} with {info.num_classes} classes: {err}") from None
    model.to(device).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_spec_record(spec, out_dir, model, info.num_classes, info.in_chans, device, ("eval",))
    logits, targets = predict(model, test_set, batch_size=spec.optim.eval_batch_size, device=device)
    row = {"epoch": 0, "lr": 0.0, **{f"test_{k}": v for k, v in classification_metrics(logits, targets).items()},
           "seconds": time.perf_counter() - start}
    return write_final_outputs(out_dir, [row], model, logits, targets)
