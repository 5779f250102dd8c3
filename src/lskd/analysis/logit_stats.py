"""Per-sample logit statistics of a run (student ``z``) and of its teacher (``v``) on the same test samples.

For one sample with logits ``z ∈ R^K`` (``K`` classes), temperature ``T`` and ``p^T = softmax(z / T)``:

=================  ==================================================================================
column             formula
=================  ==================================================================================
mean               ``m(z) = Σ_k z_k / K``
std                ``s(z) = sqrt(Σ_k (z_k − m)² / (K − 1))`` (unbiased, as the official code)
range              ``max_k z_k − min_k z_k``
max_logit          ``max_k z_k``
margin             top-1 minus top-2 logit
entropy_t1         ``H(p¹) = −Σ_k p¹_k log p¹_k`` (nats)
confidence_t1      ``max_k p¹_k``
entropy_T          ``H(p^T)``
confidence_T       ``max_k p^T_k``
pred, correct      ``argmax_k z_k`` and ``pred == target``
=================  ==================================================================================

With teacher logits ``v`` (all computed per sample; ``teacher_<col>`` repeats the columns above for ``v``):

=================  ==================================================================================
kl_T               ``T² · KL(softmax(v/T) ‖ softmax(z/T))`` (:func:`lskd.losses.kd_loss`, transform ``none``)
kl_T_zscore        the same after z-scoring both vectors (``transform="zscore"``: ``T`` is the base τ)
pearson            ``Σ (z − m(z))(v − m(v)) / sqrt(Σ (z − m(z))² · Σ (v − m(v))²)``
spearman           Pearson correlation of the (average, tie-aware) ranks (``scipy.stats.rankdata``)
kendall            Kendall's tau-b: ``(n_c − n_d) / sqrt((n_0 − n_1)(n_0 − n_2))`` over the class pairs
top1_agree         ``argmax z == argmax v``
shift              ``m(z) − m(v)``: the per-sample logit shift (Sun et al., Sec. 4.2 / Eq. 11)
std_ratio          ``s(z) / s(v)`` (Eq. 12)
=================  ==================================================================================

A student ``z = a·v + b`` (``a > 0``) gives ``std_ratio = a``, ``shift = (a − 1)·m(v) + b``, ``pearson = spearman
= kendall = 1`` and ``kl_T_zscore ≈ 0``. Correlations of a constant vector are undefined (NaN).

Storage: :func:`write_run_stats` writes one **safetensors** file, one 1-D tensor per column (float32 for the
statistics, int64 for ``pred``/``teacher_pred``, bool for ``correct``/``teacher_correct``/``top1_agree``), with
the column order and the run's temperature in the file's string metadata; :func:`read_run_stats` reads it back
into the same DataFrame. No pickle is involved, and the file is ~4·N bytes per column.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from scipy import special
from scipy import stats as sps

from lskd.analysis.collect import read_run, resolve_teacher_dir
from lskd.engine.io import read_json, read_tensors, write_tensors
from lskd.losses import kd_loss

ArrayLike = np.ndarray | torch.Tensor

#: Columns of a single logit vector (student, or the teacher with prefix ``teacher_``).
BASIC_COLUMNS: tuple[str, ...] = (
    "mean", "std", "range", "max_logit", "margin", "entropy_t1", "confidence_t1", "entropy_T", "confidence_T",
    "pred", "correct",
)
#: Columns comparing the student with its teacher.
PAIR_COLUMNS: tuple[str, ...] = (
    "kl_T", "kl_T_zscore", "pearson", "spearman", "kendall", "top1_agree", "shift", "std_ratio",
)
#: Largest ``K`` for the exact vectorised O(K²) Kendall pair count; above it ``scipy.stats.kendalltau`` per row.
KENDALL_EXACT_MAX_K = 128
STATS_FORMAT = "lskd.logit_stats/1"

_INT_COLUMNS = {"pred", "teacher_pred"}
_BOOL_COLUMNS = {"correct", "teacher_correct", "top1_agree"}
_CHUNK_ELEMENTS = 1 << 21  # rows per chunk = this // K: bounds float64 temporaries to ~16 MiB


def _as_array(x: ArrayLike, dtype: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = x.double() if dtype == np.float64 else x
        x = x.numpy()
    return np.asarray(x, dtype=dtype)


def _chunks(n: int, k: int, elements: int = _CHUNK_ELEMENTS) -> list[slice]:
    step = max(1, elements // max(k, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (``(N, K)`` → ``(N,)``, NaN if constant)."""
    ac = a - a.mean(axis=1, keepdims=True)
    bc = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((ac * ac).sum(axis=1) * (bc * bc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ac * bc).sum(axis=1) / den
    return np.clip(r, -1.0, 1.0)


def rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho per row: :func:`rowwise_pearson` of average ranks (``scipy.stats.rankdata``, tie-aware)."""
    return rowwise_pearson(sps.rankdata(a, axis=1), sps.rankdata(b, axis=1))


def rowwise_kendall(a: np.ndarray, b: np.ndarray, exact_max_k: int = KENDALL_EXACT_MAX_K) -> np.ndarray:
    """Kendall's tau-b per row, exact in both regimes.

    ``K ≤ exact_max_k``: vectorised count over all ``K(K−1)/2`` class pairs ``i < j``, with
    ``sx = sign(a_j − a_i)``, ``sy = sign(b_j − b_i)``: ``tau_b = Σ sx·sy / sqrt(Σ |sx| · Σ |sy|)`` (``Σ sx·sy`` is
    ``n_c − n_d``; ``Σ |sx|`` is the number of pairs not tied in ``a``, i.e. ``n_0 − n_1``). The Python loop runs
    over the ``K − 1`` anchor classes ``i`` (all rows of a 1024-row chunk at once), never over samples: ~0.3 s for
    10k × 100. Larger ``K`` (e.g. ImageNet's 1000): one ``scipy.stats.kendalltau`` call (O(K log K), variant b)
    per row, ~0.4 ms per row at K = 1000. NaN for a constant row.
    """
    n, k = a.shape
    out = np.empty(n, dtype=np.float64)
    if k > exact_max_k:
        for r in range(n):
            out[r] = sps.kendalltau(a[r], b[r]).statistic
        return out
    for sl in _chunks(n, 1, elements=1024):
        x, y = a[sl], b[sl]
        num, nx, ny = (np.zeros(x.shape[0]) for _ in range(3))
        for i in range(k - 1):
            sx = np.sign(x[:, i + 1:] - x[:, i, None])
            sy = np.sign(y[:, i + 1:] - y[:, i, None])
            num += np.einsum("ij,ij->i", sx, sy)
            nx += np.count_nonzero(sx, axis=1)
            ny += np.count_nonzero(sy, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[sl] = num / np.sqrt(nx * ny)
    return out


def _basic(z: np.ndarray, targets: np.ndarray, temperature: float) -> dict[str, np.ndarray]:
    k = z.shape[1]
    top2 = np.partition(z, k - 2, axis=1)[:, -2:] if k > 1 else np.repeat(z, 2, axis=1)
    out: dict[str, np.ndarray] = {
        "mean": z.mean(axis=1),
        "std": z.std(axis=1, ddof=1),
        "range": z.max(axis=1) - z.min(axis=1),
        "max_logit": top2[:, 1],
        "margin": top2[:, 1] - top2[:, 0],
    }
    for suffix, t in (("t1", 1.0), ("T", float(temperature))):
        logp = special.log_softmax(z / t, axis=1)
        out[f"entropy_{suffix}"] = -(np.exp(logp) * logp).sum(axis=1)
        out[f"confidence_{suffix}"] = np.exp(logp.max(axis=1))
    out["pred"] = z.argmax(axis=1)
    out["correct"] = out["pred"] == targets
    return out


def _pair(z: np.ndarray, v: np.ndarray, temperature: float, std: str, eps: float) -> dict[str, np.ndarray]:
    zt, vt = torch.from_numpy(z), torch.from_numpy(v)
    sz, sv = z.std(axis=1, ddof=1), v.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = sz / sv
    return {
        "kl_T": kd_loss(zt, vt, temperature, "none", reduction="none").numpy(),
        "kl_T_zscore": kd_loss(zt, vt, temperature, "zscore", std=std, eps=eps, reduction="none").numpy(),
        "pearson": rowwise_pearson(z, v),
        "spearman": rowwise_spearman(z, v),
        "kendall": rowwise_kendall(z, v),
        "top1_agree": z.argmax(axis=1) == v.argmax(axis=1),
        "shift": z.mean(axis=1) - v.mean(axis=1),
        "std_ratio": ratio,
    }


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    out = {}
    for name, col in columns.items():
        if name in _BOOL_COLUMNS:
            out[name] = col.astype(bool)
        elif name in _INT_COLUMNS:
            out[name] = col.astype(np.int64)
        else:
            out[name] = col.astype(np.float32)
    return pd.DataFrame(out)


def teacher_stats(teacher_logits: ArrayLike, targets: ArrayLike, temperature: float) -> pd.DataFrame:
    """The :data:`BASIC_COLUMNS` of the teacher's logits, prefixed ``teacher_``."""
    return per_sample_stats(teacher_logits, targets, temperature).add_prefix("teacher_")


def per_sample_stats(
    logits: ArrayLike,
    targets: ArrayLike,
    temperature: float,
    teacher_logits: ArrayLike | None = None,
    *,
    std: str = "unbiased",
    eps: float = 1e-7,
) -> pd.DataFrame:
    """One row per sample: :data:`BASIC_COLUMNS`, and with ``teacher_logits`` also :data:`PAIR_COLUMNS` and the
    teacher's basic columns prefixed ``teacher_`` (formulas in the module docstring).

    Computed in float64 in row chunks and stored as float32 (int64 ``pred``, bool flags). ``std``/``eps`` are the
    z-score convention used for ``kl_T_zscore`` (see :func:`lskd.losses.standardize`). ``df.attrs`` records
    ``temperature``.
    """
    z_all = _as_array(logits, np.float64)
    y_all = _as_array(targets, np.int64).ravel()
    if z_all.ndim != 2 or z_all.shape[0] != y_all.shape[0]:
        raise ValueError(f"logits must be (N, K) and targets (N,), got {z_all.shape} and {y_all.shape}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    v_all = None if teacher_logits is None else _as_array(teacher_logits, np.float64)
    if v_all is not None and v_all.shape != z_all.shape:
        raise ValueError(f"teacher logits {v_all.shape} and student logits {z_all.shape} differ in shape")
    parts: list[dict[str, np.ndarray]] = []
    for sl in _chunks(*z_all.shape):
        z, y = z_all[sl], y_all[sl]
        cols = _basic(z, y, temperature)
        if v_all is not None:
            v = v_all[sl]
            cols.update(_pair(z, v, temperature, std, eps))
            cols.update({f"teacher_{k}": c for k, c in _basic(v, y, temperature).items()})
        parts.append(cols)
    names = list(parts[0]) if parts else list(BASIC_COLUMNS)
    df = _frame({n: np.concatenate([p[n] for p in parts]) if parts else np.empty(0) for n in names})
    df.attrs["temperature"] = float(temperature)
    return df


def summarize_stats(df: pd.DataFrame) -> dict[str, float]:
    """Scalar summary of a per-sample table.

    For every float column ``c``: ``c_mean`` and ``c_median`` (NaN rows skipped). Plus ``n``, ``accuracy``
    (= 100 · mean(correct)), and when teacher columns exist ``teacher_accuracy``, ``top1_agree`` (%),
    ``shift_abs_mean`` (mean |shift|), ``shift_sd`` (spread of the shift across samples, ddof=1: the paper's
    point is that it varies per sample), ``std_ratio_sd`` and ``std_ratio_of_means`` (= std_mean /
    teacher_std_mean). ``stats_temperature`` is the temperature the table was computed at (``df.attrs``); it is
    not called ``temperature`` so that it never overwrites a run's configured one (CTKD's is empty: learned).
    """
    out: dict[str, float] = {"n": float(len(df))}
    if "temperature" in df.attrs:
        out["stats_temperature"] = float(df.attrs["temperature"])
    out["accuracy"] = 100.0 * float(df["correct"].mean())
    floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    means, medians = df[floats].astype(np.float64).mean(), df[floats].astype(np.float64).median()
    for c in floats:
        out[f"{c}_mean"], out[f"{c}_median"] = float(means[c]), float(medians[c])
    if "top1_agree" in df:
        out["teacher_accuracy"] = 100.0 * float(df["teacher_correct"].mean())
        out["top1_agree"] = 100.0 * float(df["top1_agree"].mean())
        shift = df["shift"].astype(np.float64)
        out["shift_abs_mean"] = float(shift.abs().mean())
        out["shift_sd"] = float(shift.std(ddof=1))
        out["std_ratio_sd"] = float(df["std_ratio"].astype(np.float64).std(ddof=1))
        out["std_ratio_of_means"] = out["std_mean"] / out["teacher_std_mean"]
    return out


def _load_logits(run_dir: Path, split: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    from lskd.layout import logits_path

    tensors = read_tensors(logits_path(run_dir, split))
    return tensors["logits"], tensors["targets"]


def run_logit_stats(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Per-sample statistics of a finished run, against its teacher's logits on the same test samples.

    Temperature: :func:`lskd.analysis.collect.read_run`'s ``effective_temperature`` (``resolved.hparams.temperature``;
    CTKD: last learned ``temperature`` in ``history.csv``; CE/teacher runs: 1.0, with no teacher columns). The
    z-score convention for ``kl_T_zscore`` is the run's ``std``/``eps`` hyper-parameters (defaults
    ``unbiased``/``1e-7``). Raises ``ValueError`` when the teacher's targets differ from the run's.
    """
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    hparams = read_json(run_dir / "spec.json").get("resolved", {}).get("hparams", {})
    logits, targets = _load_logits(run_dir, info["split"])
    teacher = None
    teacher_dir = resolve_teacher_dir(run_dir, info["teacher_dir"])
    if info["role"] == "distill" and teacher_dir is not None:
        teacher, t_targets = _load_logits(teacher_dir, info["split"])  # the same images: test, or validation
        if not torch.equal(t_targets.long(), targets.long()):
            raise ValueError(f"{run_dir}: teacher {teacher_dir} was evaluated on other test samples (targets differ)")
    df = per_sample_stats(logits, targets, info["effective_temperature"], teacher,
                          std=hparams.get("std", "unbiased"), eps=float(hparams.get("eps", 1e-7)))
    df.attrs.update(run_dir=str(run_dir), teacher_dir=str(teacher_dir) if teacher is not None else "")
    return df


def write_stats_table(df: pd.DataFrame, out_path: str | os.PathLike) -> Path:
    """Write a per-sample table as safetensors (one 1-D tensor per column; attrs and column order as metadata)."""
    tensors = {c: torch.from_numpy(np.array(df[c].to_numpy(), copy=True, order="C")) for c in df.columns}
    meta = {"format": STATS_FORMAT, "columns": json.dumps(list(df.columns)),
            "attrs": json.dumps({k: v for k, v in df.attrs.items()}, sort_keys=True)}
    return write_tensors(out_path, tensors, metadata=meta)


def write_run_stats(run_dir: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Compute :func:`run_logit_stats` for ``run_dir`` and store it with :func:`write_stats_table`."""
    return write_stats_table(run_logit_stats(run_dir), out_path)


def read_run_stats(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_run_stats` (same columns, order, dtypes and ``attrs``)."""
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if meta.get("format") != STATS_FORMAT:
        raise ValueError(f"{path} is not an lskd logit-stats file (format {meta.get('format')!r})")
    tensors = read_tensors(path)
    df = pd.DataFrame({c: tensors[c].numpy() for c in json.loads(meta["columns"])})
    df.attrs.update(json.loads(meta.get("attrs", "{}")))
    return df


def run_summary(
    run_dir: str | os.PathLike,
    stats_path: str | os.PathLike | None = None,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`read_run`'s row merged with :func:`summarize_stats` of the run's per-sample table.

    ``stats_path``: a file from :func:`write_run_stats` to read instead of recomputing. ``record``: the run's row
    from :func:`lskd.analysis.collect_runs` (carries roles inferred across runs), else :func:`read_run` is called.
    The result is one row for :func:`lskd.analysis.tables.logit_summary_table`.
    """
    df = read_run_stats(stats_path) if stats_path is not None else run_logit_stats(run_dir)
    return {**(dict(record) if record is not None else read_run(run_dir)), **summarize_stats(df)}
