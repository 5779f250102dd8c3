"""Training engine: specs, deterministic lockstep training, checkpoints, evaluation and metrics."""

from lskd.engine.evaluate import create_model, load_run_model, predict
from lskd.engine.metrics import classification_metrics, expected_calibration_error, topk_accuracy
from lskd.engine.schedule import lr_at
from lskd.engine.spec import DataSpec, OptimSpec, RunSpec
from lskd.engine.trainer import DivergenceError, is_finished, resolve_device, train, train_one

__all__ = [
    "DataSpec", "DivergenceError", "OptimSpec", "RunSpec", "classification_metrics", "create_model",
    "expected_calibration_error", "is_finished", "load_run_model", "lr_at", "predict", "resolve_device",
    "topk_accuracy", "train", "train_one",
]
