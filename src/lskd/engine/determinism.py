"""Seeding. Every random stream of a run is a pure function of ``(seed, epoch, purpose)``, so a run resumed at
an epoch boundary draws exactly what an uninterrupted run draws, and students trained in lockstep see the same
batches as when trained alone."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from a base seed and labels (stable across processes and Python versions)."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


class RngStream:
    """A private torch CPU random stream that code can borrow the global RNG from.

    ``with stream: ...`` swaps the stream's state into the global generator (used by torchvision transforms and
    dropout) and swaps it back out afterwards, so interleaved consumers (the data pipeline and each student) do
    not perturb each other.
    """

    def __init__(self, seed: int) -> None:
        self.state = generator(seed).get_state()
        self._saved: torch.Tensor | None = None

    def __enter__(self) -> RngStream:
        self._saved = torch.get_rng_state()
        torch.set_rng_state(self.state)
        return self

    def __exit__(self, *exc: object) -> None:
        self.state = torch.get_rng_state()
        assert self._saved is not None
        torch.set_rng_state(self._saved)
