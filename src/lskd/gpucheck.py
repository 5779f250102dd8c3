"""``lskd gpu-check``: the check a maintainer runs once a GPU machine is available (one H200: under 8 minutes).

Four parts, each timed and recorded in ``OUT/gpu_check.json`` (the throughput table also in ``OUT/gpu_check.csv``):

``env``
    torch, CUDA and cuDNN versions, the GPUs torch sees, bf16 support, the git commit (:func:`provenance`).
``smoke``
    the smoke config (``configs/smoke.yaml``) end to end through Snakemake in a copy of the workflow under
    ``OUT/smoke``, with ``execution.device`` set to the checked device and ``execution.amp: bf16``; wall seconds,
    success, whether the report was written, and on failure the log's tail.
``throughput``
    resnet32x4 → resnet8x4 KD on a CIFAR-100-shaped stand-in (random images in the official pickle layout,
    :func:`lskd.data.cifar100.write_standin`): one cell and a lockstep group of 8 (4 temperatures × raw/z-score
    logits), each in fp32 and bf16, each through the DataLoader and the on-device data path (:mod:`lskd.data.device`).
    Images per second come from the last epoch's training time (``history.csv``: each member's ``seconds`` is its
    share of the group's epoch); the first epoch warms up. Then two rough extrapolations: one 240-epoch cell on
    50,000 images at the fastest one-cell rate, and the whole CIFAR-100 grid (``configs/cifar100.yaml``) at the
    fastest group rate, costing every run as this pair's KD.
``ddp``
    with two or more GPUs, a 2-process ``torchrun`` distillation run; checks that its run folder is complete and
    its metrics cover the whole test set. Otherwise skipped.

``--device cpu --quick`` runs the same code here with tiny sizes (the tests do).
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lskd.workflow.runner import SNAKEMAKE, copy_workflow, find_repo, snakemake_env

PARTS: tuple[str, ...] = ("env", "smoke", "throughput", "ddp")
TEACHER, STUDENT = "resnet32x4", "resnet8x4"
#: The lockstep group of the throughput part, in this order: the first ``n`` make a smaller group.
KD_SETTINGS: tuple[tuple[float, str], ...] = tuple(
    (t, z) for t in (4.0, 1.0, 2.0, 8.0) for z in ("none", "zscore"))
AMPS: tuple[str, ...] = ("none", "bf16")
DATA_PATHS: tuple[str, ...] = ("dataloader", "device")
CIFAR_TRAIN_IMAGES = 50_000
CELL_EPOCHS = 240
GRID_CONFIG = "configs/cifar100.yaml"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
LOG_TAIL = 4000
BUDGET_SECONDS = 480  # the whole check on one H200 with the defaults
CSV_COLUMNS = ("part", "configuration", "cells", "amp", "data_path", "images", "epochs", "epoch_seconds",
               "images_per_s", "same_metrics_as_dataloader", "cell_240ep_hours", "grid_hours", "run_epochs", "hours",
               "wall_seconds", "run_folder", "note")
ESTIMATE_NOTE = ("rough estimate: every run costed as resnet32x4 -> resnet8x4 KD at the measured rate on "
                 f"{CIFAR_TRAIN_IMAGES:,} images per epoch, one GPU running one job at a time; larger pairs, MLKD's "
                 "extra views and CTKD cost more, CE baselines less; divide by the GPUs that run in parallel")


@dataclass
class CheckConfig:
    """What ``lskd gpu-check`` runs and at which sizes."""

    out: Path
    device: str = "cuda"
    parts: tuple[str, ...] = PARTS
    train_images: int = 10_000
    test_images: int = 1_000
    epochs: int = 2
    group: int = 8
    batch_size: int = 64
    jobs_per_gpu: int = 4
    repo: Path | None = None
    smoke_timeout: int = 300
    ddp_timeout: int = 300


@dataclass
class Workspace:
    """The throughput and ddp parts' files: the stand-in data (written once) and the teacher (trained once)."""

    cfg: CheckConfig
    data: Path | None = None
    teacher: Path | None = None

    @property
    def root(self) -> Path:
        return self.cfg.out / "throughput"


# ------------------------------------------------------------------------------------- workflow helpers


def _joined(*texts: str | bytes | None) -> str:
    """Process outputs (text, bytes or None) joined as text."""
    return "\n".join(t.decode(errors="replace") if isinstance(t, bytes) else t for t in texts if t)


def _tail(*texts: str | bytes | None) -> str:
    """The last :data:`LOG_TAIL` characters of the outputs, joined."""
    return _joined(*texts)[-LOG_TAIL:]


def _run_logged(command: list[str], log: Path, timeout: int, cwd: Path | None = None) -> tuple[int | None, str]:
    """Run ``command`` (offline environment, :func:`snakemake_env`), its output saved to ``log``; (exit status or
    None after ``timeout`` seconds, the output's tail)."""
    try:
        proc = subprocess.run(command, cwd=cwd, env=snakemake_env(), capture_output=True, text=True, timeout=timeout)
        code, text = proc.returncode, _joined(proc.stdout, proc.stderr)
    except subprocess.TimeoutExpired as err:
        code, text = None, _joined(err.stdout, err.stderr)
    log.write_text(text)
    return code, text[-LOG_TAIL:]


def _replace_dir(path: Path) -> Path:
    """``path`` as a new empty folder (a previous check's files there are removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# ------------------------------------------------------------------------------------------------ env


def gpu_count() -> int:
    """GPUs torch sees (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def env_part(cfg: CheckConfig, ws: Workspace) -> dict[str, Any]:
    """Versions, GPUs and bf16 support."""
    import torch

    from lskd.engine.provenance import provenance

    info = provenance()
    cuda = torch.cuda.is_available()
    gpus = [_gpu_info(i) for i in range(gpu_count())]
    return {
        "status": "ok", "device": cfg.device, "torch": torch.__version__, "cuda_build": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None, "nccl": _nccl_version() if cuda else None,
        "gpu_count": len(gpus), "gpus": gpus, "bf16_supported": torch.cuda.is_bf16_supported() if cuda else None,
        "versions": info["versions"], "git_commit": info["git_commit"], "hardware": info["hardware"],
    }


def _gpu_info(index: int) -> dict[str, Any]:
    import torch

    props = torch.cuda.get_device_properties(index)
    return {"index": index, "name": props.name, "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1)}


def _nccl_version() -> str | None:
    import torch

    try:
        version = torch.cuda.nccl.version()
    except (AttributeError, RuntimeError):
        return None
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def _print_env(result: dict[str, Any]) -> None:
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB, sm {g['capability']})" for g in result["gpus"]) or "none"
    print(f"torch {result['torch']}, CUDA build {result['cuda_build'] or 'none'}, cuDNN {result['cudnn']}, "
          f"NCCL {result['nccl']}, git {result['git_commit']}")
    print(f"GPUs ({result['gpu_count']}): {gpus}; bf16 supported: {result['bf16_supported']}")


# ---------------------------------------------------------------------------------------------- smoke


def smoke_config(repo: Path, device: str) -> dict[str, Any]:
    """``configs/smoke.yaml`` of ``repo`` with ``execution.device: device`` and ``execution.amp: bf16``."""
    import yaml

    config = yaml.safe_load((repo / "configs" / "smoke.yaml").read_text())
    config.setdefault("execution", {}).update(device=device, amp="bf16")
    return config


def smoke_part(cfg: CheckConfig, ws: Workspace) -> dict[str, Any]:
    """The smoke config through Snakemake in ``OUT/smoke``, on the checked device, in bf16."""
    import yaml

    repo = find_repo(cfg.repo)
    config = smoke_config(repo, cfg.device)
    missing = _missing_data(config["dataset"]["name"])
    if missing:
        return {"status": f"failed: {missing}", "success": False}
    work = copy_workflow(_replace_dir(cfg.out / "smoke"), repo)
    (work / "configs" / "gpu_check.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    gpus = max(gpu_count(), 1) * cfg.jobs_per_gpu
    command = [*SNAKEMAKE, "--cores", "all", "--resources", f"gpu={gpus}", "--configfile", "configs/gpu_check.yaml"]
    start = time.perf_counter()
    code, log = _run_logged(command, work / "gpu_check_snakemake.log", cfg.smoke_timeout, cwd=work)
    seconds = time.perf_counter() - start
    report = work / config["report"] / "report.html"
    success = code == 0 and report.exists()
    if success:
        status = "ok"
    elif code is None:
        status = f"failed: timed out after {cfg.smoke_timeout} s"
    else:
        status = f"failed: snakemake exit status {code}" if code else "failed: no report written"
    return {"status": status, "success": success, "wall_seconds": seconds, "report": report.exists(),
            "workdir": str(work), "command": " ".join(command[1:]), "log_tail": None if success else log}


def _missing_data(dataset: str) -> str | None:
    """Why the smoke config's data is not here (None when it is)."""
    from lskd.data import DatasetNotFoundError, resolve_root

    try:
        resolve_root(dataset)
    except DatasetNotFoundError as err:
        return f"{err} (`lskd setup-data` gets Fashion-MNIST)"
    return None


# ----------------------------------------------------------------------------------------- throughput


def prepare(ws: Workspace) -> tuple[Path, Path]:
    """The stand-in data and the resnet32x4 teacher (trained 1 epoch on it), made on first use in a new
    ``OUT/throughput``."""
    if ws.data is None:
        from lskd.data.cifar100 import write_standin

        write_standin(_replace_dir(ws.root) / "data", ws.cfg.train_images, ws.cfg.test_images)
        ws.data = ws.root / "data"
    if ws.teacher is None:
        from lskd.engine import OptimSpec, RunSpec, train_one

        spec = RunSpec(model=TEACHER, data=_data_spec(ws), optim=OptimSpec(epochs=1, batch_size=ws.cfg.batch_size),
                       device=ws.cfg.device, cell="gpu-check teacher")
        train_one(spec, ws.root / "teacher", progress=False)
        ws.teacher = ws.root / "teacher"
    return ws.data, ws.teacher


def _data_spec(ws: Workspace) -> Any:
    from lskd.engine import DataSpec

    return DataSpec(name="cifar100", root=str(ws.data), train_subset=None, test_subset=None)


def student_specs(ws: Workspace, cells: int, amp: str, data_path: str) -> list[Any]:
    """``cells`` KD students (resnet8x4, the KD recipe's lr 0.05 and batch 64) of the first ``cells`` settings."""
    from lskd.engine import OptimSpec, RunSpec

    optim = OptimSpec(epochs=ws.cfg.epochs, batch_size=ws.cfg.batch_size, lr=0.05, milestones=[150, 180, 210])
    return [RunSpec(model=STUDENT, data=_data_spec(ws), optim=optim, method="kd", teacher_dir=str(ws.teacher),
                    hparams={"temperature": t, "transform": z, "ce_weight": 0.1,
                             "kd_weight": 9.0 if z == "zscore" else 0.9},
                    device=ws.cfg.device, amp=amp, data_path=data_path, cell=f"T{t:g} {z} {amp} {data_path}")
            for t, z in KD_SETTINGS[:cells]]


def measure(ws: Workspace, cells: int, amp: str, data_path: str) -> dict[str, Any]:
    """Train one configuration; its row: the last epoch's seconds and images per second (all cells together)."""
    import pandas as pd

    from lskd.engine import train

    folder = ws.root / "runs" / f"{cells}cell_{amp}_{data_path}"
    out_dirs = [folder / f"member{i}" for i in range(cells)]
    start = time.perf_counter()
    train(student_specs(ws, cells, amp, data_path), out_dirs, progress=False)
    wall = time.perf_counter() - start
    last = [float(pd.read_csv(d / "history.csv")["seconds"].iloc[-1]) for d in out_dirs]
    epoch_seconds = sum(last)  # each member's share of the group's epoch
    return {"part": "throughput", "configuration": f"{cells} cell(s), {amp}, {data_path}", "cells": cells,
            "amp": amp, "data_path": data_path, "images": ws.cfg.train_images, "epochs": ws.cfg.epochs,
            "epoch_seconds": epoch_seconds, "images_per_s": cells * ws.cfg.train_images / epoch_seconds,
            "wall_seconds": wall, "run_folder": str(folder)}


def same_metrics(a: Path, b: Path) -> bool:
    """Whether every member of two configurations' run folders wrote the same ``metrics.json``."""
    from lskd.engine.io import read_json

    members = sorted(p.name for p in a.iterdir())
    return members == sorted(p.name for p in b.iterdir()) and all(
        read_json(a / m / "metrics.json") == read_json(b / m / "metrics.json") for m in members)


def throughput_part(cfg: CheckConfig, ws: Workspace) -> dict[str, Any]:
    """Images per second for one cell and a group, fp32 and bf16, DataLoader and on-device; extrapolations."""
    prepare(ws)
    _replace_dir(ws.root / "runs")
    rows = []
    for cells, amp in itertools.product((1, cfg.group), _amps(cfg.device)):
        for data_path in DATA_PATHS:
            rows.append(measure(ws, cells, amp, data_path))
            print(f"  {rows[-1]['configuration']}: {rows[-1]['images_per_s']:.0f} images/s", flush=True)
        reference, on_device = (Path(r["run_folder"]) for r in rows[-2:])
        rows[-1]["same_metrics_as_dataloader"] = same_metrics(reference, on_device)
    workload = grid_workload(cfg.repo)
    for row in rows:
        rate = row["images_per_s"]
        row["cell_240ep_hours"] = _hours(CELL_EPOCHS, rate) if row["cells"] == 1 else None
        row["grid_hours"] = _hours(workload["run_epochs"], rate) if row["cells"] > 1 and workload else None
    return {"status": "ok", "teacher": TEACHER, "student": STUDENT, "batch_size": cfg.batch_size,
            "train_images": cfg.train_images, "test_images": cfg.test_images, "epochs": cfg.epochs,
            "rows": rows, "grid": workload, "extrapolations": extrapolate(rows, workload), "note": ESTIMATE_NOTE}


def _amps(device: str) -> tuple[str, ...]:
    """fp32 and bf16, or fp32 only on a GPU without bf16."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return ("none",)
    return AMPS


def _hours(epochs: float, images_per_s: float) -> float:
    return epochs * CIFAR_TRAIN_IMAGES / images_per_s / 3600


def grid_workload(repo: Path | None) -> dict[str, Any] | None:
    """The runs of the CIFAR-100 grid and their epochs summed (cells, CE baselines, trained teachers); None when
    the config is not found."""
    from lskd.workflow import SCHEMA, Experiment, load_config

    try:
        path = find_repo(repo) / GRID_CONFIG
    except FileNotFoundError:
        return None
    config = load_config(path, SCHEMA, check_data=False)
    exp = Experiment(config)
    cells = [exp.cell_optim(c)["epochs"] for c in exp.cells()]
    baselines = [exp.baseline_spec(s, seed)["optim"]["epochs"] for s, seed in exp.baselines()]
    teachers = [exp.teacher_spec(t)["optim"]["epochs"] for t, c in config["teachers"].items() if c["source"] == "train"]
    note = "stage-2 (confirm) cells are not counted: they are chosen by stage 1" if exp.validation else None
    return {"config": str(path), "cells": len(cells), "baselines": len(baselines), "trained_teachers": len(teachers),
            "run_epochs": sum(cells) + sum(baselines) + sum(teachers), "images_per_epoch": CIFAR_TRAIN_IMAGES,
            "note": note}


def extrapolate(rows: list[dict[str, Any]], workload: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One 240-epoch cell at the fastest one-cell rate; the whole grid at the fastest group rate."""
    single = max((r for r in rows if r["cells"] == 1), key=lambda r: r["images_per_s"])
    group = max((r for r in rows if r["cells"] > 1), key=lambda r: r["images_per_s"])
    grid_epochs = workload["run_epochs"] if workload else None
    return [
        {"part": "extrapolation", "configuration": f"one {CELL_EPOCHS}-epoch cell at {single['configuration']}",
         "cells": 1, "images_per_s": single["images_per_s"], "run_epochs": CELL_EPOCHS,
         "hours": _hours(CELL_EPOCHS, single["images_per_s"]), "note": ESTIMATE_NOTE},
        {"part": "extrapolation", "configuration": f"{GRID_CONFIG} grid at {group['configuration']}",
         "cells": group["cells"], "images_per_s": group["images_per_s"], "run_epochs": grid_epochs,
         "hours": _hours(grid_epochs, group["images_per_s"]) if grid_epochs else None,
         "note": ESTIMATE_NOTE if grid_epochs else f"{GRID_CONFIG} not found: give --repo"},
    ]


def _print_throughput(result: dict[str, Any]) -> None:
    import pandas as pd

    print(f"{TEACHER} -> {STUDENT} KD, CIFAR-100-shaped stand-in: {result['train_images']} images, batch "
          f"{result['batch_size']}, timed on the last of {result['epochs']} epoch(s)")
    columns = ["cells", "amp", "data_path", "epoch_seconds", "images_per_s", "same_metrics_as_dataloader",
               "cell_240ep_hours", "grid_hours"]
    table = pd.DataFrame(result["rows"]).reindex(columns=columns)
    print(table.to_string(index=False, na_rep="", float_format=lambda v: f"{v:.4g}"))
    for e in result["extrapolations"]:
        hours = "n/a" if e["hours"] is None else f"{e['hours']:.3g} h ({e['hours'] / 24:.3g} days on one device)"
        print(f"{e['configuration']}: {e['run_epochs']} run-epochs -> {hours}")
    print(f"({result['note']})")


# ------------------------------------------------------------------------------------------------ ddp


def ddp_part(cfg: CheckConfig, ws: Workspace) -> dict[str, Any]:
    """A 2-process DDP run when two GPUs are visible; else skipped."""
    gpus = gpu_count()
    if gpus < 2:
        return {"status": f"skipped: {gpus} GPU(s) visible"}
    if not cfg.device.startswith("cuda"):
        return {"status": f"skipped: --device {cfg.device}"}
    return run_ddp(ws, "cuda")


def run_ddp(ws: Workspace, device: str) -> dict[str, Any]:
    """``torchrun --standalone --nproc_per_node 2 -m lskd.cli distill`` on the stand-in; checks the run folder."""
    data, teacher = prepare(ws)
    out = _replace_dir(ws.cfg.out / "ddp") / "run"
    command = [*TORCHRUN, "-m", "lskd.cli", "distill", "--teacher", str(teacher), "--model", STUDENT,
               "--method", "kd", "--temperature", "4", "--dataset", "cifar100", "--data-root", str(data),
               "--epochs", "1", "--batch-size", str(ws.cfg.batch_size), "--device", device, "--no-progress",
               "--out", str(out)]
    start = time.perf_counter()
    code, log = _run_logged(command, out.parent / "torchrun.log", ws.cfg.ddp_timeout)
    seconds = time.perf_counter() - start
    problems = [f"exit status {code}" if code is not None else "timed out"] if code != 0 else check_run(out, ws)
    return {"status": "ok" if not problems else "failed: " + "; ".join(problems), "wall_seconds": seconds,
            "run_folder": str(out), "command": " ".join(["torchrun", *command[3:]]),
            "log_tail": log if problems else None}


def check_run(out: Path, ws: Workspace) -> list[str]:
    """What is wrong with a finished 2-process run folder (empty when it is complete)."""
    from lskd.engine.io import read_json
    from lskd.layout import HISTORY, METRICS, MODEL, SPEC, TIMING, logits_file

    missing = [name for name in (SPEC, HISTORY, MODEL, logits_file("test"), TIMING, METRICS)
               if not (out / name).exists()]
    if missing:
        return [f"missing {', '.join(missing)}"]
    problems = []
    metrics, spec = read_json(out / METRICS), read_json(out / SPEC)
    if metrics.get("num_test") != ws.cfg.test_images:
        problems.append(f"metrics cover {metrics.get('num_test')} of {ws.cfg.test_images} test images")
    if spec["resolved"]["parallel"]["processes"] != 2:
        problems.append(f"spec.json records {spec['resolved']['parallel']['processes']} process(es), not 2")
    return problems


# ------------------------------------------------------------------------------------------------ run

PART_FUNCTIONS: dict[str, Callable[[CheckConfig, Workspace], dict[str, Any]]] = {
    "env": env_part, "smoke": smoke_part, "throughput": throughput_part, "ddp": ddp_part}
PRINTERS: dict[str, Callable[[dict[str, Any]], None]] = {"env": _print_env, "throughput": _print_throughput}


def run_part(name: str, cfg: CheckConfig, ws: Workspace) -> dict[str, Any]:
    """One part, timed; an exception is recorded (with its traceback's tail) instead of ending the check."""
    print(f"== {name}", flush=True)
    start = time.perf_counter()
    try:
        result = PART_FUNCTIONS[name](cfg, ws)
    except Exception as err:  # noqa: BLE001  (a part's failure is a result; the other parts still run)
        result = {"status": f"error: {type(err).__name__}: {err}", "log_tail": _tail(traceback.format_exc())}
    result["seconds"] = time.perf_counter() - start
    if name in PRINTERS and result["status"] == "ok":
        PRINTERS[name](result)
    print(f"== {name}: {result['status'].splitlines()[0]} ({result['seconds']:.1f} s)", flush=True)
    if result.get("log_tail"):
        print(result["log_tail"][-1500:], file=sys.stderr)
    return result


def run_check(cfg: CheckConfig) -> dict[str, Any]:
    """Run the parts in order, writing ``gpu_check.json`` and ``gpu_check.csv`` after each."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    ws = Workspace(cfg)
    start = time.perf_counter()
    result: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
                              "parts": {}}
    for name in cfg.parts:
        result["parts"][name] = run_part(name, cfg, ws)
        result["total_seconds"] = time.perf_counter() - start
        write_outputs(cfg.out, result)
    over = f" (over the {BUDGET_SECONDS // 60}-minute budget)" if result["total_seconds"] > BUDGET_SECONDS else ""
    print(f"gpu-check: {result['total_seconds']:.1f} s in all{over}; {cfg.out / 'gpu_check.json'}")
    return result


def write_outputs(out: Path, result: dict[str, Any]) -> None:
    """``gpu_check.json`` (everything) and ``gpu_check.csv`` (throughput rows, then the extrapolations)."""
    import pandas as pd

    from lskd.engine.io import write_json, write_text

    write_json(out / "gpu_check.json", _finite(result))
    part = result["parts"].get("throughput", {})
    table = pd.DataFrame([*part.get("rows", []), *part.get("extrapolations", [])])
    columns = [c for c in CSV_COLUMNS if c in table] + [c for c in table if c not in CSV_COLUMNS]
    write_text(out / "gpu_check.csv", table.reindex(columns=columns).to_csv(index=False))


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats as None (valid JSON)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


# ------------------------------------------------------------------------------------------------ CLI


def config_from_args(args: argparse.Namespace) -> CheckConfig:
    """The check's config from the command line; bad values and an unavailable device are refused first."""
    from lskd.engine.trainer import DeviceUnavailableError, resolve_device

    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip()) if args.parts else (
        tuple(p for p in PARTS if p != "smoke") if args.quick else PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise SystemExit(f"lskd gpu-check: error: --parts takes a comma list of {','.join(PARTS)}, "
                         f"got {args.parts!r}")
    sizes = {"train_images": 32, "test_images": 32, "batch_size": 32, "epochs": 1, "group": 2} if args.quick else {}
    for key in ("train_images", "epochs", "jobs_per_gpu"):
        value = getattr(args, key)
        if value is not None and value < 1:
            raise SystemExit(f"lskd gpu-check: error: --{key.replace('_', '-')} must be >= 1, got {value}")
        if value is not None:
            sizes[key] = value
    try:
        device = resolve_device(args.device)
    except DeviceUnavailableError as err:
        raise SystemExit(f"lskd gpu-check: error: {err}. This check is for a GPU machine; `--device cpu --quick` "
                         "runs it on the CPU") from None
    except RuntimeError as err:  # torch.device("gpu"): not a device name
        raise SystemExit(f"lskd gpu-check: error: --device {args.device!r}: {err}") from None
    return CheckConfig(out=args.out, device=str(device), parts=parts, repo=args.repo, **sizes)


def main(args: argparse.Namespace) -> int:
    """``lskd gpu-check``: 0 when no part failed."""
    cfg = config_from_args(args)
    result = run_check(cfg)
    failed = [n for n, r in result["parts"].items() if r["status"].startswith(("failed", "error"))]
    if failed:
        print(f"gpu-check: failed parts: {', '.join(failed)} (details in {cfg.out / 'gpu_check.json'})",
              file=sys.stderr)
    return 1 if failed else 0
