"""``lskd bench``: what the engine's speed-ups are worth, measured in one process on one machine.

Four measurements, each on the same data, models and batch size:

(a) **reference loop**: a KD cell written the way the public code bases do it (a torchvision dataset with PIL
    transforms behind a ``DataLoader``, the teacher's forward inside the cell's loop);
(b) **lskd engine**: the same cell through :func:`lskd.engine.train_one` (in-memory uint8 data, tensor transforms);
(c) **8 cells ungrouped vs grouped**: eight KD cells (4 temperatures × raw/z-score) trained one after another,
    then as one lockstep group that loads each batch and runs the teacher once for all eight;
(d) **z-score overhead**: the time of one KD training step (student forward, loss, backward, SGD step) with and
    without ``transform="zscore"``;
(e) **data path**: one epoch of augmented training batches through the ``DataLoader`` (per-image transforms) and
    through the on-device path (:mod:`lskd.data.device`: uint8 images gathered, cropped, flipped and normalised a
    batch at a time; on the CPU here, the code a GPU runs), the same images either way; then the grouped cells of
    (c) again with ``data_path="device"``.

It also times the parts of one step (data, teacher forward, student step), whose split bounds what grouping can
save: with ``d``, ``t`` and ``s`` the per-batch data, teacher and student costs, a group of ``n`` cells costs at
least ``(d + t)/n + s`` per cell-batch against ``d + t + s`` alone.
"""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from lskd.engine.evaluate import create_model, load_run_model
from lskd.engine.spec import DataSpec, OptimSpec, RunSpec
from lskd.engine.trainer import train, train_one
from lskd.losses import kd_loss


@dataclass
class BenchConfig:
    dataset: str = "fashion_mnist"
    teacher: str = "cnn_w24d4"
    student: str = "cnn_w8d3"
    train_subset: int = 10_000
    batch_size: int = 128
    threads: int = 1
    step_repeats: int = 200


def _spec(cfg: BenchConfig, teacher_dir: Path | None, cell: str, data_path: str = "dataloader",
          **hparams: Any) -> RunSpec:
    return RunSpec(
        model=cfg.student if teacher_dir else cfg.teacher,
        data=DataSpec(name=cfg.dataset, train_subset=cfg.train_subset, test_subset=1000),
        optim=OptimSpec(epochs=1, batch_size=cfg.batch_size, lr=0.05, schedule="cosine", eval_batch_size=1024),
        method="kd" if teacher_dir else "ce", hparams=hparams, teacher_dir=str(teacher_dir) if teacher_dir else None,
        threads=cfg.threads, cell=cell, data_path=data_path,
    )


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def reference_loop(cfg: BenchConfig, teacher_dir: Path, workdir: Path) -> float:
    """Seconds for one epoch of a KD cell in the public code bases' style (torchvision + PIL + DataLoader)."""
    import torchvision
    from torchvision import transforms as T

    from lskd.data import get_spec, resolve_root

    if cfg.dataset != "fashion_mnist":
        raise ValueError("the reference loop is implemented for fashion_mnist")
    raw = workdir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for gz in Path(resolve_root("fashion_mnist")).glob("*-ubyte.gz"):
        with gzip.open(gz) as src, open(raw / gz.name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
    info = get_spec("fashion_mnist")
    transform = T.Compose([T.RandomCrop(28, padding=2), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(info.mean, info.std)])
    data = torchvision.datasets.FashionMNIST(str(workdir), train=True, transform=transform, download=False)
    subset = torch.utils.data.Subset(data, range(cfg.train_subset))
    loader = torch.utils.data.DataLoader(subset, batch_size=cfg.batch_size, shuffle=True, num_workers=0)
    teacher, _ = load_run_model(teacher_dir)
    torch.manual_seed(0)
    student = create_model(cfg.student, info.num_classes, info.in_chans)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def epoch() -> None:
        student.train()
        for x, y in loader:
            with torch.no_grad():
                t = teacher(x)
            s = student(x)
            loss = 0.1 * F.cross_entropy(s, y) + 0.9 * kd_loss(s, t, 4.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return _timed(epoch)


def step_split(cfg: BenchConfig, teacher_dir: Path) -> dict[str, float]:
    """Median milliseconds per batch of data loading, teacher forward and one student step (KD, raw/z-score)."""
    from lskd.data import build_dataset
    from lskd.losses import build_method

    data = build_dataset(cfg.dataset, "train", views=("train",), subset=cfg.train_subset)
    data.seed_augmentation(0)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    teacher, _ = load_run_model(teacher_dir)
    info = data.spec
    student = create_model(cfg.student, info.num_classes, info.in_chans)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
    methods = {t: build_method("kd", temperature=4.0, transform=t) for t in ("none", "zscore")}
    it = iter(loader)
    data_ms = []
    for _ in range(min(20, len(loader) - 1)):
        start = time.perf_counter()
        x, y, _ = next(it)
        data_ms.append(1e3 * (time.perf_counter() - start))
    teacher_ms, steps = [], {"none": [], "zscore": []}
    with torch.no_grad():
        t_logits = teacher(x)
    for i in range(cfg.step_repeats):
        start = time.perf_counter()
        with torch.no_grad():
            teacher(x)
        teacher_ms.append(1e3 * (time.perf_counter() - start))
        for transform in (("none", "zscore") if i % 2 == 0 else ("zscore", "none")):  # interleaved
            start = time.perf_counter()
            terms = methods[transform](student(x), t_logits, y)
            optimizer.zero_grad()
            sum(terms.values()).backward()
            optimizer.step()
            steps[transform].append(1e3 * (time.perf_counter() - start))
    return {
        "data_ms": statistics.median(data_ms), "teacher_ms": statistics.median(teacher_ms),
        "student_step_ms": statistics.median(steps["none"]), "student_step_zscore_ms": statistics.median(steps["zscore"]),
    }


def data_paths(cfg: BenchConfig, repeats: int = 3) -> dict[str, float]:
    """Median milliseconds per training batch (``train`` view, seeded per item as in training) over one epoch, through
    the DataLoader and through the on-device path on the CPU; the runs alternate."""
    from lskd.data import build_dataset
    from lskd.data.device import DeviceBatches

    data = build_dataset(cfg.dataset, "train", views=("train",), subset=cfg.train_subset)
    data.seed_augmentation(1)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).tolist()
    batches = [order[k:k + cfg.batch_size] for k in range(0, len(order), cfg.batch_size)]
    on_device = DeviceBatches(data, "cpu")
    runs: dict[str, list[float]] = {"dataloader": [], "device": []}
    for _ in range(repeats):
        runs["dataloader"].append(_timed(lambda: list(torch.utils.data.DataLoader(data, batch_sampler=batches))))
        runs["device"].append(_timed(lambda: list(on_device.loader(batches, 1))))
    return {k: 1e3 * statistics.median(v) / len(batches) for k, v in runs.items()}


def run_bench(cfg: BenchConfig) -> pd.DataFrame:
    """Run (a)–(d); returns one row per measurement."""
    torch.set_num_threads(cfg.threads)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lskd-bench-") as tmp:
        work = Path(tmp)
        teacher_dir = work / "teacher"
        setup = _spec(cfg, None, "bench teacher")
        setup.data.train_subset = 2000
        train_one(setup, teacher_dir, progress=False)
        n = cfg.train_subset

        def row(name: str, seconds: float, cells: int = 1, **extra: Any) -> None:
            rows.append({"measurement": name, "seconds": seconds, "cells": cells,
                         "images_per_s": cells * n / seconds, **extra})

        row("(a) reference per-cell loop (torchvision+PIL DataLoader)", reference_loop(cfg, teacher_dir, work / "tv"))
        row("(b) lskd engine, one cell", _timed(lambda: train_one(_spec(cfg, teacher_dir, "b", temperature=4.0),
                                                                 work / "b", progress=False)))
        cells = [_spec(cfg, teacher_dir, f"c{i}", temperature=t, **({"transform": "zscore"} if z else {}))
                 for i, (t, z) in enumerate((t, z) for z in (False, True) for t in (1.0, 2.0, 4.0, 8.0))]
        ungrouped = _timed(lambda: [train_one(s, work / f"u{i}", progress=False) for i, s in enumerate(cells)])
        grouped = _timed(lambda: train(cells, [work / f"g{i}" for i in range(len(cells))], progress=False))
        row("(c) 8 cells ungrouped", ungrouped, cells=8)
        row("(c) 8 cells grouped (one teacher forward per batch)", grouped, cells=8, ratio_to_ungrouped=grouped / ungrouped)
        split = step_split(cfg, teacher_dir)
        d, t, s = split["data_ms"], split["teacher_ms"], split["student_step_ms"]
        rows.append({"measurement": "(d) KD step, raw logits (ms/batch)", "ms": s})
        rows.append({"measurement": "(d) KD step, z-score (ms/batch)", "ms": split["student_step_zscore_ms"],
                     "overhead": split["student_step_zscore_ms"] / s - 1})
        rows.append({"measurement": "split: data (ms/batch)", "ms": d})
        rows.append({"measurement": "split: teacher forward (ms/batch)", "ms": t})
        rows.append({"measurement": "bound: grouped/ungrouped per cell for n=8", "ratio": ((d + t) / 8 + s) / (d + t + s)})
        paths = data_paths(cfg)
        rows.append({"measurement": "(e) data, DataLoader path (ms/batch)", "ms": paths["dataloader"]})
        rows.append({"measurement": "(e) data, on-device path on the CPU (ms/batch)", "ms": paths["device"],
                     "ratio": paths["device"] / paths["dataloader"]})
        on_device = [dataclasses.replace(c, data_path="device") for c in cells]
        seconds = _timed(lambda: train(on_device, [work / f"e{i}" for i in range(len(cells))], progress=False))
        row("(e) 8 cells grouped, on-device data path", seconds, cells=8, ratio_to_dataloader_grouped=seconds / grouped)
    table = pd.DataFrame(rows)
    ref = table.loc[0, "seconds"]
    table.loc[1, "ratio_to_reference"] = table.loc[1, "seconds"] / ref
    return table
