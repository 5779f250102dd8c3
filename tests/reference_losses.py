"""Independent float64 NumPy references for the loss tests, written from the papers' formulas.

They use probabilities and explicit sums (no log-softmax tricks, no torch), so they share no code path with
``lskd.losses``.
"""

from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def zscore(x: np.ndarray, ddof: int = 1, eps: float = 1e-7) -> np.ndarray:
    """lskd's z-score: ``(x - m) / sqrt(s_pop² + eps²) · sqrt((K - ddof) / K)``, i.e. the standard deviation with
    ``ddof`` and ``eps²·K/(K - ddof)`` under the square root (see ``lskd.losses.transforms``)."""
    k = x.shape[-1]
    var = x.var(axis=-1, ddof=ddof, keepdims=True)
    return (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(var + eps**2 * k / (k - ddof))


def transform_ref(x: np.ndarray, kind: str, ddof: int = 1, eps: float = 1e-7) -> np.ndarray:
    """The logit transforms as the LS paper writes them: centre and/or divide by (σ + ε)."""
    m, s = x.mean(axis=-1, keepdims=True), x.std(axis=-1, ddof=ddof, keepdims=True)
    return {"none": x, "center": x - m, "scale": x / (s + eps), "zscore": (x - m) / (s + eps)}[kind]


def zscore_official(x: np.ndarray, ddof: int = 1, eps: float = 1e-7) -> np.ndarray:
    """The official code's ``(x - m) / (std + eps)``."""
    return (x - x.mean(axis=-1, keepdims=True)) / (x.std(axis=-1, ddof=ddof, keepdims=True) + eps)


def kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sum(p * np.log(p / q), axis=-1)


def kd(s: np.ndarray, t: np.ndarray, temp: float) -> float:
    return float(np.mean(kl(softmax(t / temp), softmax(s / temp))) * temp**2)


def dkd_parts(s: np.ndarray, t: np.ndarray, y: np.ndarray, temp: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample T²·TCKD and T²·NCKD from the DKD paper's definitions."""
    ps, pt = softmax(s / temp), softmax(t / temp)
    rows = np.arange(len(y))
    bs = np.stack([ps[rows, y], 1 - ps[rows, y]], axis=1)
    bt = np.stack([pt[rows, y], 1 - pt[rows, y]], axis=1)
    keep = np.ones_like(ps, dtype=bool)
    keep[rows, y] = False
    nts = ps[keep].reshape(len(y), -1)
    ntt = pt[keep].reshape(len(y), -1)
    nts, ntt = nts / nts.sum(1, keepdims=True), ntt / ntt.sum(1, keepdims=True)
    return kl(bt, bs) * temp**2, kl(ntt, nts) * temp**2


def cc(s: np.ndarray, t: np.ndarray, temp: float) -> float:
    ps, pt = softmax(s / temp), softmax(t / temp)
    return float(((pt.T @ pt - ps.T @ ps) ** 2).sum() / s.shape[1])


def bc(s: np.ndarray, t: np.ndarray, temp: float) -> float:
    ps, pt = softmax(s / temp), softmax(t / temp)
    return float(((pt @ pt.T - ps @ ps.T) ** 2).sum() / s.shape[0])
