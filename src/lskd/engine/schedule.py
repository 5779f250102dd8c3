"""Learning-rate schedules as pure functions of the (1-based) epoch, so a resumed run needs no scheduler state."""

from __future__ import annotations

import math

from lskd.engine.spec import OptimSpec


def lr_at(epoch: int, optim: OptimSpec) -> float:
    """Learning rate for ``epoch`` (1-based).

    * warm-up: ``lr · epoch / warmup_epochs`` for ``epoch ≤ warmup_epochs``;
    * ``multistep``: ``lr · gamma^#{m in milestones : epoch > m}`` (mdistiller's convention: the decay at
      milestone 150 applies from epoch 151);
    * ``cosine``: ``lr · (1 + cos(π (epoch − 1) / epochs)) / 2``.
    """
    if optim.warmup_epochs and epoch <= optim.warmup_epochs:
        return optim.lr * epoch / optim.warmup_epochs
    if optim.schedule == "cosine":
        return optim.lr * (1 + math.cos(math.pi * (epoch - 1) / optim.epochs)) / 2
    return optim.lr * optim.gamma ** sum(epoch > m for m in optim.milestones)
