"""Expanding a validated config into cells, run specs and result paths (the only place paths are built)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from lskd import layout

LEARNED = "learned"
#: Keys an ``overrides`` rule may select on.
SELECTORS = ("teacher", "student", "method", "transform")
#: ``protocol.selection``: ``test`` = the paper's (setting and epoch chosen on the test set); ``validation`` =
#: stage 1 on a held-out validation split, stage 2 retrains the chosen settings with fresh seeds on the test set.
PROTOCOLS = ("test", "validation")
SWEEP, CONFIRM = "sweep", "confirm"


def fmt_num(x: float) -> str:
    """Compact, stable text for a number in a path: ``2.0 → "2"``, ``0.5 → "0.5"``, ``1e-5 → "1e-05"``."""
    return f"{float(x):g}"


@dataclass(frozen=True, order=True)
class Cell:
    """One distillation run: (pair, method, transform, temperature, kd_weight, seed).

    ``temperature`` is ``None`` for methods that learn it (CTKD).
    """

    teacher: str
    student: str
    method: str
    transform: str
    temperature: float | None
    kd_weight: float
    seed: int
    stage: str = SWEEP

    @property
    def pair(self) -> str:
        return f"{self.teacher}__{self.student}"

    @property
    def temperature_label(self) -> str:
        return LEARNED if self.temperature is None else fmt_num(self.temperature)

    @property
    def path(self) -> str:
        """Run folder relative to the results folder (stage-2 runs under ``runs/confirm/``)."""
        root = "runs/confirm" if self.stage == CONFIRM else "runs"
        return (f"{root}/{self.pair}/{self.method}/{self.transform}/"
                f"T{self.temperature_label}_w{fmt_num(self.kd_weight)}/seed{self.seed}")


def _library_default(method: str, key: str) -> Any:
    """A method's default hyper-parameter (imports torch, so only when the config leaves the value out)."""
    from lskd.losses import method_hparams

    return method_hparams(method)[key]


def _merge(*dicts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dicts:
        out.update(d or {})
    return out


class Experiment:
    """A validated config seen as cells, teacher runs and baseline runs, with their specs and paths."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.results = config.get("results", "results")

    # ------------------------------------------------------------------ paths
    def run_dir(self, relative: str) -> str:
        return f"{self.results}/{relative}"

    @staticmethod
    def teacher_path(teacher: str) -> str:
        return f"runs/teachers/{teacher}"

    @staticmethod
    def baseline_path(student: str, seed: int) -> str:
        return f"runs/baselines/{student}/seed{seed}"

    @property
    def selection_path(self) -> str:
        """Stage 1's choice of setting per arm (the validation protocol's Snakemake checkpoint)."""
        return str(layout.table_path(self.results, layout.SELECTION_TABLE))

    # ------------------------------------------------------------------ protocol
    @property
    def protocol(self) -> dict[str, Any]:
        return {"selection": "test", **(self.config.get("protocol") or {})}

    @property
    def validation(self) -> bool:
        """Whether settings are chosen on a held-out validation split (two stages) rather than on the test set."""
        return self.protocol["selection"] == "validation"

    @property
    def confirm_seeds(self) -> list[int]:
        return [int(s) for s in self.protocol.get("confirm_seeds") or []]

    @property
    def teacher_lock(self) -> str:
        """The track's lock of fetched teacher digests (trust on first use; lskd.teachers), shared by its jobs."""
        return f"{self.results}/teachers.lock.json"

    # ------------------------------------------------------------------ expansion
    def method_settings(self, method: str) -> dict[str, Any]:
        return self.config.get("methods", {}).get(method) or {}

    def overrides(self, teacher: str | None, student: str, method: str, transform: str) -> list[dict[str, Any]]:
        """The ``overrides`` rules that apply to one run, in config order. A rule applies when every selector it
        gives (``teacher``, ``student``, ``method``, ``transform``) equals the run's; a CE baseline is matched as
        method ``ce``, transform ``none`` and no teacher (so a rule naming a teacher never reaches it)."""
        run = {"teacher": teacher, "student": student, "method": method, "transform": transform}
        return [rule for rule in self.config.get("overrides") or []
                if all(rule[key] == run[key] for key in SELECTORS if key in rule)]

    def hparams(self, pair: dict[str, Any], method: str, transform: str) -> dict[str, Any]:
        """Method hyper-parameters: method defaults < methods.<m>.hparams < methods.<m>.transforms.<t> <
        pairs[].methods.<m> < matching ``overrides`` (in order)."""
        settings = self.method_settings(method)
        rules = self.overrides(pair["teacher"], pair["student"], method, transform)
        merged = _merge(settings.get("hparams", {}), settings.get("transforms", {}).get(transform, {}),
                        pair.get("methods", {}).get(method, {}), *(r.get("hparams") for r in rules))
        if transform != "none":
            merged["transform"] = transform
        return merged

    def axes(self, transform: str, pair: dict[str, Any] | None = None,
             method: str | None = None) -> tuple[list[Any], list[Any]]:
        """``(temperatures, kd_weights)`` of one arm: the last matching ``overrides`` rule's ``grid`` where it
        sets an axis, else ``grid.transform_grids.<transform>``, else the grid's."""
        grid = self.config["grid"]
        own = (grid.get("transform_grids") or {}).get(transform) or {}
        temperatures = list(own.get("temperatures", grid["temperatures"]))
        weights = list(own.get("kd_weights", grid.get("kd_weights", ["default"])))
        if pair is not None and method is not None:
            for rule in self.overrides(pair["teacher"], pair["student"], method, transform):
                axes = rule.get("grid") or {}
                temperatures = list(axes.get("temperatures", temperatures))
                weights = list(axes.get("kd_weights", weights))
        return temperatures, weights

    def learned(self, method: str) -> bool:
        """The method learns its temperature (its registered class says so): one cell instead of a temperature axis."""
        from lskd.losses import method_class

        return method_class(method).learns_temperature

    def method_transforms(self, method: str) -> list[str]:
        """The transforms of ``grid.transforms`` that ``method`` runs (``methods.<m>.grid_transforms``, else all)."""
        return list(self.method_settings(method).get("grid_transforms") or self.config["grid"]["transforms"])

    def default_kd_weight(self, pair: dict[str, Any], method: str, transform: str) -> float:
        hp = self.hparams(pair, method, transform)
        return float(hp["kd_weight"] if "kd_weight" in hp else _library_default(method, "kd_weight"))

    def sweep_cells(self) -> list[Cell]:
        """The grid: every pair x method x transform x temperature x KD weight x seed (grid order)."""
        grid = self.config["grid"]
        out = []
        for pair in self.config["pairs"]:
            for method in grid["methods"]:
                for transform in self.method_transforms(method):
                    axis_temperatures, axis_weights = self.axes(transform, pair, method)
                    temperatures = [None] if self.learned(method) else [float(t) for t in axis_temperatures]
                    default_weight = self.default_kd_weight(pair, method, transform)
                    for weight in axis_weights:
                        kd_weight = default_weight if weight == "default" else float(weight)
                        for temperature in temperatures:
                            for seed in grid["seeds"]:
                                out.append(Cell(pair["teacher"], pair["student"], method, transform, temperature,
                                                kd_weight, int(seed)))
        return out

    def point_cells(self) -> list[Cell]:
        """``pairs[].points``: single settings added to one pair beyond the grid (e.g. the point an official log
        ran), once per seed, for the methods and transforms the grid runs. ``kd_weight`` left out = the method's
        weight for that transform."""
        grid, out = self.config["grid"], []
        for pair in self.config["pairs"]:
            for point in pair.get("points") or []:
                method, transform = point["method"], point["transform"]
                if method not in grid["methods"] or transform not in self.method_transforms(method):
                    continue  # a point of a method or transform this config does not run
                temperature = None if self.learned(method) else float(point["temperature"])
                weight = point.get("kd_weight", "default")
                kd_weight = self.default_kd_weight(pair, method, transform) if weight == "default" else float(weight)
                for seed in self.config["grid"]["seeds"]:
                    out.append(Cell(pair["teacher"], pair["student"], method, transform, temperature, kd_weight,
                                    int(seed)))
        return out

    def cells(self) -> list[Cell]:
        """The sweep, then the points that are not already sweep cells (a point on the grid adds nothing)."""
        sweep = self.sweep_cells()
        seen = {c.path for c in sweep}
        extra = [c for c in dict.fromkeys(self.point_cells()) if c.path not in seen]
        return sweep + extra

    @cached_property
    def cells_by_path(self) -> dict[str, Cell]:
        return {c.path: c for c in self.cells()}

    def pair_config(self, teacher: str, student: str) -> dict[str, Any]:
        for pair in self.config["pairs"]:
            if (pair["teacher"], pair["student"]) == (teacher, student):
                return pair
        raise KeyError(f"no pair {teacher}__{student} in the config")

    def baselines(self) -> list[tuple[str, int]]:
        """``(student, seed)`` of every CE baseline; pairs sharing a student must agree on its optimiser."""
        if not self.config["grid"].get("baselines", True):
            return []
        optims: dict[str, dict[str, Any]] = {}
        for pair in self.config["pairs"]:
            optim = self.baseline_optim(pair)
            if optims.setdefault(pair["student"], optim) != optim:
                from lskd.workflow.config import ConfigError

                raise ConfigError(f"pairs: student {pair['student']!r} appears with different optim settings; "
                                  "its CE baseline would be ambiguous")
        seeds = self.confirm_seeds if self.validation else self.config["grid"]["seeds"]
        return [(s, int(seed)) for s in optims for seed in seeds]

    @property
    def group_size(self) -> int:
        return int(self.config.get("execution", {}).get("group_size", 1))

    def groups(self) -> dict[str, list[Cell]]:
        """Cells trained together in one job when ``execution.group_size > 1``.

        A group shares pair, seed and method, hence teacher, data, batches and input views (so an MLKD group's
        strong augmentation is not paid by KD cells); groups are chunks of at most ``group_size`` cells in grid
        order. Keys are marker paths relative to the results folder: ``groups/<pair>/seed<s>/<method>-g<k>``.
        """
        by_key: dict[tuple[str, int, str], dict[tuple[int, int], list[Cell]]] = {}
        for cell in self.cells():
            optim = self.cell_optim(cell)  # lockstep students share batches and epochs
            solver = (int(optim.get("batch_size", 0)), int(optim.get("epochs", 0)))
            by_key.setdefault((cell.pair, cell.seed, cell.method), {}).setdefault(solver, []).append(cell)
        size = max(self.group_size, 1)
        out = {}
        for (pair, seed, method), by_solver in by_key.items():
            chunks = [cells[k:k + size] for cells in by_solver.values() for k in range(0, len(cells), size)]
            for k, chunk in enumerate(chunks):
                out[f"groups/{pair}/seed{seed}/{method}-g{k}"] = chunk
        return out

    def group_payload(self, key: str, groups: dict[str, list[Cell]] | None = None) -> list[dict[str, Any]]:
        """``[{"spec": ..., "out": ...}]`` for ``lskd distill-group`` (``groups``: default the sweep's)."""
        return [{"spec": self.cell_spec(c), "out": self.run_dir(c.path)} for c in (groups or self.groups())[key]]

    # ------------------------------------------------------------------ stage 2 (validation protocol)
    def confirm_cells(self, selection: Any) -> list[Cell]:
        """Stage 2: every arm's chosen setting (``selection``: the table of
        :func:`lskd.analysis.selection.select_settings`, or its CSV path) once per ``protocol.confirm_seeds``,
        evaluated on the test set. Arms without a healthy setting get none."""
        import math

        if not isinstance(selection, list):
            from lskd.analysis.selection import read_selection

            selection = (read_selection(selection) if isinstance(selection, str) else selection).to_dict("records")
        out = []
        for row in selection:
            if row["status"] != "ok":
                continue
            t = row["temperature"]
            temperature = None if t is None or (isinstance(t, float) and math.isnan(t)) else float(t)
            for seed in self.confirm_seeds:
                out.append(Cell(row["teacher"], row["student"], row["method"], row["transform"], temperature,
                                float(row["kd_weight"]), seed, CONFIRM))
        return out

    def confirm_groups(self, selection: Any) -> dict[str, list[Cell]]:
        """Stage-2 cells in lockstep groups keyed ``groups/confirm/<pair>/seed<s>/g<k>``: one pair and seed, and
        (unlike stage 1, whose groups are per method) every method that reads the same input views with the same
        solver, so KD, DKD and CTKD share one teacher forward per batch while MLKD's strong view stays apart;
        chunks of at most ``group_size``."""
        by_key: dict[tuple[str, int, tuple[str, ...], tuple[int, int]], list[Cell]] = {}
        for cell in self.confirm_cells(selection):
            optim = self.cell_optim(cell)
            solver = (int(optim.get("batch_size", 0)), int(optim.get("epochs", 0)))
            by_key.setdefault((cell.pair, cell.seed, self.views(cell), solver), []).append(cell)
        size, out, counter = max(self.group_size, 1), {}, {}
        for (pair, seed, _, _), cells in by_key.items():
            for k in range(0, len(cells), size):
                index = counter.setdefault((pair, seed), 0)
                counter[pair, seed] += 1
                out[f"groups/confirm/{pair}/seed{seed}/g{index}"] = cells[k:k + size]
        return out

    def views(self, cell: Cell) -> tuple[str, ...]:
        """The input views a cell's method reads per batch (its registered class; MLKD's from ``strong_view``)."""
        from lskd.losses import method_class

        hp = self.hparams(self.pair_config(cell.teacher, cell.student), cell.method, cell.transform)
        views = method_class(cell.method).views
        return ("train", hp["strong_view"]) if "strong_view" in hp and len(views) > 1 else tuple(views)

    # ------------------------------------------------------------------ run specs
    def _common(self) -> dict[str, Any]:
        ex = self.config.get("execution", {})
        return {k: ex[k] for k in ("device", "threads", "amp", "channels_last", "compile", "sync_batchnorm",
                                           "data_path") if k in ex}

    def _data(self, train_subset: Any, eval_split: str = "test") -> dict[str, Any]:
        d = self.config["dataset"]
        out = {"name": d["name"], "root": d.get("root"), "train_subset": train_subset,
               "test_subset": d.get("test_subset"), "download": d.get("download", False),
               "num_workers": d.get("num_workers", 0)}
        if self.validation:  # every run, teachers too, trains without the held-out validation images
            out.update(holdout=int(self.protocol["validation_size"]),
                       holdout_seed=int(self.protocol.get("validation_seed", 1)), eval_split=eval_split)
        return out

    def student_optim(self, pair: dict[str, Any], method: str = "ce", transform: str = "none", *,
                      teacher: str | None = None) -> dict[str, Any]:
        """Solver of one student run: ``student_optim`` < ``pairs[].optim`` < matching ``overrides`` (in order)."""
        rules = self.overrides(teacher, pair["student"], method, transform)
        return _merge(self.config.get("student_optim", {}), pair.get("optim", {}), *(r.get("optim") for r in rules))

    def baseline_optim(self, pair: dict[str, Any]) -> dict[str, Any]:
        """Solver of the CE-only student of ``pair`` (no teacher: rules naming a teacher do not apply)."""
        return self.student_optim(pair)

    def cell_optim(self, cell: Cell) -> dict[str, Any]:
        pair = self.pair_config(cell.teacher, cell.student)
        return self.student_optim(pair, cell.method, cell.transform, teacher=cell.teacher)

    def teacher_spec(self, teacher: str) -> dict[str, Any]:
        t = self.config["teachers"][teacher]
        return {
            "model": t["model"], "method": "ce", "seed": t.get("seed", 0), "cell": f"teacher {teacher}",
            "data": self._data(t.get("train_subset")), "optim": t.get("optim", {}),
            "labels": {"role": "teacher", "dataset": self.config["dataset"]["name"], "teacher": teacher,
                       "model": t["model"], "seed": t.get("seed", 0)},
            **self._common(),
        }

    def baseline_spec(self, student: str, seed: int) -> dict[str, Any]:
        pair = next(p for p in self.config["pairs"] if p["student"] == student)
        return {
            "model": student, "method": "ce", "seed": seed, "cell": f"baseline {student} seed {seed}",
            "data": self._data(self.config["dataset"].get("train_subset")), "optim": self.baseline_optim(pair),
            "labels": {"role": "baseline", "dataset": self.config["dataset"]["name"], "student": student,
                       "model": student, "method": "ce", "seed": seed},
            **self._common(),
        }

    def cell_spec(self, cell: Cell) -> dict[str, Any]:
        pair = self.pair_config(cell.teacher, cell.student)
        hp = self.hparams(pair, cell.method, cell.transform)
        hp["kd_weight"] = cell.kd_weight
        if cell.temperature is not None:
            hp["temperature"] = cell.temperature
        return {
            "model": cell.student, "method": cell.method, "hparams": hp, "seed": cell.seed,
            "teacher_dir": self.run_dir(self.teacher_path(cell.teacher)), "cell": cell.path.removeprefix("runs/"),
            "data": self._data(self.config["dataset"].get("train_subset"),
                               "val" if cell.stage == SWEEP else "test"),
            "optim": self.cell_optim(cell),
            "labels": {"role": "distill", "dataset": self.config["dataset"]["name"], "teacher": cell.teacher,
                       "student": cell.student, "model": cell.student, "method": cell.method,
                       "transform": cell.transform, "temperature": cell.temperature, "kd_weight": cell.kd_weight,
                       "seed": cell.seed, **({"stage": cell.stage} if self.validation else {})},
            **self._common(),
        }

    # ------------------------------------------------------------------ targets
    def all_run_dirs(self) -> list[str]:
        teachers = [self.teacher_path(t) for t in self.config["teachers"]]
        baselines = [self.baseline_path(s, seed) for s, seed in self.baselines()]
        return [self.run_dir(p) for p in teachers + baselines + [c.path for c in self.cells()]]


def spec_arg(spec: dict[str, Any]) -> str:
    """A run spec as one shell-quoted JSON argument for ``lskd ... --spec-json``."""
    import shlex

    return shlex.quote(json.dumps(spec, sort_keys=True))
