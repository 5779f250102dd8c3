"""Run specifications: everything a training run depends on, validated before any compute starts.

A run is a pure function of its :class:`RunSpec` (plus the machine type): the same spec gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

SCHEDULES = ("multistep", "cosine")
AMP_MODES = ("none", "bf16")
DEVICES = ("cpu", "cuda", "auto")


@dataclass
class DataSpec:
    """Which data a run uses. ``train_subset``/``test_subset``: class-balanced subsets for quick runs, drawn with
    ``subset_seed`` (not the run's seed), so every run of an experiment sees the same images and every model is
    evaluated on the same test samples.

    ``holdout``: size of a class-balanced validation split held out of the training set with its own
    ``holdout_seed`` (never trained on; ``train_subset`` is drawn from the rest). ``eval_split``: where the run is
    evaluated after every epoch and what ``metrics.json`` reports: ``test`` or ``val`` (the held-out split; the
    test set is then never loaded)."""

    name: str
    root: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    download: bool = False
    num_workers: int = 0
    subset_seed: int = 0
    holdout: int | None = None
    holdout_seed: int = 1
    eval_split: str = "test"

#: Data fields added after runs were first written: left out of the fingerprint at their defaults, so a finished
#: run of an older version still counts as finished.
_NEW_DATA_DEFAULTS = {"holdout": None, "holdout_seed": 1, "eval_split": "test"}


@dataclass
class OptimSpec:
    """SGD with the KD literature's recipe: multi-step decay at epochs ``milestones`` (×``gamma`` after each),
    optional linear warm-up over the first ``warmup_epochs``, or a cosine schedule."""

    epochs: int
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "multistep"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    warmup_epochs: int = 0
    eval_batch_size: int = 1024


@dataclass
class RunSpec:
    """One run: a model trained on ``data`` with ``method`` (``ce`` for teachers and CE baselines).

    ``teacher_dir`` points at a finished teacher run directory (its ``spec.json`` and ``model.safetensors``).
    ``cell`` is a free-form identifier that names the run in messages; ``labels`` is free-form metadata the
    workflow attaches (role, pair, method, transform, temperature, kd_weight, seed) and the tables read back.
    """

    model: str
    data: DataSpec
    optim: OptimSpec
    method: str = "ce"
    hparams: dict[str, Any] = field(default_factory=dict)
    teacher_dir: str | None = None
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    sync_batchnorm: bool = False  # under torchrun (lskd.engine.distributed): BatchNorm over the global batch
    data_path: str = "auto"  # lskd.data.device: where batches are built; the same images either way
    cell: str = ""
    labels: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunSpec:
        """Build and validate a spec from plain data (JSON/YAML), naming any bad key."""
        raw = dict(raw)
        _reject_unknown(cls, raw, "run spec")
        for key, sub in (("data", DataSpec), ("optim", OptimSpec)):
            if key not in raw:
                raise ValueError(f"run spec is missing {key!r}")
            if isinstance(raw[key], dict):
                _reject_unknown(sub, raw[key], key)
                raw[key] = sub(**raw[key])
        spec = cls(**raw)
        spec.validate()
        return spec

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of the spec, to refuse resuming a checkpoint of another spec."""
        raw = self.to_dict()
        for key, default in _NEW_DATA_DEFAULTS.items():
            if raw["data"].get(key) == default:
                raw["data"].pop(key)
        if not raw["sync_batchnorm"]:  # added later: runs without it keep their fingerprints
            raw.pop("sync_batchnorm")
        raw.pop("data_path")  # both data paths give the same images: a run may resume on the other one
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]

    def validate(self) -> None:
        """Check values and names (model, dataset, method and its hyper-parameters) without building anything."""
        import timm

        import lskd.models  # noqa: F401  (registers the CIFAR and small architectures)
        from lskd.data import get_spec
        from lskd.data.device import DATA_PATHS
        from lskd.losses import method_class, method_hparams

        get_spec(self.data.name)
        if self.sync_batchnorm and self.device == "cpu":
            raise ValueError("sync_batchnorm: SyncBatchNorm runs on GPUs only; set execution.device to cuda or "
                             "auto, or drop execution.sync_batchnorm")
        if not timm.is_model(self.model):
            close = [m for m in timm.list_models(f"*{self.model.split('_')[0]}*")][:8]
            raise ValueError(f"unknown model {self.model!r}; similar registered names: {', '.join(close) or 'none'}")
        cls = method_class(self.method)
        unknown = sorted(set(self.hparams) - set(method_hparams(self.method)))
        if unknown:
            raise ValueError(
                f"method {self.method!r} does not take {', '.join(unknown)}; accepted: {', '.join(method_hparams(self.method))}"
            )
        if cls.needs_teacher and not self.teacher_dir:
            raise ValueError(f"method {self.method!r} needs a teacher: set teacher_dir")
        o = self.optim
        checks = [
            (o.epochs >= 1, f"optim.epochs must be >= 1, got {o.epochs}"),
            (o.batch_size >= 1, f"optim.batch_size must be >= 1, got {o.batch_size}"),
            (o.lr > 0, f"optim.lr must be > 0, got {o.lr}"),
            (o.schedule in SCHEDULES, f"optim.schedule must be one of {', '.join(SCHEDULES)}, got {o.schedule!r}"),
            (self.data.eval_split in ("test", "val"),
             f"data.eval_split must be test or val, got {self.data.eval_split!r}"),
            (self.data.eval_split != "val" or bool(self.data.holdout),
             "data.eval_split 'val' needs data.holdout (the size of the validation split held out of training)"),
            (self.data.holdout is None or self.data.holdout >= 1,
             f"data.holdout must be >= 1 or null, got {self.data.holdout}"),
            (self.amp in AMP_MODES, f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}"),
            (self.data_path in DATA_PATHS,
             f"data_path must be one of {', '.join(DATA_PATHS)}, got {self.data_path!r}"),
            (self.device in DEVICES or self.device.startswith("cuda:"),
             f"device must be one of {', '.join(DEVICES)} or cuda:N, got {self.device!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def _reject_unknown(cls: type, raw: dict[str, Any], where: str) -> None:
    import difflib

    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            hint = difflib.get_close_matches(key, names, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(f"unknown key {key!r} in {where}{suggestion}; allowed: {', '.join(names)}")
