"""What the claims audit reads: per-sample claim statistics of every student and teacher of a results tree.

:func:`load_audit_data` turns the run table of :func:`lskd.analysis.collect_runs` into an :class:`AuditData`
(reading each run's ``test_logits.safetensors``, its teacher's, and the stored ``logit_stats.safetensors`` when
present); tests build :class:`AuditData` from synthetic logits directly. :func:`run_claims_table` is the
per-run summary the report's claim figures draw (``claims_runs.csv``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lskd.analysis.collect import resolve_teacher_dir
from lskd.analysis.formatting import is_missing
from lskd.analysis.logit_stats import read_run_stats
from lskd.analysis.tables import selected_runs
from lskd.claims.sample_stats import (
    EVAL_TEMPERATURE,
    claim_sample_stats,
    effective_temperature_gap,
    teacher_sample_stats,
)
from lskd.layout import STATS as STATS_FILE
from lskd.layout import logits_file

#: Identifying columns of a student run in :func:`run_claims_table`.
STUDENT_KEYS: tuple[str, ...] = (
    "dataset", "teacher", "student", "method", "transform", "temperature", "kd_weight", "seed",
    "effective_temperature", "selected", "run_dir",
)


#: Per-sample claim statistics averaged per run in :func:`run_claims_table`.
RUN_MEANS: tuple[str, ...] = (
    "residual_spread", "zscore_residual", "log_std_ratio", "kendall", "spearman", "topk_overlap", "kl_t1",
    "kl_t1_zscore",
)


@dataclass(frozen=True)
class StudentRun:
    """A distilled student: its keys (:data:`STUDENT_KEYS`; ``selected`` = the setting the headline reports)
    and its per-sample :func:`lskd.claims.sample_stats.claim_sample_stats`."""

    key: dict[str, Any]
    samples: pd.DataFrame

    @property
    def pair(self) -> tuple[str, str, str]:
        return str(self.key["dataset"]), str(self.key["teacher"]), str(self.key["student"])

    @property
    def accuracy(self) -> float:
        """Last-epoch test top-1 (points): ``100 · mean(correct)`` over the run's test samples."""
        return 100.0 * float(self.samples["correct"].mean())


@dataclass(frozen=True)
class TeacherRun:
    """A teacher: ``name`` (the config's key), ``model``, ``num_params``, last-epoch ``accuracy`` (%), per-sample
    ``samples`` (:func:`lskd.claims.sample_stats.teacher_sample_stats`), a digest of its test ``targets`` (two
    teachers are comparable per sample only on the same test samples) and ``identity_gap`` (see
    :func:`lskd.claims.sample_stats.effective_temperature_gap`)."""

    dataset: str
    name: str
    model: str
    num_params: float
    accuracy: float
    samples: pd.DataFrame
    targets_digest: str
    identity_gap: float = float("nan")


@dataclass
class AuditData:
    """Everything the claims read: distilled ``students``, ``teachers``, and the CE-only ``baselines`` (the same
    student model trained without a teacher, one :class:`StudentRun` per pair it shares a dataset and student with,
    its per-sample statistics taken against that pair's teacher; key ``method`` ``"ce"``, never ``selected``)."""

    students: list[StudentRun] = field(default_factory=list)
    teachers: list[TeacherRun] = field(default_factory=list)
    baselines: list[StudentRun] = field(default_factory=list)

    def pairs(self) -> list[tuple[str, str, str]]:
        return sorted({s.pair for s in self.students})

    def of_pair(self, pair: tuple[str, str, str]) -> list[StudentRun]:
        return [s for s in self.students if s.pair == pair]

    def teacher_of(self, pair: tuple[str, str, str]) -> TeacherRun | None:
        return next((t for t in self.teachers if (t.dataset, t.name) == pair[:2]), None)

    def baselines_of(self, pair: tuple[str, str, str]) -> list[StudentRun]:
        return [b for b in self.baselines if b.pair == pair]


def targets_digest(targets: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(targets, dtype=np.int64)).tobytes()).hexdigest()[:16]


def _read_logits(run_dir: Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    from lskd.engine.io import read_tensors
    from lskd.layout import logits_path

    t = read_tensors(logits_path(run_dir, split))
    return t["logits"].double().numpy(), t["targets"].long().numpy()


def _student_key(row: dict[str, Any], selected: bool) -> dict[str, Any]:
    key = {k: row.get(k) for k in STUDENT_KEYS}
    key.update(selected=selected, temperature=None if is_missing(row.get("temperature")) else float(row["temperature"]),
               kd_weight=None if is_missing(row.get("kd_weight")) else float(row["kd_weight"]),
               seed=int(row["seed"]), effective_temperature=float(row.get("effective_temperature") or 1.0))
    return key


def load_audit_data(runs: pd.DataFrame) -> AuditData:
    """Per-sample claim statistics for every distill run (against its teacher's logits on the same samples) and
    every teacher run of ``runs`` (rows of :func:`lskd.analysis.collect_runs`, ``run_dir`` readable from the
    working directory). Raises ``ValueError`` when a student and its teacher were evaluated on other samples."""
    selected = set(selected_runs(runs)["run_dir"])
    data = AuditData()
    teacher_logits: dict[tuple[Path, str], tuple[np.ndarray, np.ndarray]] = {}
    teacher_dirs: dict[tuple[str, str, str], Path] = {}
    for row in runs[runs["role"] == "distill"].to_dict("records"):
        run_dir = Path(row["run_dir"])
        teacher_dir = resolve_teacher_dir(run_dir, row.get("teacher_dir") if isinstance(row.get("teacher_dir"), str)
                                          else None)
        split = str(row.get("split") or "test") if isinstance(row.get("split"), str) else "test"
        if teacher_dir is None or not (teacher_dir / logits_file(split)).exists():
            continue
        if (teacher_dir, split) not in teacher_logits:
            teacher_logits[teacher_dir, split] = _read_logits(teacher_dir, split)
        v, yv = teacher_logits[teacher_dir, split]
        z, y = _read_logits(run_dir, split)
        if not np.array_equal(y, yv):
            raise ValueError(f"{run_dir}: its teacher {teacher_dir} was evaluated on other test samples")
        stats = read_run_stats(run_dir / STATS_FILE) if (run_dir / STATS_FILE).exists() else None
        data.students.append(StudentRun(_student_key(row, row["run_dir"] in selected),
                                        claim_sample_stats(z, v, y, stats)))
        teacher_dirs.setdefault(data.students[-1].pair, teacher_dir)
    data.baselines = _baselines(runs, teacher_dirs)
    for row in runs[runs["role"] == "teacher"].to_dict("records"):
        run_dir = Path(row["run_dir"])
        if not (run_dir / logits_file("test")).exists():
            continue
        v, y = _read_logits(run_dir)
        data.teachers.append(TeacherRun(
            dataset=str(row["dataset"]), name=str(row["teacher"]), model=str(row["model"]),
            num_params=float(row["num_params"]) if not is_missing(row.get("num_params")) else float("nan"),
            accuracy=float(row["last_top1"]), samples=teacher_sample_stats(v), targets_digest=targets_digest(y),
            identity_gap=effective_temperature_gap(v, EVAL_TEMPERATURE)))
    return data


def _baselines(runs: pd.DataFrame, teacher_dirs: dict[tuple[str, str, str], Path]) -> list[StudentRun]:
    """The CE-only baseline runs (role ``baseline``) of each pair's dataset and student, their test logits against
    the pair's teacher's (``teacher_dirs``: pair → teacher run folder)."""
    out, teachers = [], {}
    for row in runs[runs["role"] == "baseline"].to_dict("records"):
        run_dir = Path(row["run_dir"])
        if not (run_dir / logits_file("test")).exists():
            continue
        z, y = _read_logits(run_dir)
        for pair, teacher_dir in sorted(teacher_dirs.items()):
            if (pair[0], pair[2]) != (str(row["dataset"]), str(row["student"])):
                continue
            if not (teacher_dir / logits_file("test")).exists():
                continue
            if teacher_dir not in teachers:
                teachers[teacher_dir] = _read_logits(teacher_dir)
            v, yv = teachers[teacher_dir]
            if not np.array_equal(y, yv):
                raise ValueError(f"{run_dir}: its pair's teacher {teacher_dir} was evaluated on other test samples")
            key = {**_student_key(row, False), "teacher": pair[1], "method": "ce", "transform": "none"}
            out.append(StudentRun(key, claim_sample_stats(z, v, y)))
    return out


def _iqr_ratio(x: pd.Series) -> float:
    q1, q3 = np.nanquantile(x.to_numpy(np.float64), [0.25, 0.75])
    return float(q3 / q1) if q1 > 0 else float("nan")


def run_claims_table(data: AuditData) -> pd.DataFrame:
    """One row per student: :data:`STUDENT_KEYS`, the per-sample means of the claim statistics
    (``accuracy`` = 100 · mean(correct), NaN rows skipped), ``std_ratio_gmean`` = exp(mean log(σ(z)/σ(v))), and
    ``sigma_iqr_ratio`` / ``teacher_sigma_iqr_ratio`` = Q3/Q1 of σ(z) and σ(v) over the test samples."""
    rows = []
    for s in data.students:
        df = s.samples
        row: dict[str, Any] = dict(s.key)
        row["accuracy"] = 100.0 * float(df["correct"].mean())
        for col in RUN_MEANS:
            row[col] = float(np.nanmean(df[col].to_numpy(np.float64)))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.log(df["sigma"].to_numpy(np.float64)) - np.log(df["teacher_sigma"].to_numpy(np.float64))
        ratio = ratio[np.isfinite(ratio)]
        row["std_ratio_gmean"] = float(np.exp(ratio.mean())) if ratio.size else float("nan")
        row["sigma_iqr_ratio"] = _iqr_ratio(df["sigma"])
        row["teacher_sigma_iqr_ratio"] = _iqr_ratio(df["teacher_sigma"])
        row["top_k"] = int(df.attrs.get("top_k", 0))
        rows.append(row)
    return pd.DataFrame(rows, columns=[*STUDENT_KEYS, "accuracy", *RUN_MEANS, "std_ratio_gmean", "sigma_iqr_ratio",
                                       "teacher_sigma_iqr_ratio", "top_k"])


__all__ = [
    "RUN_MEANS", "STUDENT_KEYS", "AuditData", "StudentRun", "TeacherRun", "load_audit_data", "run_claims_table",
    "targets_digest",
]
