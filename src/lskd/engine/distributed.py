"""Data-parallel training with PyTorch's own engine: ``torchrun`` processes, DistributedDataParallel students.

``execution.processes_per_job: N`` makes every training job run as ``torchrun --standalone --nproc_per_node N``
(one process per GPU, or N CPU processes on the gloo backend). Inside, :func:`context` reads torchrun's
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and starts the process group. The trainer then:

- splits every **global** batch of the one-process run (``optim.batch_size`` images, same seeded order) over the
  ranks, rank ``r`` taking positions ``r, r + N, …`` of it (:func:`rank_slice`). An N-process run therefore sees
  exactly the batches of a one-process run, where ``DistributedSampler`` would draw its own order and pad the
  last batch with repeated images; the learning rate stays the one configured for that global batch (no
  scaling rule is applied, and ``spec.json`` says so);
- wraps only the students in ``DistributedDataParallel``; the teacher runs in eval mode in every process;
- scales each rank's loss by ``N · n_r / n`` (``n_r`` of the batch's ``n`` images on rank ``r``), so DDP's
  average of the ranks' gradients is the gradient of the mean loss over the global batch, also when the last
  batch does not split evenly. With ``execution.sync_batchnorm`` the students' BatchNorm layers use
  ``SyncBatchNorm`` (statistics over the global batch); without it each rank normalises its own share;
- agrees across ranks on a non-finite loss and on a stop request (:mod:`lskd.engine.preempt`) before acting;
- evaluates each rank's share of the evaluation set and gathers the logits of all of them in the original order
  (:func:`gather_in_order`), and sums the training loss and accuracy over ranks, so every metric covers the whole
  set, never rank 0's share;
- writes every file from rank 0 only, checkpoints after a barrier; every rank reads them when resuming.

Batch-level loss terms (MLKD's class-level and batch-level alignment) are computed over each rank's share of the
batch, as in every DDP implementation of them; a one-process run computes them over the global batch.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Context:
    """This process's place in the job: ``world`` processes, this one ``rank`` (``local_rank`` on its node)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_sum(self, value: Tensor) -> Tensor:
        """``value`` summed over ranks (the tensor itself in a one-process run)."""
        if not self.enabled:
            return value
        out = value.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def any(self, flag: bool, device: torch.device) -> bool:
        """True when ``flag`` is true on any rank (so every rank takes the same branch)."""
        if not self.enabled:
            return flag
        return bool(self.all_sum(torch.tensor(int(flag), device=device)).item())


SINGLE = Context()


def context(device_type: str) -> Context:
    """The job's :class:`Context` from torchrun's environment; starts the process group once (NCCL on CUDA, gloo
    on CPU). Outside torchrun it is the one-process :data:`SINGLE`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    ctx = Context(world, int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return ctx


def rank_slice(batch: list[int], ctx: Context) -> list[int]:
    """Rank ``r``'s share of a global batch: its positions ``r, r + N, r + 2N, …``."""
    return batch[ctx.rank::ctx.world]


def loss_scale(local: int, total: int, ctx: Context) -> float:
    """``N · n_r / n``: with DDP averaging gradients over N ranks, the result is the global batch mean's gradient."""
    return ctx.world * local / total if ctx.enabled else 1.0


def wrap_student(model: nn.Module, ctx: Context, device: torch.device) -> nn.Module:
    """The student as trained: DDP over the ranks, the module itself alone (the trainer converts BatchNorm to
    SyncBatchNorm first when asked, so that the module it saves is the one DDP wraps)."""
    if not ctx.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def sync_buffers(model: nn.Module, ctx: Context) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank, so that all ranks evaluate the model that
    rank 0 saves: DDP broadcasts them at the start of each training forward, and each rank's own share then
    moves them a little."""
    if ctx.enabled:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


def gather_in_order(logits: Tensor, targets: Tensor, total: int, ctx: Context) -> tuple[Tensor, Tensor]:
    """Every rank's evaluation share (rank ``r`` holds items ``r, r + N, …``) put back in the set's order."""
    if not ctx.enabled:
        return logits, targets
    width = -(-total // ctx.world)  # the largest share
    pad = width - logits.shape[0]
    lg = torch.cat([logits, logits.new_zeros(pad, logits.shape[1])])
    tg = torch.cat([targets, targets.new_zeros(pad)])
    all_lg = [torch.empty_like(lg) for _ in range(ctx.world)]
    all_tg = [torch.empty_like(tg) for _ in range(ctx.world)]
    dist.all_gather(all_lg, lg)
    dist.all_gather(all_tg, tg)
    out_lg = logits.new_empty(total, logits.shape[1])
    out_tg = targets.new_empty(total)
    for r in range(ctx.world):
        n = len(range(r, total, ctx.world))
        out_lg[r::ctx.world] = all_lg[r][:n]
        out_tg[r::ctx.world] = all_tg[r][:n]
    return out_lg, out_tg
