"""Preemption: SIGTERM (or SIGUSR1) during training ends the job at the next step with a mid-epoch checkpoint.

SLURM sends SIGTERM before it preempts a job or when the job reaches its time limit (and, with
``sbatch --signal=USR1@<seconds>``, SIGUSR1 that many seconds earlier), then SIGKILL after the cluster's
``KillWait`` (30 s by default). One optimiser step of a CIFAR or Fashion-MNIST group is well inside that, so the
trainer finishes the step it is in, writes every student's checkpoint at that step (model, optimiser, the
student's random stream, the epoch's running loss sums and the position in the epoch's sample order; see
:mod:`lskd.engine.checkpoint`) and exits with :data:`EXIT_PREEMPTED`. The rerun (Snakemake's ``retries``, or
SLURM's requeue of a preempted job) resumes at that step and ends bit-identical to a run that was never stopped:
the sample order and each item's augmentation are functions of (seed, epoch, index) alone.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

EXIT_PREEMPTED = 143  # 128 + SIGTERM, the shell's code for "terminated": Snakemake and SLURM read it as a failure to retry
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(SystemExit):
    """Training stopped on a signal after writing its mid-epoch checkpoints; exits with :data:`EXIT_PREEMPTED`."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_PREEMPTED)
        self.message = message

    def __str__(self) -> str:
        return self.message


class StopRequest:
    """``with StopRequest() as stop:`` turns SIGTERM/SIGUSR1 into ``stop.requested`` (checked between steps).

    The previous handlers come back on exit. Outside the main thread (where Python cannot install handlers) it is
    inert and ``requested`` stays false.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            print(f"received {signal.Signals(signum).name}: stopping after the current step with a checkpoint",
                  file=sys.stderr, flush=True)
        self.signal = signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
