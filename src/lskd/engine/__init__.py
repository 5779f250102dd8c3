"""Training engine: specs, deterministic lockstep training, checkpoints, evaluation and metrics.

Names are imported lazily (PEP 562), so light modules such as :mod:`lskd.engine.io` can be used without
importing timm and torchvision (the analysis commands and the workflow stay quick to start).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataSpec": "spec", "OptimSpec": "spec", "RunSpec": "spec",
    "create_model": "evaluate", "load_run_model": "evaluate", "predict": "evaluate",
    "classification_metrics": "metrics", "expected_calibration_error": "metrics", "topk_accuracy": "metrics",
    "lr_at": "schedule",
    "DivergenceError": "trainer", "is_finished": "trainer", "resolve_device": "trainer", "train": "trainer",
    "train_one": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lskd.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lskd.engine.{_EXPORTS[name]}"), name)
