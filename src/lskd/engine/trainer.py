"""The training loop: one or several students trained in lockstep against one frozen teacher.

Students that share (data, teacher, seed, batch size, epochs) can be trained together: each batch is loaded
once and the teacher runs once per batch and view, then every student takes its own SGD step. Every random
stream is derived from ``(seed, epoch, purpose)`` (see :mod:`lskd.engine.determinism`), so a student trained in a
group sees exactly the batches, augmentations and initial weights it sees when trained alone, and a run resumed
from its last checkpoint continues exactly as if it had never stopped: from the end of an epoch, or, after a
SIGTERM (:mod:`lskd.engine.preempt`), from the optimiser step where it stopped.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, RandomSampler, Subset
from tqdm import tqdm

from lskd.data import build_dataset
from lskd.data.device import DeviceBatches, resolve_data_path
from lskd.engine import distributed as ddp
from lskd.engine.checkpoint import load_checkpoint, remove_checkpoint, save_checkpoint
from lskd.engine.determinism import RngStream, derive_seed, generator, seed_everything
from lskd.engine.evaluate import create_model, load_run_model, predict
from lskd.engine.io import read_json, write_json, write_tensors, write_text
from lskd.engine.metrics import classification_metrics
from lskd.engine.preempt import Preempted, StopRequest
from lskd.engine.provenance import provenance
from lskd.engine.schedule import lr_at
from lskd.engine.spec import DataSpec, RunSpec
from lskd.layout import DIVERGENCE, HISTORY, METRICS, MODEL, TIMING, logits_file
from lskd.losses import DistillationMethod, build_method

SHARED_KEYS = ("data", "teacher_dir", "seed", "device", "amp", "channels_last", "compile", "threads", "data_path")


class DivergenceError(RuntimeError):
    """A loss or logits became NaN/Inf; the message names the cell, epoch and step."""


class DeviceUnavailableError(RuntimeError):
    """A CUDA device was requested on a machine where torch sees none."""


class TeacherMismatchError(ValueError):
    """The teacher run folder does not fit the student's data (classes, channels, dataset) or its own spec."""


class OutputNotWritableError(OSError):
    """A run folder cannot be created or written; raised before any data is loaded."""


@dataclass
class Student:
    """One run inside a (possibly single-member) group."""

    spec: RunSpec
    out_dir: Path
    model: nn.Module
    method: DistillationMethod
    optimizer: torch.optim.Optimizer
    start_epoch: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)
    sums: dict[str, Tensor] = field(default_factory=dict)
    correct: Tensor | None = None
    seen: int = 0
    diverged: bool = False
    resume: dict[str, Any] | None = None  # a mid-epoch checkpoint's state: where in epoch start_epoch to go on
    net: nn.Module | None = None  # what the training step calls: the DDP-wrapped model under torchrun
    ctx: ddp.Context = ddp.SINGLE

    @property
    def name(self) -> str:
        return self.spec.cell or str(self.out_dir)


def resolve_device(requested: str) -> torch.device:
    """``cpu``, ``cuda[:N]`` or ``auto``; asking for CUDA on a machine without it fails with a clear message."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and torch.cuda.is_available() and requested[5:].isdigit() \
            and int(requested[5:]) >= torch.cuda.device_count():
        raise DeviceUnavailableError(f"device {requested!r} requested but torch sees {torch.cuda.device_count()} GPU(s) "
                                     "here (cuda:0 ...); check CUDA_VISIBLE_DEVICES or use device: cuda")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device {requested!r} requested but no CUDA GPU is visible to torch here (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda or 'none'}); use device: auto (falls back to the CPU) or cpu, or run "
            "the job on a GPU node")
    return torch.device(requested)


def is_finished(spec: RunSpec, out_dir: Path) -> bool:
    """A run is finished when its metrics exist and its spec fingerprint matches."""
    metrics, spec_file = out_dir / "metrics.json", out_dir / "spec.json"
    return metrics.exists() and spec_file.exists() and read_json(spec_file).get("fingerprint") == spec.fingerprint()


def _check_group(specs: list[RunSpec]) -> None:
    first = specs[0]
    for spec in specs[1:]:
        for key in SHARED_KEYS:
            if getattr(spec, key) != getattr(first, key):
                raise ValueError(f"runs trained together must share {key!r}: {spec.cell!r} differs from {first.cell!r}")
        if (spec.optim.batch_size, spec.optim.epochs) != (first.optim.batch_size, first.optim.epochs):
            raise ValueError(f"runs trained together must share batch_size and epochs: {spec.cell!r} differs")


def _views(methods: list[DistillationMethod]) -> tuple[str, ...]:
    views: list[str] = []
    for m in methods:
        views += [v for v in m.views if v not in views]
    return tuple(views)


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` and a probe file in it, so a read-only or full output folder fails before any compute."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as err:
        raise OutputNotWritableError(
            f"output folder {out_dir} is not writable ({err.strerror or err}); choose another output folder "
            "(--out, or results: in the config) or fix its permissions") from None


def _load_teacher(spec: RunSpec, device: torch.device, num_classes: int, in_chans: int) -> nn.Module | None:
    """The frozen teacher of ``spec``; a teacher that does not fit the student's data is refused before training."""
    if not spec.teacher_dir:
        return None
    try:
        teacher, record = load_run_model(spec.teacher_dir, device)
    except RuntimeError as err:  # load_state_dict: weights of another architecture or class count
        first = str(err).strip().splitlines()
        raise TeacherMismatchError(f"teacher {spec.teacher_dir}: model.safetensors does not fit the architecture its spec.json "
                         f"names: {' '.join(first[:3])}") from None
    if record["spec"]["data"]["name"] != spec.data.name:
        raise TeacherMismatchError(f"teacher {spec.teacher_dir} was trained on {record['spec']['data']['name']!r}, not {spec.data.name!r}")
    resolved = record["resolved"]
    if (resolved["num_classes"], resolved["in_chans"]) != (num_classes, in_chans):
        raise TeacherMismatchError(f"teacher {spec.teacher_dir} predicts {resolved['num_classes']} classes from "
                         f"{resolved['in_chans']}-channel images, but the student's data has {num_classes} classes and "
                         f"{in_chans} channels; use a teacher trained on the same data")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _build_student(spec: RunSpec, out_dir: Path, num_classes: int, in_chans: int, device: torch.device) -> Student:
    torch.manual_seed(derive_seed(spec.seed, "init"))
    model = create_model(spec.model, num_classes, in_chans).to(device)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if spec.compile:
        model.compile()  # in place: parameter names (and checkpoints) stay those of the plain module
    method = build_method(spec.method, **spec.hparams).to(device)
    o = spec.optim
    optimizer = torch.optim.SGD(
        [*model.parameters(), *method.parameters()],
        lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov,
    )
    done, history, partial = load_checkpoint(out_dir, model, method, optimizer, spec.fingerprint(), label=spec.cell)
    if partial:
        print(f"[{spec.cell or out_dir}] resuming in epoch {done + 1} after step {partial['step']}", file=sys.stderr)
    elif done:
        print(f"[{spec.cell or out_dir}] resuming after epoch {done}", file=sys.stderr)
    return Student(spec, out_dir, model, method, optimizer, start_epoch=done + 1, history=history, resume=partial)


def _distribute(student: Student, ctx: ddp.Context, device: torch.device) -> None:
    """Under torchrun: SyncBatchNorm if asked, then DDP around the student (its parameters stay the optimizer's)."""
    if not ctx.enabled:
        return
    if student.spec.sync_batchnorm:
        student.model = nn.SyncBatchNorm.convert_sync_batchnorm(student.model)
    student.net = ddp.wrap_student(student.model, ctx, device)
    student.ctx = ctx


def write_spec_record(spec: RunSpec, out_dir: Path, model: nn.Module, num_classes: int, in_chans: int,
                      device: torch.device, views: tuple[str, ...], ctx: ddp.Context = ddp.SINGLE,
                      data_path: str = "dataloader") -> None:
    """Write ``spec.json``: the spec, its fingerprint, resolved settings (the process layout and the data path
    among them), versions, git commit and hardware."""
    from lskd.losses import method_hparams

    if not ctx.is_main:
        return
    batch = spec.optim.batch_size
    parallel = {
        "processes": ctx.world,
        "backend": ("nccl" if device.type == "cuda" else "gloo") if ctx.enabled else None,
        "global_batch_size": batch,
        "per_process_batch_size": -(-batch // ctx.world),
        "batchnorm": "sync (global batch)" if ctx.enabled and spec.sync_batchnorm else
                     ("local (each process's share)" if ctx.enabled else "the batch"),
        "lr_rule": "none: optim.lr is used as configured, for the global batch",
    }

    resolved = {**method_hparams(spec.method), **spec.hparams}
    write_json(out_dir / "spec.json", {
        "spec": spec.to_dict(),
        "fingerprint": spec.fingerprint(),
        "resolved": {
            "num_classes": num_classes, "in_chans": in_chans, "device": str(device), "views": list(views),
            "data_path": data_path,
            "hparams": {k: list(v) if isinstance(v, tuple) else v for k, v in resolved.items()},
            "num_params": sum(p.numel() for p in model.parameters()),
            "parallel": parallel,
        },
        **provenance(),
    })


def _forward(model: nn.Module, x: Tensor, amp: str, device: torch.device) -> Tensor:
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
        return model(x)


def _step(student: Student, inputs: dict[str, Tensor], teacher_logits: dict[str, Tensor], y: Tensor,
          epoch: int, step: int, check: bool, global_batch: int | None = None) -> None:
    spec, method = student.spec, student.method
    device = y.device
    net = student.net or student.model
    s_logits = tuple(_forward(net, inputs[v], spec.amp, device) for v in method.views)
    t_logits = tuple(teacher_logits[v] for v in method.views) if method.needs_teacher else None
    single = len(method.views) == 1
    terms = method(s_logits[0] if single else s_logits, (t_logits[0] if single else t_logits) if t_logits else None, y, epoch)
    loss = sum(terms.values())
    if check and student.ctx.any(not bool(torch.isfinite(loss)), device):  # every rank stops at the same step
        values = {k: float(v.detach()) for k, v in terms.items()}
        write_json(student.out_dir / DIVERGENCE, {"epoch": epoch, "step": step, "terms": {k: str(v) for k, v in values.items()}})
        raise DivergenceError(f"[{student.name}] non-finite loss at epoch {epoch}, step {step}: {values}; "
                              f"diagnostics in {student.out_dir / DIVERGENCE}")
    student.optimizer.zero_grad(set_to_none=True)
    if student.ctx.enabled:  # DDP averages the ranks' gradients: scaled, that is the global batch mean's gradient
        loss = loss * ddp.loss_scale(y.shape[0], global_batch or y.shape[0], student.ctx)
    loss.backward()
    student.optimizer.step()
    for k, v in terms.items():
        student.sums[k] = student.sums.get(k, 0) + v.detach() * y.shape[0]
    hits = (s_logits[0].detach().argmax(-1) == y).sum()
    student.correct = hits if student.correct is None else student.correct + hits
    student.seen += y.shape[0]


def _end_epoch(student: Student, epoch: int, lr: float, seconds: float, eval_set: Any, device: torch.device) -> None:
    spec, ctx = student.spec, student.ctx
    split = spec.data.eval_split
    logits, targets = _predict_all(student, eval_set, device)
    if not torch.isfinite(logits).all():
        bad = int((~torch.isfinite(logits)).any(-1).sum())
        if ctx.is_main:
            write_json(student.out_dir / DIVERGENCE, {"epoch": epoch, "step": None, f"nonfinite_{split}_samples": bad})
        raise DivergenceError(f"[{student.name}] non-finite {split} logits after epoch {epoch} ({bad} {split} samples); "
                              f"diagnostics in {student.out_dir / DIVERGENCE}")
    test = classification_metrics(logits, targets)
    row = {"epoch": epoch, "lr": lr}
    seen = int(ctx.all_sum(torch.tensor(student.seen, device=device)).item())  # every rank's share of the epoch
    row.update({f"loss_{k}": float(ctx.all_sum(v)) / seen for k, v in sorted(student.sums.items())})
    row["train_top1"] = 100.0 * float(ctx.all_sum(student.correct)) / seen
    row.update({f"{split}_{k}": v for k, v in test.items()})
    row.update(student.method.log_values())
    row["seconds"] = seconds
    student.history.append(row)
    student.sums, student.correct, student.seen = {}, None, 0
    ctx.barrier()  # every rank has finished the epoch; rank 0 writes for all of them
    if ctx.is_main:
        write_text(student.out_dir / HISTORY, pd.DataFrame(student.history).to_csv(index=False))
        save_checkpoint(student.out_dir, student.model, student.method, student.optimizer, epoch, student.history,
                        spec.fingerprint())
    ctx.barrier()
    if ctx.is_main:
            print(f"[{student.name}] epoch {epoch}/{spec.optim.epochs} lr {lr:.4g} "
              + " ".join(f"{k[5:]} {v:.4f}" for k, v in row.items() if k.startswith("loss_"))
              + f" train {row['train_top1']:.2f}% {split} {test['top1']:.2f}% ({seconds:.1f}s)", file=sys.stderr)
    if epoch == spec.optim.epochs:
        _finish(student, logits, targets, device)


def _predict_all(student: Student, dataset: Any, device: torch.device) -> tuple[Tensor, Tensor]:
    """The student's logits over the whole ``dataset`` (a dataset, or its :class:`DeviceBatches`): under torchrun
    each rank predicts its share, and the shares are gathered back in order on every rank."""
    spec, ctx = student.spec, student.ctx
    ddp.sync_buffers(student.model, ctx)
    size = spec.optim.eval_batch_size
    mine = range(ctx.rank, len(dataset), ctx.world)
    if isinstance(dataset, DeviceBatches):
        share, loader = None, dataset.loader(mine[k:k + size] for k in range(0, len(mine), size))
    else:
        share, loader = (Subset(dataset, mine) if ctx.enabled else dataset), None
    logits, targets = predict(student.model, share, batch_size=size, device=device, amp=spec.amp,
                              channels_last=spec.channels_last, loader=loader)
    if not ctx.enabled:
        return logits, targets
    gathered = ddp.gather_in_order(logits.to(device), targets.to(device), len(dataset), ctx)
    return gathered[0].cpu(), gathered[1].cpu()


def _finish(student: Student, logits: Tensor, targets: Tensor, device: torch.device) -> None:
    spec = student.spec
    extra = {}
    if spec.data.holdout and spec.data.eval_split == "test" and spec.method == "ce":
        # teachers and CE baselines also keep their validation logits, so stage-1 students (evaluated there) are
        # compared with their teacher on the same images
        extra["val"] = _predict_all(student, build_eval_set(spec.data, "val"), device)
    if student.ctx.is_main:
        write_final_outputs(student.out_dir, student.history, student.model, logits, targets,
                            split=spec.data.eval_split, extra_logits=extra)
        remove_checkpoint(student.out_dir)
    student.ctx.barrier()


def write_final_outputs(out_dir: Path, history: list[dict[str, Any]], model: nn.Module, logits: Tensor,
                        targets: Tensor, *, split: str = "test",
                        extra_logits: dict[str, tuple[Tensor, Tensor]] | None = None) -> dict[str, Any]:
    """Write weights, the ``split``'s logits (and any ``extra_logits`` of other splits), timing and
    ``metrics.json`` (last- and best-epoch metrics on ``split``, which it names); the metrics file comes last,
    so its presence marks a finished run."""
    hist = pd.DataFrame(history)
    best = hist.loc[hist[f"{split}_top1"].idxmax()]
    last = hist.iloc[-1]
    keys = ("top1", "top5", "nll", "ece")
    metrics = {
        "status": "ok",
        "split": split,
        "last": {"epoch": int(last["epoch"]), **{k: float(last[f"{split}_{k}"]) for k in keys}},
        "best": {"epoch": int(best["epoch"]), **{k: float(best[f"{split}_{k}"]) for k in keys}},
        "num_eval": int(targets.numel()),
        "num_classes": int(logits.shape[-1]),
        **({"num_test": int(targets.numel())} if split == "test" else {}),
    }
    write_text(out_dir / HISTORY, hist.to_csv(index=False))
    write_tensors(out_dir / MODEL, model.state_dict())
    for name, (lg, tg) in {split: (logits, targets), **(extra_logits or {})}.items():
        write_tensors(out_dir / logits_file(name), {"logits": lg, "targets": tg})
    write_json(out_dir / TIMING, {"wall_seconds": float(hist["seconds"].sum()), "epochs": len(hist)})
    write_json(out_dir / METRICS, metrics)
    return metrics


def write_diverged(student: Student, error: DivergenceError) -> None:
    """Record a diverged run as finished: ``metrics.json`` with status ``diverged``, where and why, and no
    accuracy (the tables keep it as a row with that status; it never enters a selection or a verdict)."""
    out = student.out_dir
    if not student.ctx.is_main:
        return
    info = read_json(out / DIVERGENCE) if (out / DIVERGENCE).exists() else {}
    if student.history:
        write_text(out / HISTORY, pd.DataFrame(student.history).to_csv(index=False))
    seconds = float(sum(r["seconds"] for r in student.history))
    write_json(out / TIMING, {"wall_seconds": seconds, "epochs": len(student.history)})
    write_json(out / METRICS, {"status": "diverged", "split": student.spec.data.eval_split, "last": None,
                               "best": None, "diverged": {**info, "message": str(error)}})
    remove_checkpoint(out)


def build_eval_set(d: DataSpec, split: str | None = None) -> Any:
    """The evaluation images of a run: the test set (``test_subset``) or the held-out validation split."""
    split = split or d.eval_split
    subset = d.test_subset if split == "test" else None
    return build_dataset(d.name, split, root=d.root, views=("eval",), subset=subset, seed=d.subset_seed,
                         download=d.download, holdout=d.holdout, holdout_seed=d.holdout_seed)


def train(specs: list[RunSpec], out_dirs: list[str | Path], *, progress: bool = True,
          record_divergence: bool = False) -> list[dict[str, Any]]:
    """Train one or several runs in lockstep; returns each run's ``metrics.json`` content.

    Finished runs (same spec fingerprint) are skipped; interrupted runs resume from their last epoch checkpoint.
    A run whose loss or logits become non-finite raises :class:`DivergenceError`, or with ``record_divergence``
    is finished as ``diverged`` (:func:`write_diverged`) while the rest of its group trains on (the workflow's
    mode: a diverged cell is a result, not a failed job).
    """
    if not specs or len(specs) != len(out_dirs):
        raise ValueError("train() needs one output folder per spec")
    for spec in specs:
        spec.validate()
    _check_group(specs)
    out_paths = [Path(d) for d in out_dirs]
    todo = [(s, d) for s, d in zip(specs, out_paths) if not is_finished(s, d)]
    for _, d in todo:
        check_writable(d)
    if todo:
        with StopRequest() as stop:
            _train_group([s for s, _ in todo], [d for _, d in todo], progress, record_divergence, stop)
    return [read_json(d / METRICS) for d in out_paths]


def _train_group(specs: list[RunSpec], out_dirs: list[Path], progress: bool, record_divergence: bool = False,
                 stop: StopRequest | None = None) -> None:
    first = specs[0]
    if first.threads:
        torch.set_num_threads(first.threads)
    device = resolve_device(first.device)
    ctx = ddp.context(device.type)
    if ctx.enabled and device.type == "cuda":  # one GPU per process
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    seed_everything(first.seed)
    methods = [build_method(s.method, **s.hparams) for s in specs]  # validates before any data is loaded
    views = _views(methods)
    d = first.data
    train_set = build_dataset(d.name, "train", root=d.root, views=views, subset=d.train_subset, seed=d.subset_seed,
                              download=d.download, holdout=d.holdout, holdout_seed=d.holdout_seed)
    eval_set: Any = build_eval_set(d)
    data_path = resolve_data_path(first.data_path, train_set, device)
    on_device = DeviceBatches(train_set, device) if data_path == "device" else None
    if on_device is not None:
        eval_set = DeviceBatches(eval_set, device)
    info = train_set.spec  # for ImageNet stand-ins the classes come from the folder
    teacher = _load_teacher(first, device, info.num_classes, info.in_chans)
    students = []
    for spec, out in zip(specs, out_dirs):
        out.mkdir(parents=True, exist_ok=True)
        students.append(_build_student(spec, out, info.num_classes, info.in_chans, device))
        _distribute(students[-1], ctx, device)
        write_spec_record(spec, out, students[-1].model, info.num_classes, info.in_chans, device, views, ctx,
                          data_path)
    for s in students:
        if s.start_epoch > s.spec.optim.epochs:  # killed after its last checkpoint, before its final outputs
            _finish(s, *_predict_all(s, eval_set, device), device)
    check_every = 1 if device.type == "cpu" else 50
    for epoch in range(min(s.start_epoch for s in students), first.optim.epochs + 1):
        active = [s for s in students if s.start_epoch <= epoch and not s.diverged]
        if not active:
            break
        lrs = {id(s): lr_at(epoch, s.spec.optim) for s in active}
        for s in active:
            for group in s.optimizer.param_groups:
                group["lr"] = lrs[id(s)]
            s.model.train()
        batch_size = first.optim.batch_size
        order = list(RandomSampler(train_set, generator=generator(derive_seed(first.seed, "order", epoch))))
        steps = math.ceil(len(order) / batch_size)
        _check_split(len(order), batch_size, ctx)
        # one stream per student, derived as in a solo run, so group members never shift each other's draws
        student_rngs = {id(s): RngStream(derive_seed(first.seed, "student", epoch)) for s in active}
        skip = {id(s): _restore_partial(s, epoch, student_rngs[id(s)]) for s in active}
        first_step = min(skip.values())  # a preempted group goes on from the step where it stopped
        # the one-process run's global batches, each split over the ranks (all of it in a one-process run)
        batches_of = [order[k * batch_size:(k + 1) * batch_size] for k in range(first_step, steps)]
        rank_batches = [ddp.rank_slice(b, ctx) for b in batches_of]
        augment_seed = derive_seed(first.seed, "augment", epoch)
        if on_device is not None:  # the same images as the DataLoader's, built in batches on the device
            loader: Any = on_device.loader(rank_batches, augment_seed)
        else:
            loader = DataLoader(train_set, batch_sampler=rank_batches, num_workers=d.num_workers,
                                generator=generator(derive_seed(first.seed, "workers", epoch)))
            train_set.seed_augmentation(augment_seed)
        resumed = [s.resume for s in active if skip[id(s)] and s.resume]
        start = time.perf_counter() - (float(resumed[0]["seconds"]) if resumed else 0.0)
        for s in active:
            if skip[id(s)]:
                s.resume = None
        batches = iter(loader)
        bar = tqdm(total=steps, initial=first_step, desc=f"epoch {epoch}", disable=not progress, leave=False,
                   file=sys.stderr, mininterval=1.0 if sys.stderr.isatty() else 30.0)
        for step in range(first_step, steps):
            x, y, _ = next(batches)
            inputs = dict(zip(views, x if isinstance(x, (tuple, list)) else (x,)))
            inputs = {v: _to(t, device, first.channels_last) for v, t in inputs.items()}
            y = y.to(device)
            teacher_logits = {}
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = {v: _forward(teacher, t, first.amp, device).float() for v, t in inputs.items()}
            for s in active:
                if s.diverged or step < skip[id(s)]:
                    continue
                try:
                    with student_rngs[id(s)]:
                        _step(s, inputs, teacher_logits, y, epoch, step, check=(step % check_every == 0),
                              global_batch=len(batches_of[step - first_step]))
                except DivergenceError as err:
                    _on_divergence(s, err, record_divergence)
            bar.update()
            if stop is not None and ctx.any(stop.requested, device):  # every rank stops after the same step
                bar.close()
                _preempt([s for s in active if not s.diverged and step >= skip[id(s)]], epoch, step + 1, steps,
                         student_rngs, time.perf_counter() - start)
        bar.close()
        if device.type == "cuda":  # kernels run asynchronously: the epoch's time includes its last ones
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        for s in [s for s in active if not s.diverged]:
            try:
                _end_epoch(s, epoch, lrs[id(s)], seconds / len(active), eval_set, device)
            except DivergenceError as err:
                _on_divergence(s, err, record_divergence)


def _restore_partial(student: Student, epoch: int, rng: RngStream) -> int:
    """Steps of ``epoch`` the student already took before a preemption (0 unless it resumes mid-epoch), with its
    random stream and running sums put back as they were after that step."""
    partial = student.resume
    if not partial or student.start_epoch != epoch:
        return 0
    device = next(student.model.parameters()).device  # the checkpoint was read to the CPU
    rng.state = partial["rng"]
    student.sums = {k: v.to(device) for k, v in partial["sums"].items()}
    student.correct, student.seen = partial["correct"].to(device), int(partial["seen"])
    return int(partial["step"])


def _check_split(n: int, batch_size: int, ctx: ddp.Context) -> None:
    """Every rank needs two images of every global batch (BatchNorm cannot train on one); the last batch is the
    short one."""
    tail = n % batch_size
    if ctx.enabled and 0 < tail < 2 * ctx.world:
        raise ValueError(f"the last batch of each epoch has {tail} image(s) ({n} images in batches of {batch_size}), "
                         f"fewer than 2 for each of the {ctx.world} processes: change "
                         "execution.processes_per_job, the batch size or the training subset")


def _preempt(students: list[Student], epoch: int, step: int, steps: int, rngs: dict[int, RngStream],
             seconds: float) -> None:
    """Write each student's checkpoint ``step`` steps into ``epoch``, then stop the job (:class:`Preempted`)."""
    ctx = students[0].ctx if students else ddp.SINGLE
    for s in students if ctx.is_main else []:
        partial = {"step": step, "rng": rngs[id(s)].state, "sums": s.sums, "correct": s.correct, "seen": s.seen,
                   "seconds": seconds}
        save_checkpoint(s.out_dir, s.model, s.method, s.optimizer, epoch - 1, s.history, s.spec.fingerprint(),
                        partial=partial)
    ctx.barrier()  # rank 0's checkpoints are on disk before any process exits
    names = ", ".join(s.name for s in students)
    print(f"preempted in epoch {epoch} after step {step}/{steps}: checkpoints written for {names}; "
          "rerun the same command to resume there", file=sys.stderr, flush=True)
    raise Preempted(f"preempted in epoch {epoch} after step {step}/{steps}")


def _on_divergence(student: Student, err: DivergenceError, record: bool) -> None:
    if not record:
        raise err
    print(f"{err}; recorded as diverged", file=sys.stderr)
    write_diverged(student, err)
    student.diverged = True


def _to(x: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def train_one(spec: RunSpec, out_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Train a single run (see :func:`train`)."""
    return train([spec], [out_dir], progress=progress)[0]
