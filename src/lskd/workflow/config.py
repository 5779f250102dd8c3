"""Config validation: the JSON schema (structure, types, allowed values, defaults) and then the checks a schema
cannot express (registered models, method hyper-parameters, teacher references, data present, duplicate cells).
Every failure names the key and the allowed values, before any job runs."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config problem a user can fix; the message names the key."""


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _schema_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    from jsonschema import Draft202012Validator

    messages = []
    for error in sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path)):
        where = _path(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed)):
                hint = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                messages.append(f"{where}: unknown key {key!r}{suggestion}; allowed: {', '.join(allowed)}")
        elif error.validator == "dependentRequired":
            for key, needs in error.validator_value.items():
                if key in error.instance:
                    for need in needs:
                        if need not in error.instance:
                            messages.append(f"{where}: {need!r} is required when {key!r} is given")
        elif error.validator == "enum":
            hint = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            messages.append(f"{where}: {error.instance!r} is not allowed{suggestion}; allowed: "
                            f"{', '.join(map(str, error.validator_value))}")
        else:
            messages.append(f"{where}: {error.message}")
    return messages


def validate_config(config: dict[str, Any], schema_path: str | Path, *, check_data: bool = True,
                    runtime: bool = True) -> dict[str, Any]:
    """Validate ``config`` in place against the schema (filling defaults, as ``snakemake.utils.validate``), then
    :func:`check_structure` and, with ``runtime``, :func:`check_runtime`. Raises :class:`ConfigError`.

    The structural part builds no model and reads no data (it reads the method registry, whose import loads torch),
    so the Snakefile runs it while parsing (``snakemake -n`` stays fast: about 10 s for configs/cifar100.yaml) and
    runs :func:`check_runtime` in ``onstart``, before the first job.
    """
    from snakemake.utils import validate

    schema_path = Path(schema_path).resolve()
    schema = yaml.safe_load(schema_path.read_text())
    errors = _schema_errors(config, schema)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    validate(config, str(schema_path), set_default=True)
    check_structure(config)
    if runtime:
        check_runtime(config, check_data=check_data)
    return config


def load_config(path: str | Path, schema_path: str | Path, *, check_data: bool = True) -> dict[str, Any]:
    """Read a YAML config and validate it (see :func:`validate_config`)."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} must hold a mapping of settings")
    return validate_config(config, schema_path, check_data=check_data)


def _check_model(name: str, where: str) -> None:
    import timm

    import lskd.models  # noqa: F401  (registers CIFAR and small architectures)

    if not timm.is_model(name):
        candidates = list(lskd.models.CIFAR_MODELS) + list(lskd.models.SMALL_MODELS) + timm.list_models()
        hint = difflib.get_close_matches(name, candidates, n=3)
        raise ConfigError(f"{where}: unknown model {name!r}" + (f" (did you mean {', '.join(map(repr, hint))}?)" if hint else "")
                          + "; run `lskd list` for the registered architectures")


def check_structure(config: dict[str, Any]) -> None:
    """Checks beyond the schema that need no model or data: references, pretrained sources, duplicate cells."""
    from lskd.teachers import PretrainedFormError, check_form
    from lskd.workflow.grid import Experiment

    for tid, teacher in config["teachers"].items():
        if teacher["source"] == "pretrained":
            try:
                check_form(teacher.get("pretrained") or {}, teacher["model"], f"teachers.{tid}" +
                           (".pretrained" if teacher.get("pretrained") else ""))
            except PretrainedFormError as err:
                raise ConfigError(str(err)) from None
    _check_methods(config)
    for transform in config["grid"].get("transform_grids") or {}:
        if transform not in config["grid"]["transforms"]:
            raise ConfigError(f"grid.transform_grids.{transform}: transform not in grid.transforms "
                              f"({', '.join(config['grid']['transforms'])})")
    seen_pairs: dict[tuple[str, str], int] = {}
    for i, pair in enumerate(config["pairs"]):
        key = (pair["teacher"], pair["student"])
        if key in seen_pairs:
            raise ConfigError(f"pairs[{i}]: teacher {key[0]!r} with student {key[1]!r} is already pairs[{seen_pairs[key]}]; "
                              "list each pair once (per-pair settings go in that entry's optim/methods)")
        seen_pairs[key] = i
        if pair["teacher"] not in config["teachers"]:
            raise ConfigError(f"pairs[{i}].teacher: unknown teacher {pair['teacher']!r}; defined teachers: "
                              f"{', '.join(config['teachers'])}")
        for method in pair["methods"]:
            if method not in config["grid"]["methods"]:
                raise ConfigError(f"pairs[{i}].methods.{method}: method not in grid.methods ({', '.join(config['grid']['methods'])})")
    _check_points(config)
    _check_overrides(config)
    _check_protocol(config)
    experiment = Experiment(config)
    _check_epochs(config, experiment)
    seen: set[str] = set()
    for cell in experiment.sweep_cells():
        if cell.path in seen:
            raise ConfigError(f"grid: two settings give the same cell {cell.path} (e.g. kd_weights lists 'default' "
                              "and the number it resolves to)")
        seen.add(cell.path)
    experiment.baselines()  # raises on inconsistent student settings


def _check_epochs(config: dict[str, Any], experiment: Any) -> None:
    """Every training run says how long it trains: there is no hidden default number of epochs."""
    for tid, teacher in config["teachers"].items():
        if teacher["source"] == "train" and "epochs" not in (teacher.get("optim") or {}):
            raise ConfigError(f"teachers.{tid}.optim.epochs is required: how many epochs the teacher trains (the KD "
                              "literature's CIFAR-100 recipe trains 240)")
    for i, pair in enumerate(config["pairs"]):
        if "epochs" not in experiment.baseline_optim(pair):
            raise ConfigError(f"student_optim.epochs (or pairs[{i}].optim.epochs) is required: how many epochs the "
                              "students train (the KD literature's CIFAR-100 recipe trains 240)")


def _unknown_method(name: str, where: str, allowed: list[str]) -> ConfigError:
    hint = difflib.get_close_matches(name, allowed, n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return ConfigError(f"{where}: unknown method {name!r}{suggestion}; registered: {', '.join(allowed)} (`lskd list` "
                       "describes them; a method of your own registers from its module, see the README's 'Add a method')")


def _check_methods(config: dict[str, Any]) -> None:
    """Every method a config names is registered (lskd's method registry is the one list), and every method runs
    only with the logit transforms its class declares meaningful."""
    from lskd.losses import distillation_methods, method_info

    known = distillation_methods()
    names = [(m, f"grid.methods[{i}]") for i, m in enumerate(config["grid"]["methods"])]
    names += [(m, f"methods.{m}") for m in config.get("methods") or {}]
    names += [(m, f"pairs[{i}].points[{j}].method") for i, p in enumerate(config["pairs"])
              for j, m in enumerate(q["method"] for q in p.get("points") or [])]
    names += [(r["method"], f"overrides[{i}].method") for i, r in enumerate(config.get("overrides") or [])
              if r.get("method") not in (None, "ce")]
    for name, where in names:
        if name not in known:
            raise _unknown_method(name, where, known)
    for method in config["grid"]["methods"]:
        settings = (config.get("methods") or {}).get(method) or {}
        runs = settings.get("grid_transforms") or config["grid"]["transforms"]
        outside = [t for t in settings.get("grid_transforms") or [] if t not in config["grid"]["transforms"]]
        if outside:
            raise ConfigError(f"methods.{method}.grid_transforms: {', '.join(outside)} not in grid.transforms "
                              f"({', '.join(config['grid']['transforms'])})")
        allowed = method_info(method)["transforms"]
        refused = [t for t in runs if t not in allowed]
        if refused:
            raise ConfigError(
                f"grid.transforms: {method} is not meaningful with {', '.join(refused)} (it accepts "
                f"{', '.join(allowed)}; see its docstring); run it on those only with methods.{method}.grid_transforms: "
                f"[{', '.join(t for t in runs if t in allowed) or allowed[0]}]")


def _check_protocol(config: dict[str, Any]) -> None:
    """The validation protocol needs its split size and fresh stage-2 seeds; the paper's needs neither."""
    protocol = config.get("protocol") or {}
    if protocol.get("selection", "test") != "validation":
        for key in ("validation_size", "confirm_seeds"):
            if key in protocol:
                raise ConfigError(f"protocol.{key}: only used with protocol.selection: validation (the config "
                                  "selects on the test set, as the paper did); remove it or set selection: validation")
        return
    for key, example in (("validation_size", "5000"), ("confirm_seeds", "[100, 101, 102]")):
        if key not in protocol:
            raise ConfigError(f"protocol.{key} is required with protocol.selection: validation, e.g. {key}: {example}")
    reused = sorted(set(protocol["confirm_seeds"]) & set(config["grid"]["seeds"]))
    if reused:
        raise ConfigError(f"protocol.confirm_seeds: {reused} also in grid.seeds; stage 2 needs fresh seeds, "
                          "none used in stage 1")


def _check_points(config: dict[str, Any]) -> None:
    """``pairs[].points`` give a temperature unless the method learns it. A point of a method or transform the
    grid does not run is skipped (so a subset of a paper config keeps its points); :func:`_check_methods` catches
    typos."""
    from lskd.losses import method_class

    for i, pair in enumerate(config["pairs"]):
        for j, point in enumerate(pair.get("points") or []):
            where = f"pairs[{i}].points[{j}]"
            learned = method_class(point["method"]).learns_temperature
            if learned and "temperature" in point:
                raise ConfigError(f"{where}.temperature: {point['method']} learns its temperature; leave it out "
                                  "(set the learned temperature's range with the method's t_min / t_range)")
            if not learned and "temperature" not in point:
                raise ConfigError(f"{where}: 'temperature' is required for method {point['method']!r}")


def _check_overrides(config: dict[str, Any]) -> None:
    """``overrides`` set something, and method hyper-parameters only for a named method. A selector naming a
    teacher, student, method or transform this config does not run selects nothing (a subset of a paper config
    keeps its rules); :func:`_check_methods` and the schema catch misspelt methods and transforms."""
    for i, rule in enumerate(config.get("overrides") or []):
        if not (rule.get("optim") or rule.get("hparams") or rule.get("grid")):
            raise ConfigError(f"overrides[{i}]: sets nothing; give optim, hparams and/or grid")
        if rule.get("hparams") and rule.get("method") in (None, "ce"):
            raise ConfigError(f"overrides[{i}].hparams: method hyper-parameters need a method selector "
                              f"(one of {', '.join(config['grid']['methods'])})")


def check_runtime(config: dict[str, Any], *, check_data: bool = True) -> None:
    """Checks that need the libraries: registered models, method hyper-parameters (every cell's run spec is
    validated) and the dataset's presence."""
    from lskd.data import DatasetNotFoundError, resolve_root
    from lskd.engine.spec import RunSpec
    from lskd.teachers import ChecksumMissingError, format_missing, resolve_checksums
    from lskd.workflow.grid import Experiment

    problems: list[str] = []
    hints: list[str] = []
    for tid, teacher in config["teachers"].items():
        _check_model(teacher["model"], f"teachers.{tid}.model")
        if teacher["source"] == "pretrained":
            try:  # strict: refuse digests that are not pinned before the first job, not hours into the run
                resolve_checksums(teacher["pretrained"], f"teachers.{tid}.pretrained",
                                  strict=config.get("teacher_verification", {}).get("strict", False))
            except ChecksumMissingError as err:
                problems, hints = problems + err.problems, hints + err.hints
    if problems:
        raise ConfigError(format_missing(problems, hints))
    for i, pair in enumerate(config["pairs"]):
        _check_model(pair["student"], f"pairs[{i}].student")
    dataset = config["dataset"]
    if check_data and not dataset["download"]:
        try:
            resolve_root(dataset["name"], dataset["root"])
        except DatasetNotFoundError as err:
            raise ConfigError(f"dataset.root: {err}") from None
    experiment = Experiment(config)
    for cell in experiment.cells():
        try:
            RunSpec.from_dict(experiment.cell_spec(cell))
        except (ValueError, TypeError) as err:
            raise ConfigError(f"methods.{cell.method} (cell {cell.path}): {err}") from None
    if config.get("execution", {}).get("data_path") == "device":
        _check_device_path(experiment, dataset["name"])


def _check_device_path(experiment: Any, dataset: str) -> None:
    """``execution.data_path: device`` needs an in-memory dataset and cells whose views all have a batched form."""
    from lskd.data import get_spec
    from lskd.data.device import BATCHED_VIEWS

    if not get_spec(dataset).in_memory:
        raise ConfigError(f"execution.data_path: device needs an in-memory dataset; {dataset} is read from files: "
                          "use data_path: auto or dataloader")
    for cell in experiment.cells():
        other = [v for v in experiment.views(cell) if v not in BATCHED_VIEWS]
        if other:
            raise ConfigError(f"execution.data_path: device batches the {' and '.join(BATCHED_VIEWS)} views only; "
                              f"{cell.method} reads {', '.join(other)} (per-image ops on the CPU): use data_path: auto, "
                              "which takes the device path wherever it applies")


def check_config(config: dict[str, Any], *, check_data: bool = True) -> None:
    """All checks beyond the schema (assumes defaults were filled in)."""
    check_structure(config)
    check_runtime(config, check_data=check_data)


def smallest_effect(config: dict[str, Any] | None) -> float:
    """The smallest effect of interest δ of the headline verdicts (points of top-1): ``analysis.smallest_effect``,
    else :data:`lskd.analysis.inference.DEFAULT_SMALLEST_EFFECT` (the schema's default, for a config that was not
    validated or no config)."""
    from lskd.analysis.inference import DEFAULT_SMALLEST_EFFECT

    return float(((config or {}).get("analysis") or {}).get("smallest_effect", DEFAULT_SMALLEST_EFFECT))
