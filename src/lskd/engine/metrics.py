"""Classification metrics computed from logits: top-k accuracy, NLL and expected calibration error."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def topk_accuracy(logits: Tensor, targets: Tensor, k: int = 1) -> float:
    """Percentage of samples whose target is among the ``k`` largest logits."""
    k = min(k, logits.shape[-1])
    hits = (logits.topk(k, dim=-1).indices == targets[:, None]).any(dim=-1)
    return 100.0 * hits.double().mean().item()


def expected_calibration_error(logits: Tensor, targets: Tensor, bins: int = 15) -> float:
    """ECE (Guo et al., 2017): ``Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|`` over equal-width confidence bins, in %."""
    probs = F.softmax(logits.double(), dim=-1)
    confidence, prediction = probs.max(dim=-1)
    correct = (prediction == targets).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(confidence, edges[1:-1], right=True)
    ece = torch.zeros((), dtype=torch.float64)
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.double().mean() * (correct[in_bin].mean() - confidence[in_bin].mean()).abs()
    return 100.0 * ece.item()


def classification_metrics(logits: Tensor, targets: Tensor) -> dict[str, float]:
    """``top1``, ``top5`` (%), ``nll`` (nats) and ``ece`` (%) of a set of logits."""
    logits = logits.double()
    return {
        "top1": topk_accuracy(logits, targets, 1),
        "top5": topk_accuracy(logits, targets, 5),
        "nll": F.cross_entropy(logits, targets).item(),
        "ece": expected_calibration_error(logits, targets),
    }
