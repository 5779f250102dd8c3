"""Run under ``torchrun --nproc_per_node 2`` by tests/engine/test_distributed.py: one DDP step of a KD student.

Every rank builds the same student, its BatchNorm layers swapped for GroupNorm (per-image normalisation, so a
share of the batch is normalised exactly as in the whole batch; SyncBatchNorm, the trainer's option for this,
runs on GPUs only), and the same global batch, takes its share with :func:`lskd.engine.distributed.rank_slice`, scales its
loss with :func:`loss_scale` and steps backward through DistributedDataParallel. Rank 0 then computes the
one-process gradients of the whole batch on an identical copy and writes the largest difference per parameter
to the JSON file named on the command line.
"""

from __future__ import annotations

import copy
import json
import sys

import torch
from torch import nn

from lskd.engine import distributed as ddp
from lskd.engine.evaluate import create_model
from lskd.losses import build_method
from lskd.models import SMALL_STUDENT


def per_image_norm(model: nn.Module) -> nn.Module:
    """``model`` with every BatchNorm2d(c) replaced by GroupNorm(1, c)."""
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, nn.GroupNorm(1, child.num_features))
        else:
            per_image_norm(child)
    return model


def main(out: str, global_batch: int) -> None:
    ctx = ddp.context("cpu")
    torch.manual_seed(0)
    model = per_image_norm(create_model(SMALL_STUDENT, num_classes=10, in_chans=1))
    reference = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(global_batch, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (global_batch,), generator=gen)
    teacher = torch.randn(global_batch, 10, generator=gen) * 3
    method = build_method("kd", transform="zscore", temperature=2.0, kd_weight=9.0, ce_weight=0.1)

    mine = ddp.rank_slice(list(range(global_batch)), ctx)
    net = ddp.wrap_student(model, ctx, torch.device("cpu"))
    net.train()
    terms = method(net(x[mine]), teacher[mine], y[mine], 1)
    (sum(terms.values()) * ddp.loss_scale(len(mine), global_batch, ctx)).backward()

    if ctx.is_main:
        reference.train()
        ref_terms = method(reference(x), teacher, y, 1)
        sum(ref_terms.values()).backward()
        ddp_grads = dict(net.module.named_parameters())
        diffs = {name: float((ddp_grads[name].grad - p.grad).abs().max()) for name, p in reference.named_parameters()}
        scale = max(float(p.grad.abs().max()) for p in reference.parameters())
        with open(out, "w") as f:
            json.dump({"world": ctx.world, "ddp": isinstance(net, nn.parallel.DistributedDataParallel),
                       "shares": len(mine), "max_abs_diff": diffs, "max_abs_grad": scale}, f)
    ctx.barrier()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
