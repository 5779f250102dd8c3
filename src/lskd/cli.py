"""The ``lskd`` command line: a thin layer that builds a :class:`RunSpec` and calls the library.

Commands: ``train-teacher``, ``distill``, ``fetch-teacher``, ``evaluate``, ``check-data``, ``list`` (and the
analysis commands ``collect``, ``tables``, ``report`` used by the workflow). Every option is also a key of the run spec,
so a Snakemake rule can pass a whole spec with ``--spec cell.json`` and override single keys with flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml


def _optim_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation (SGD)")
    g.add_argument("--epochs", type=int, help="training epochs (required, here or in --spec; the KD literature's "
                                              "CIFAR-100 recipe trains 240)")
    g.add_argument("--batch-size", type=int, help="mini-batch size (default 64)")
    g.add_argument("--lr", type=float, help="base learning rate (default 0.05; 0.01 for MobileNet/ShuffleNet students)")
    g.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    g.add_argument("--weight-decay", type=float, help="weight decay (default 5e-4)")
    g.add_argument("--schedule", choices=["multistep", "cosine"], help="learning-rate schedule (default multistep)")
    g.add_argument("--milestones", type=int, nargs="*", help="epochs after which the lr is multiplied by --gamma (e.g. 150 180 210)")
    g.add_argument("--gamma", type=float, help="multi-step decay factor (default 0.1)")
    g.add_argument("--warmup-epochs", type=int, help="linear lr warm-up epochs (default 0)")
    g.add_argument("--eval-batch-size", type=int, help="batch size for test-set evaluation (default 1024)")


def _run_flags(p: argparse.ArgumentParser, *, model_help: str) -> None:
    p.add_argument("--out", required=True, type=Path, help="run folder: spec.json, history.csv, metrics.json, logits, weights")
    p.add_argument("--spec", type=Path, help="JSON/YAML run spec to start from; flags given here override its keys")
    p.add_argument("--spec-json", help="the same as --spec, given inline as a JSON string (used by the workflow)")
    p.add_argument("--model", help=model_help)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", help="dataset name: fashion_mnist, digits, cifar100, imagenet")
    g.add_argument("--data-root", help="folder holding the dataset (default: the dataset's standard locations)")
    g.add_argument("--train-subset", type=int, help="train on a class-balanced subset of this many images")
    g.add_argument("--test-subset", type=int, help="evaluate on a class-balanced subset of this many images")
    g.add_argument("--download", action="store_true", default=None, help="download the dataset if missing (checksum-verified)")
    g.add_argument("--num-workers", type=int, help="DataLoader worker processes (default 0: in-process, fastest for small data)")
    _optim_flags(p)
    g = p.add_argument_group("execution")
    g.add_argument("--seed", type=int, help="seed of every random stream (default 0)")
    g.add_argument("--device", help="cpu, cuda, cuda:N or auto (default cpu)")
    g.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--amp", choices=["none", "bf16"], help="bf16 autocast (default none)")
    g.add_argument("--channels-last", action="store_true", default=None, help="channels-last memory format")
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    g.add_argument("--data-path", choices=["auto", "dataloader", "device"],
                   help="where batches are built: device keeps in-memory data on the device and augments there "
                        "(same images); auto (default) = device wherever it applies")
    g.add_argument("--cell", help="name of the run in messages and tables")
    g.add_argument("--no-progress", action="store_true", help="no per-batch progress bar")
    g.add_argument("--record-divergence", action="store_true",
                   help="finish a run whose loss turns non-finite as 'diverged' (metrics.json status) instead of failing")


def _method_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("distillation")
    g.add_argument("--teacher", type=Path, help="finished teacher run folder (from `lskd train-teacher`)")
    g.add_argument("--method", help="a registered method (`lskd list` names and describes them), or ce (the CE-only "
                                    "student baseline, no teacher)")
    g.add_argument("--transform", choices=["none", "center", "scale", "zscore"],
                   help="logit transform before the temperature (zscore = logit standardization)")
    g.add_argument("--std", choices=["unbiased", "population"], help="std convention of the transform (default unbiased, as the official code)")
    g.add_argument("--temperature", type=float, help="temperature T (the base temperature τ with zscore)")
    g.add_argument("--ce-weight", type=float, help="weight of the cross-entropy term")
    g.add_argument("--kd-weight", type=float, help="weight of the distillation term(s)")
    g.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                   help="any other method hyper-parameter, e.g. --hparam alpha=1 --hparam beta=8 (values parsed as YAML)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lskd", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train-teacher", help="train a model with cross-entropy (a teacher)",
                       description="Train a model with cross-entropy; the run folder can serve as --teacher.")
    _run_flags(p, model_help="architecture registered in timm (see `lskd list`)")
    p = sub.add_parser("distill", help="train a student against a trained teacher",
                       description="Train a student with a distillation method against a frozen teacher.")
    _run_flags(p, model_help="student architecture registered in timm (see `lskd list`)")
    _method_flags(p)
    p = sub.add_parser("evaluate", help="evaluate a finished run (or a weight file) on a test set")
    p.add_argument("run", nargs="?", type=Path, help="finished run folder")
    p.add_argument("--model", help="architecture, with --checkpoint, instead of a run folder")
    p.add_argument("--checkpoint", type=Path, help="weight file (safetensors or a state dict) for --model")
    p.add_argument("--dataset", help="dataset (default: the run's)")
    p.add_argument("--data-root")
    p.add_argument("--test-subset", type=int, help="class-balanced test subset (default: the run's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, help="write the metrics as JSON here")
    p = sub.add_parser("fetch-teacher", help="make a teacher run folder from published weights (SHA-256 verified)",
                       description="Fetch or take a local weight file, verify its SHA-256 (pinned, or against the "
                                   "--lock file; trusted on first use and recorded there when neither knows it), load "
                                   "it without executing code, evaluate it on the test set and write a teacher run "
                                   "folder.")
    _run_flags(p, model_help="teacher architecture registered in timm")
    p.add_argument("--pretrained-json", help='JSON: {"url" or "file", "sha256", "format": safetensors|state_dict|mdistiller}')
    p.add_argument("--weights", type=Path, help="local weight file (instead of --pretrained-json)")
    p.add_argument("--sha256", help="expected SHA-256 of --weights (without it: trusted on first use)")
    p.add_argument("--format", default="safetensors", choices=["safetensors", "state_dict", "mdistiller"])
    p.add_argument("--lock", type=Path, help="the track's lock of teacher digests (results/teachers.lock.json): "
                   "digests not pinned must match it; on first use they are recorded there")
    p.add_argument("--strict", action="store_true", help="refuse digests that are not pinned (no trust on first use)")
    p = sub.add_parser("setup-data", help="get the demo's Fashion-MNIST: found, else the Debian package (as root or "
                       "with sudo; apt-get update when the lists are empty), else a checksum-verified download")
    p.add_argument("--no-apt", action="store_true", help="do not try the Debian package")
    p.add_argument("--no-download", action="store_true", help="do not try the download")
    p = sub.add_parser("check-data", help="check that a dataset is present and intact; write a manifest")
    p.add_argument("--dataset", required=True, help="dataset name")
    p.add_argument("--data-root", help="dataset folder (default: the standard locations)")
    p.add_argument("--download", action="store_true", help="download when missing (checksum-verified)")
    p.add_argument("--out", type=Path, help="write the manifest (JSON) here")
    p = sub.add_parser("distill-group", help="train several cells in lockstep (one teacher forward per batch)",
                       description="Train cells that share data, teacher and seed together; each writes the same "
                                   "run folder it would write alone.")
    p.add_argument("--group-json", required=True, help='JSON list of {"spec": run spec, "out": run folder}')
    p.add_argument("--threads", type=int, help="torch CPU threads (overrides the specs)")
    p.add_argument("--marker", type=Path, help="write a JSON marker listing the finished run folders here")
    p.add_argument("--no-progress", action="store_true", help="no per-batch progress bar")
    p.add_argument("--record-divergence", action="store_true",
                   help="finish a member whose loss turns non-finite as 'diverged' while the others train on")
    p = sub.add_parser("check-config", help="validate a workflow config completely (schema, models, hyper-parameters, data)")
    p.add_argument("config", type=Path, help="YAML config, e.g. configs/default.yaml")
    p.add_argument("--schema", type=Path, help="a config schema (default: the one lskd ships, which the workflow uses)")
    p = sub.add_parser("cells", help="one row per cell of a config with its resolved settings (read it before "
                       "spending GPU hours)")
    p.add_argument("config", type=Path, help="YAML config, e.g. configs/cifar100.yaml")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (aligned text, default), csv or json (one object per cell)")
    p.add_argument("--schema", type=Path, help="a config schema (default: the one lskd ships, which the workflow uses)")
    sub.add_parser("list", help="list registered datasets, models and methods")
    from lskd.cli_analysis import add_parsers

    add_parsers(sub)
    return parser


def _load_spec_file(path: Path | None, inline: str | None = None) -> dict[str, Any]:
    if inline is not None:
        data = json.loads(inline)
        if not isinstance(data, dict):
            raise SystemExit("lskd: --spec-json does not hold a mapping")
        return data
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") else json.loads(path.read_text())
    if not isinstance(data, dict):
        raise SystemExit(f"lskd: {path} does not hold a mapping")
    return data


def spec_from_args(args: argparse.Namespace, method: str) -> dict[str, Any]:
    """Merge the spec file (if any) and the flags given into a plain run-spec dict."""
    raw = _load_spec_file(args.spec, args.spec_json)
    data, optim = dict(raw.get("data", {})), dict(raw.get("optim", {}))  # other keys: OptimSpec's stated defaults
    hparams = dict(raw.get("hparams", {}))
    for flag, key in [("dataset", "name"), ("data_root", "root"), ("train_subset", "train_subset"),
                      ("test_subset", "test_subset"), ("download", "download"), ("num_workers", "num_workers")]:
        if getattr(args, flag) is not None:
            data[key] = getattr(args, flag)
    for key in ("epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule", "milestones", "gamma",
                "warmup_epochs", "eval_batch_size"):
        if getattr(args, key) is not None:
            optim[key] = getattr(args, key)
    raw["method"] = getattr(args, "method", None) or raw.get("method", method)
    teacher = getattr(args, "teacher", None)
    if teacher is not None:
        raw["teacher_dir"] = str(teacher)
    if raw.get("teacher_dir") and "name" not in data:
        teacher_spec = Path(raw["teacher_dir"]) / "spec.json"
        if teacher_spec.exists():
            data["name"] = json.loads(teacher_spec.read_text())["spec"]["data"]["name"]
    for key in ("transform", "std", "temperature", "ce_weight", "kd_weight"):
        if getattr(args, key, None) is not None:
            hparams[key] = getattr(args, key)
    for item in getattr(args, "hparam", []):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"lskd: --hparam expects KEY=VALUE, got {item!r}")
        hparams[key] = yaml.safe_load(value)
    for key in ("model", "seed", "device", "threads", "amp", "channels_last", "compile", "data_path", "cell"):
        if getattr(args, key) is not None:
            raw[key] = getattr(args, key)
    if "name" not in data:
        raise SystemExit("lskd: no dataset given (--dataset, or a --teacher whose spec names one)")
    if "model" not in raw:
        raise SystemExit("lskd: no model given (--model)")
    raw.update(data=data, optim=optim, hparams=hparams)
    raw.setdefault("cell", args.out.name)
    return raw


def _cmd_train(args: argparse.Namespace, method: str) -> int:
    from lskd.engine import RunSpec, train

    raw = spec_from_args(args, method)
    if "epochs" not in raw["optim"]:
        raise SystemExit(f"lskd {args.command}: how many epochs? give --epochs N (or optim.epochs in --spec); the KD "
                         "literature's CIFAR-100 recipe trains 240")
    try:
        spec = RunSpec.from_dict(raw)
    except (ValueError, TypeError) as err:
        raise SystemExit(f"lskd: invalid run spec: {err}") from None
    metrics = train([spec], [args.out], progress=not args.no_progress,
                    record_divergence=bool(getattr(args, "record_divergence", False)))[0]
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_fetch_teacher(args: argparse.Namespace) -> int:
    from lskd.engine import RunSpec
    from lskd.engine.pretrained import import_pretrained
    from lskd.teachers import ChecksumMissingError

    if args.pretrained_json:
        pretrained = json.loads(args.pretrained_json)
    elif args.weights:
        pretrained = {"file": str(args.weights), "format": args.format, **({"sha256": args.sha256} if args.sha256 else {})}
    else:
        raise SystemExit("lskd fetch-teacher: give --pretrained-json, or --weights (with --sha256 to pin it)")
    raw = spec_from_args(args, "ce")
    raw["optim"].setdefault("epochs", 1)
    try:
        spec = RunSpec.from_dict(raw)
    except (ValueError, TypeError) as err:
        raise SystemExit(f"lskd: invalid run spec: {err}") from None
    try:
        metrics = import_pretrained(spec, pretrained, args.out, lock=args.lock, strict=args.strict)
    except ChecksumMissingError as err:
        raise SystemExit(f"lskd fetch-teacher: error: {err}") from None
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_check_data(args: argparse.Namespace) -> int:
    from lskd.data import DatasetNotFoundError, build_dataset, resolve_root
    from lskd.engine.io import write_json

    try:
        root = resolve_root(args.dataset, args.data_root) if not args.download else args.data_root
        splits = {split: build_dataset(args.dataset, split, root=args.data_root, download=args.download)
                  for split in ("train", "test")}
    except (DatasetNotFoundError, ValueError) as err:
        raise SystemExit(f"lskd check-data: {err}") from None
    info = splits["train"].spec
    manifest = {
        "dataset": args.dataset, "root": str(root) if root else None, "num_classes": info.num_classes,
        "in_chans": info.in_chans, "image_size": info.image_size, "class_names": list(info.class_names),
        **{f"num_{split}": len(ds) for split, ds in splits.items()},
    }
    if args.out:
        write_json(args.out, manifest)
    print(json.dumps(manifest, indent=2))
    return 0


def _cmd_distill_group(args: argparse.Namespace) -> int:
    from lskd.engine import RunSpec, train
    from lskd.engine.io import write_json

    members = json.loads(args.group_json)
    try:
        specs = [RunSpec.from_dict({**m["spec"], **({"threads": args.threads} if args.threads else {})}) for m in members]
    except (ValueError, TypeError, KeyError) as err:
        raise SystemExit(f"lskd distill-group: invalid group: {err}") from None
    outs = [m["out"] for m in members]
    metrics = train(specs, outs, progress=not args.no_progress, record_divergence=args.record_divergence)
    if args.marker and os.environ.get("RANK", "0") == "0":  # under torchrun, one process writes the marker
        write_json(args.marker, {"runs": outs, "status": [m.get("status", "ok") for m in metrics],
                                 "last_top1": [(m["last"] or {}).get("top1") for m in metrics]})
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    from lskd.workflow import SCHEMA, ConfigError, Experiment, load_config

    try:
        config = load_config(args.config, args.schema or SCHEMA)
    except ConfigError as err:
        raise SystemExit(f"lskd check-config: {err}") from None
    exp = Experiment(config)
    print(f"{args.config}: valid; {len(config['teachers'])} teacher(s), {len(exp.baselines())} CE baseline(s), "
          f"{len(exp.cells())} distillation cell(s)")
    return 0


def _cmd_setup_data(args: argparse.Namespace) -> int:
    from lskd.data.setup import SetupError, setup_fashion_mnist

    try:
        setup_fashion_mnist(download=not args.no_download, **({"which": lambda _: None} if args.no_apt else {}))
    except SetupError as err:
        raise SystemExit(str(err)) from None
    return 0


def _cmd_cells(args: argparse.Namespace) -> int:
    from lskd.workflow import SCHEMA, ConfigError, load_config
    from lskd.workflow.cells import cells_table

    try:
        config = load_config(args.config, args.schema or SCHEMA, check_data=False)
    except ConfigError as err:
        raise SystemExit(f"lskd cells: {err}") from None
    table = cells_table(config)
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(table.to_json(orient="records", indent=1))
    else:
        print(table.to_string(index=False))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from lskd.data import build_dataset, get_spec
    from lskd.engine import (
        classification_metrics,
        create_model,
        load_run_model,
        predict,
        resolve_device,
    )
    from lskd.engine.io import read_tensors, write_json

    device = resolve_device(args.device)
    if args.run is not None:
        model, record = load_run_model(args.run, device)
        data = record["spec"]["data"]
        dataset, root = args.dataset or data["name"], args.data_root or data["root"]
        subset, seed = args.test_subset or data["test_subset"], data.get("subset_seed", 0)
    elif args.model and args.checkpoint and args.dataset:
        info = get_spec(args.dataset)
        model = create_model(args.model, info.num_classes, info.in_chans)
        if args.checkpoint.suffix == ".safetensors":
            state = read_tensors(args.checkpoint)
        else:
            state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) and "model" in state else state)
        model.to(device).eval()
        dataset, root, subset, seed = args.dataset, args.data_root, args.test_subset, 0
    else:
        raise SystemExit("lskd evaluate: give a run folder, or --model, --checkpoint and --dataset")
    test_set = build_dataset(dataset, "test", root=root, views=("eval",), subset=subset, seed=seed)
    logits, targets = predict(model, test_set, batch_size=1024, device=device)
    metrics = {"dataset": dataset, "num_test": int(targets.numel()), **classification_metrics(logits, targets)}
    if args.out:
        write_json(args.out, metrics)
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_list() -> int:
    import timm

    from lskd.data import available_datasets
    from lskd.losses import available_methods, method_info
    from lskd.models import CIFAR_MODELS, SMALL_MODELS

    print("datasets:", ", ".join(available_datasets()))
    print("small models (28x28):", ", ".join(SMALL_MODELS))
    print("CIFAR models:", ", ".join(CIFAR_MODELS))
    print(f"(plus every timm model: {len(timm.list_models())} architectures)")
    print("methods (hyper-parameter = default: meaning):")
    for name in available_methods():
        info = method_info(name)
        flags = [f"transforms {', '.join(info['transforms'])}"] if info["needs_teacher"] else ["no teacher"]
        flags += ["learns its temperature"] * info["learns_temperature"]
        print(f"  {name}: {info['summary']} [{'; '.join(flags)}]")
        if info["paper"]:
            print(f"      {info['paper']}")
        for key, hp in info["hparams"].items():
            print(f"      {key} = {hp['default']!r}: {hp['help']}")
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    """Failures whose message says what to do: printed as one line, without a traceback."""
    from lskd.data import DatasetCorruptedError, DatasetNotFoundError
    from lskd.engine.checkpoint import CheckpointError
    from lskd.engine.pretrained import TeacherRefusedError
    from lskd.engine.trainer import (
        DeviceUnavailableError,
        DivergenceError,
        OutputNotWritableError,
        TeacherMismatchError,
    )

    return (CheckpointError, DatasetCorruptedError, DatasetNotFoundError, DeviceUnavailableError, DivergenceError,
            OutputNotWritableError, TeacherMismatchError, TeacherRefusedError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("train-teacher", "distill", "distill-group", "fetch-teacher", "evaluate"):
        try:
            return _dispatch(args)
        except _user_errors() as err:
            raise SystemExit(f"lskd {args.command}: error: {err}") from None
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    from lskd.cli_analysis import COMMANDS

    commands = {
        "train-teacher": lambda a: _cmd_train(a, "ce"),
        "distill": lambda a: _cmd_train(a, "kd"),
        "evaluate": _cmd_evaluate,
        "fetch-teacher": _cmd_fetch_teacher,
        "check-data": _cmd_check_data,
        "distill-group": _cmd_distill_group,
        "check-config": _cmd_check_config,
        "cells": _cmd_cells,
        "setup-data": _cmd_setup_data,
        **COMMANDS,
    }
    if args.command in commands:
        return commands[args.command](args)
    return _cmd_list()


if __name__ == "__main__":
    sys.exit(main())
