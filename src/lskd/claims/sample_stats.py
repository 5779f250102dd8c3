"""Per-sample quantities behind the claims audit (:mod:`lskd.claims`).

For one test sample with student logits ``z ∈ R^K``, teacher logits ``v ∈ R^K``, ``m(·)`` the mean over the ``K``
classes and ``σ(·)`` the standard deviation (``ddof=1``, as the official code), Sun et al. (CVPR 2024):

======================  ============================================================================================
column                  formula
======================  ============================================================================================
residual_spread         ``σ(z − v) / σ(v)``: the spread of ``z − v`` around its per-sample mean, relative to the
                        teacher's scale. 0 iff ``z = v + c`` (a pure per-sample shift, the optimum of KD with a
                        shared temperature, Eq. 11)
zscore_residual         ``σ(ẑ − v̂)`` with ``ẑ = Z(z)``, ``v̂ = Z(v)`` the z-scored logits (``Z(x) = (x − m(x)) / σ(x)``):
                        the residual left once shift *and* scale are removed, on the teacher's scale (``σ(v̂) = 1``).
                        0 iff ``z = a·v + b`` with ``a > 0`` (the optimum of the LS loss). Equals
                        ``√(2(1 − r))``, ``r`` the per-sample Pearson correlation of ``z`` and ``v``
log_std_ratio           ``log(σ(z) / σ(v))``, signed: where the student's logit range sits relative to the teacher's
                        (Eq. 12: a shared temperature drives it to 0)
kendall, spearman       rank agreement of ``z`` with ``v`` (:func:`lskd.analysis.logit_stats.rowwise_kendall`)
topk_overlap            ``|top_k(z) ∩ top_k(v)| / k`` with ``k = min(TOP_K, K − 1)``
kl_t1                   ``KL(softmax(v) ‖ softmax(z))``: the shared-temperature KL at ``T = 1`` (the toy case, §4.3.1)
kl_t1_zscore            the same after z-scoring both (``Z(x) = (x − m(x)) / (σ(x) + eps)``, base temperature 1)
correct                 ``argmax z == y``
sigma, teacher_sigma    ``σ(z)`` and ``σ(v)``: with z-score and base temperature τ the softmax sees
                        ``(v − m(v)) / (σ(v)·τ)``, i.e. a per-sample temperature ``σ(v)·τ`` (and ``σ(z)·τ``)
teacher_abs_mean        ``|m(v)|`` (Fig. 5a compares teachers' logit means and stds)
======================  ============================================================================================

A student ``z = a·v + b`` (``a > 0``) has ``residual_spread = |a − 1|``, ``zscore_residual = 0``,
``log_std_ratio = log a``, rank agreement 1, ``kl_t1_zscore ≈ 0``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lskd.analysis.logit_stats import _chunks, rowwise_kendall, rowwise_spearman
from lskd.losses import kd_loss, standardize

#: Largest ``k`` of the top-k overlap (capped at ``K − 1`` so that it is never trivially 1).
TOP_K = 5
#: Temperature of the shared-temperature KL of the authentic-evaluation claim (the paper's toy case, T = 1).
EVAL_TEMPERATURE = 1.0
#: Columns of :func:`claim_sample_stats` that compare a student with its teacher.
STUDENT_COLUMNS: tuple[str, ...] = (
    "residual_spread", "zscore_residual", "log_std_ratio", "kendall", "spearman", "topk_overlap", "kl_t1", "kl_t1_zscore",
    "correct", "sigma", "teacher_sigma",
)


def top_k(num_classes: int) -> int:
    """The ``k`` of the top-k overlap for ``K`` classes: ``min(TOP_K, K − 1)`` (at least 1)."""
    return max(1, min(TOP_K, num_classes - 1))


def topk_overlap(z: np.ndarray, v: np.ndarray, k: int) -> np.ndarray:
    """``|top_k(z) ∩ top_k(v)| / k`` per row of ``(N, K)`` arrays (ties broken by ``argpartition``)."""
    n, kk = z.shape
    mask_z = np.zeros((n, kk), dtype=bool)
    mask_v = np.zeros((n, kk), dtype=bool)
    rows = np.arange(n)[:, None]
    mask_z[rows, np.argpartition(-z, k - 1, axis=1)[:, :k]] = True
    mask_v[rows, np.argpartition(-v, k - 1, axis=1)[:, :k]] = True
    return (mask_z & mask_v).sum(axis=1) / k


def residual_spread(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``σ(z − v) / σ(v)`` per row (Eq. 11: 0 for a student that is the teacher plus a per-sample constant)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (z - v).std(axis=1, ddof=1) / v.std(axis=1, ddof=1)


def zscore_residual(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``σ(Z(z) − Z(v))`` per row, ``Z`` the per-sample z-score (``ddof=1``, no eps): 0 for ``z = a·v + b``, ``a > 0``
    (shift and scale removed: the optimum of the LS loss)."""
    def zs(x: np.ndarray) -> np.ndarray:
        return (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, ddof=1, keepdims=True)

    with np.errstate(invalid="ignore", divide="ignore"):
        return (zs(z) - zs(v)).std(axis=1, ddof=1)


def log_std_ratio(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``log(σ(z) / σ(v))`` per row, signed (Eq. 12: KD with a shared temperature drives it to 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(z.std(axis=1, ddof=1)) - np.log(v.std(axis=1, ddof=1))


def shared_and_zscored_kl(z: np.ndarray, v: np.ndarray, temperature: float = EVAL_TEMPERATURE) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample ``T²·KL(softmax(v/T) ‖ softmax(z/T))`` on raw and on z-scored logits (:func:`lskd.losses.kd_loss`)."""
    zt, vt = torch.from_numpy(z), torch.from_numpy(v)
    raw = kd_loss(zt, vt, temperature, "none", reduction="none").numpy()
    zs = kd_loss(zt, vt, temperature, "zscore", reduction="none").numpy()
    return raw, zs


def effective_temperature_gap(v: np.ndarray, tau: float) -> float:
    """``max |softmax(Z(v)/τ) − softmax((v − m(v)) / (σ(v)·τ))|`` over all samples and classes.

    The two are equal up to the ``eps`` the official code adds to σ: z-score *is* a per-sample temperature
    ``σ(v)·τ``. Returned so that the audit can state how exactly the identity holds on the run's own logits.
    """
    vt = torch.from_numpy(v)
    zs = torch.softmax(standardize(vt, "zscore") / tau, dim=1)
    sigma = vt.std(dim=1, keepdim=True)
    per_sample = torch.softmax((vt - vt.mean(dim=1, keepdim=True)) / (sigma * tau), dim=1)
    return float((zs - per_sample).abs().max()) if len(v) else 0.0


def claim_sample_stats(
    logits: np.ndarray,
    teacher_logits: np.ndarray,
    targets: np.ndarray,
    stats: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per test sample with :data:`STUDENT_COLUMNS` (float32; ``correct`` bool).

    ``stats``: the run's stored per-sample table (:func:`lskd.analysis.read_run_stats`); its ``kendall`` and
    ``spearman`` columns are reused when present (Kendall's tau-b is the slowest statistic at large ``K``),
    otherwise they are computed here with the same functions.
    """
    z_all, v_all = np.asarray(logits, dtype=np.float64), np.asarray(teacher_logits, dtype=np.float64)
    y_all = np.asarray(targets).ravel()
    if z_all.shape != v_all.shape or z_all.ndim != 2 or len(y_all) != len(z_all):
        raise ValueError(f"student {z_all.shape}, teacher {v_all.shape} and targets {y_all.shape} do not match")
    reuse = stats is not None and {"kendall", "spearman"} <= set(stats.columns) and len(stats) == len(z_all)
    k = top_k(z_all.shape[1])
    parts: list[dict[str, np.ndarray]] = []
    for sl in _chunks(*z_all.shape):
        z, v = z_all[sl], v_all[sl]
        kl, kl_z = shared_and_zscored_kl(z, v)
        cols = {
            "residual_spread": residual_spread(z, v),
            "zscore_residual": zscore_residual(z, v),
            "log_std_ratio": log_std_ratio(z, v),
            "topk_overlap": topk_overlap(z, v, k),
            "kl_t1": kl,
            "kl_t1_zscore": kl_z,
            "correct": z.argmax(axis=1) == y_all[sl],
            "sigma": z.std(axis=1, ddof=1),
            "teacher_sigma": v.std(axis=1, ddof=1),
        }
        if not reuse:
            cols["kendall"], cols["spearman"] = rowwise_kendall(z, v), rowwise_spearman(z, v)
        parts.append(cols)
    out = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]} if parts else {}
    if reuse:
        assert stats is not None
        out["kendall"], out["spearman"] = stats["kendall"].to_numpy(), stats["spearman"].to_numpy()
    df = pd.DataFrame({c: out[c].astype(bool if c == "correct" else np.float32) for c in STUDENT_COLUMNS
                       if c in out})
    df.attrs.update(top_k=k, num_classes=int(z_all.shape[1]))
    return df


def teacher_sample_stats(teacher_logits: np.ndarray) -> pd.DataFrame:
    """Per test sample ``teacher_sigma = σ(v)`` and ``teacher_abs_mean = |m(v)|`` (float32)."""
    v = np.asarray(teacher_logits, dtype=np.float64)
    return pd.DataFrame({"teacher_sigma": v.std(axis=1, ddof=1).astype(np.float32),
                         "teacher_abs_mean": np.abs(v.mean(axis=1)).astype(np.float32)})


__all__ = [
    "EVAL_TEMPERATURE", "STUDENT_COLUMNS", "TOP_K", "claim_sample_stats", "effective_temperature_gap",
    "log_std_ratio", "residual_spread", "shared_and_zscored_kl", "teacher_sample_stats", "top_k", "topk_overlap",
    "zscore_residual",
]
