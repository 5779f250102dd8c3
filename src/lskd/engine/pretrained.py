"""Teachers from published weights: fetch (or take a local file), verify SHA-256, load without executing code,
map the weights onto lskd's timm-registered architecture with every shape checked, evaluate on the test set,
and write a run folder that looks like a trained teacher's.

Sources (the ``pretrained`` block, see :mod:`lskd.teachers`): a weight file (``url``/``file``, ``sha256``), a
member of a tar archive (mdistiller's ``cifar_teachers.tar``: ``member``, ``sha256`` of the member,
``archive_sha256``), or a timm tag (``timm: resnet34.tv_in1k``, optionally pinned by ``url``/``file`` +
``sha256``). Digests that are not pinned are trusted on first use and kept in the track's lock file
(:func:`lskd.teachers.fetch_verified`). ``min_top1`` refuses a teacher whose test top-1 is lower (nothing is
written then).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lskd.data import build_dataset
from lskd.engine.evaluate import create_model, predict
from lskd.engine.io import read_tensors, write_json
from lskd.engine.metrics import classification_metrics
from lskd.engine.spec import RunSpec
from lskd.engine.trainer import (
    is_finished,
    resolve_device,
    write_final_outputs,
    write_spec_record,
)
from lskd.teachers import cache_dir, fetch_verified, resolve_checksums

FORMATS = ("safetensors", "state_dict", "mdistiller")

#: Prefixes that wrappers add to module names: DataParallel (``module.``) and mdistiller's distiller wrapper,
#: whose own training runs save ``module.student.*`` (mdistiller issue #20). Stripped when the model lacks them.
WRAPPER_PREFIXES = ("module.student.", "module.", "student.")

#: Per-architecture renames (checkpoint key prefix -> lskd key prefix) for code bases whose module names differ.
#: Empty for mdistiller: lskd's CIFAR models (lskd.models) use mdistiller's / CRD's module names, so resnet*,
#: resnet*x4, cifar_resnet50 (mdistiller's ResNet50), wrn_*, vgg* (block0..block4, classifier) load unchanged;
#: parameter-free modules (mdistiller's pool0..pool4) have no keys.
KEY_RENAMES: dict[str, dict[str, str]] = {}


class TeacherRefusedError(RuntimeError):
    """A pretrained teacher evaluated below its ``min_top1``."""


try:
    from numpy._core.multiarray import scalar as _np_scalar  # numpy >= 2
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import scalar as _np_scalar

#: What an mdistiller/CRD checkpoint holds besides tensors and plain containers: its training options
#: (``argparse.Namespace``) and numpy scalars (e.g. ``best_acc``). Allowed for ``torch.load(weights_only=True)``
#: only while an mdistiller checkpoint is read (never registered globally): the scalar reconstructor under
#: numpy 2's name and under numpy 1.x's (the published files were saved with numpy 1.x), ``numpy.dtype`` and the
#: dtype classes its pickled state is restored into. Nothing else: any other global is still refused.
MDISTILLER_SAFE_GLOBALS: list[Any] = [
    argparse.Namespace,
    (_np_scalar, "numpy._core.multiarray.scalar"),  # numpy >= 2
    (_np_scalar, "numpy.core.multiarray.scalar"),  # numpy 1.x
    np.dtype,
    np.dtypes.Float64DType,
    np.dtypes.Float32DType,
    np.dtypes.Int64DType,
    np.dtypes.Int32DType,
]


def fetch_weights(pretrained: dict[str, Any], out_dir: Path | None = None, *, lock: str | Path | None = None,
                  strict: bool = False) -> Path | None:
    """The verified weight file: ``pretrained.file`` checked in place, ``pretrained.url`` downloaded atomically
    into the cache (:func:`lskd.teachers.cache_dir`) and checked before use, or the verified ``member`` of a tar
    archive (archive cached too). ``None`` for a timm tag alone (timm fetches it). Digests that are not pinned are
    checked against / recorded in ``lock`` (:func:`lskd.teachers.fetch_verified`); ``strict`` refuses them. A
    mismatch raises and leaves no file. ``out_dir`` is not used (downloads live in the shared cache)."""
    return fetch_verified(pretrained, lock=lock, strict=strict).path


def load_state_dict(path: Path, fmt: str) -> dict[str, torch.Tensor]:
    """Weights from a verified file; pickled formats are read with ``weights_only=True`` (no code runs)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown weight format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "safetensors":
        return read_tensors(path)
    allowed = MDISTILLER_SAFE_GLOBALS if fmt == "mdistiller" else []
    try:
        with torch.serialization.safe_globals(allowed):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (UnpicklingError, legacy tar layout, ...: never retried unsafely)
        raise ValueError(f"{path} cannot be read as a torch checkpoint with weights_only=True "
                         f"(lskd never unpickles arbitrary objects): {err}") from None
    if fmt == "mdistiller":
        if not isinstance(state, dict) or "model" not in state:
            keys = ", ".join(map(str, list(state)[:8])) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{path} is not an mdistiller checkpoint (no 'model' key; found: {keys})")
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


def map_state_dict(state: dict[str, torch.Tensor], model: nn.Module, model_name: str,
                   source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """``state`` with its keys mapped onto ``model``'s, checked strictly: wrapper prefixes are stripped
    (:data:`WRAPPER_PREFIXES`), :data:`KEY_RENAMES` applied, every model key must be present with the same shape
    and no checkpoint key may be left over. BatchNorm ``num_batches_tracked`` counters, which checkpoints from
    PyTorch < 0.4.1 lack and which evaluation never reads, are filled from the model. Raises ``ValueError``
    naming the model."""
    expected = model.state_dict()
    mapped = dict(state)
    for prefix in WRAPPER_PREFIXES:
        if mapped and all(k.startswith(prefix) for k in mapped) and not any(k.startswith(prefix) for k in expected):
            mapped = {k[len(prefix):]: v for k, v in mapped.items()}
    for old, new in KEY_RENAMES.get(model_name, {}).items():
        mapped = {(new + k[len(old):] if k.startswith(old) else k): v for k, v in mapped.items()}
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in mapped:
            mapped[key] = expected[key].clone()
    missing = [k for k in expected if k not in mapped]
    unexpected = [k for k in mapped if k not in expected]
    shapes = [f"{k}: {source} {tuple(mapped[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in mapped and tuple(mapped[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        def some(items: list[str]) -> str:
            return ", ".join(items[:6]) + (f" (+{len(items) - 6} more)" if len(items) > 6 else "")

        problems = ([f"{len(missing)} missing keys: {some(missing)}"] if missing else []) + \
                   ([f"{len(unexpected)} unexpected keys: {some(unexpected)}"] if unexpected else []) + \
                   ([f"{len(shapes)} shape mismatches: {some(shapes)}"] if shapes else [])
        raise ValueError(f"{source} does not fit model {model_name!r} "
                         f"({sum(p.numel() for p in model.parameters()):,} parameters): " + "; ".join(problems)
                         + ". Is the teacher's model the architecture these weights were trained as?")
    return {k: mapped[k].to(expected[k].dtype) for k in expected}


def build_pretrained_model(model_name: str, pretrained: dict[str, Any], weights: Path | None, num_classes: int,
                           in_chans: int) -> nn.Module:
    """The teacher architecture with its verified weights loaded (strict)."""
    tag = pretrained.get("timm")
    if tag:
        import timm
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(tag)
        if cfg is None:
            raise ValueError(f"timm has no pretrained tag {tag!r} (timm.list_pretrained('{tag.split('.')[0]}*'))")
        kwargs: dict[str, Any] = {"pretrained": True, "num_classes": num_classes, "in_chans": in_chans}
        if weights is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(weights), "num_classes": num_classes}
        elif cfg.num_classes != num_classes:
            raise ValueError(f"timm tag {tag!r} has {cfg.num_classes} classes but the dataset {num_classes}: timm "
                             "would replace the classifier with a random one; give a matching weight file")
        try:
            return timm.create_model(tag, **kwargs)
        except RuntimeError as err:
            raise ValueError(f"{weights or tag} does not fit model {model_name!r} ({tag}, {num_classes} classes): "
                             f"{err}") from None
    if weights is None:
        raise ValueError("no weight file and no timm tag")
    model = create_model(model_name, num_classes, in_chans)
    state = load_state_dict(weights, pretrained.get("format", "safetensors"))
    model.load_state_dict(map_state_dict(state, model, model_name, source=str(weights)), strict=True)
    return model


def import_pretrained(spec: RunSpec, pretrained: dict[str, Any], out_dir: str | Path, *,
                      lock: str | Path | None = None, strict: bool = False) -> dict[str, Any]:
    """Create a teacher run folder from published weights (see the module docstring). ``lock`` is the track's lock
    file of teacher digests and ``strict`` refuses digests that are not pinned (:func:`lskd.teachers.fetch_verified`);
    nothing is written to ``out_dir`` before the weights are verified and pass ``min_top1``."""
    out_dir = Path(out_dir)
    spec.validate()
    if is_finished(spec, out_dir):
        from lskd.engine.io import read_json

        return read_json(out_dir / "metrics.json")
    device = resolve_device(spec.device)
    start = time.perf_counter()
    resolved = resolve_checksums(pretrained, strict=strict)
    fetched = fetch_verified(pretrained, lock=lock, strict=strict)
    weights = fetched.path
    resolved.update({k: v for k, v in (("sha256", fetched.sha256), ("archive_sha256", fetched.archive_sha256)) if v})
    test_set = build_dataset(spec.data.name, "test", root=spec.data.root, views=("eval",),
                             subset=spec.data.test_subset, seed=spec.data.subset_seed, download=spec.data.download)
    info = test_set.spec
    model = build_pretrained_model(spec.model, resolved, weights, info.num_classes, info.in_chans)
    model.to(device).eval()
    if spec.channels_last:
        model.to(memory_format=torch.channels_last)
    logits, targets = predict(model, test_set, batch_size=spec.optim.eval_batch_size, device=device,
                              amp=spec.amp, channels_last=spec.channels_last)
    metrics = classification_metrics(logits, targets)
    min_top1 = pretrained.get("min_top1")
    if min_top1 is not None and metrics["top1"] < float(min_top1):
        raise TeacherRefusedError(
            f"teacher {spec.model} from {weights or resolved.get('timm')}: test top-1 {metrics['top1']:.2f}% is below "
            f"min_top1 {float(min_top1):g}% on {len(targets)} test images; refusing it (wrong weights or wrong "
            "architecture/normalisation?)")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_spec_record(spec, out_dir, model, info.num_classes, info.in_chans, device, ("eval",))
    write_json(out_dir / "pretrained.json", {
        **{k: resolved[k] for k in ("url", "file", "member", "timm", "format", "sha256", "archive_sha256", "min_top1")
           if resolved.get(k) is not None},
        "weights": str(weights) if weights is not None else None, "verified": fetched.verified,
        "lock": str(lock) if lock is not None else None,
        "cache_dir": str(cache_dir()), "test_top1": metrics["top1"], "num_test": int(targets.numel()),
    })
    row = {"epoch": 0, "lr": 0.0, **{f"test_{k}": v for k, v in metrics.items()},
           "seconds": time.perf_counter() - start}
    return write_final_outputs(out_dir, [row], model, logits, targets)
