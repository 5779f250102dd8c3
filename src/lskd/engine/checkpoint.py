"""Per-epoch checkpoints, written atomically, resumed automatically, loaded without executing code.

``checkpoint/last.safetensors`` holds the weights (student and method parameters such as CTKD's temperature);
``checkpoint/last_state.pt`` holds the optimizer state, the epoch, the history so far and the spec fingerprint,
and is read with ``torch.load(weights_only=True)`` so a crafted pickle cannot run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lskd.engine.io import atomic_write, read_tensors, write_tensors

WEIGHTS = "checkpoint/last.safetensors"
STATE = "checkpoint/last_state.pt"


def module_tensors(model: nn.Module, method: nn.Module) -> dict[str, torch.Tensor]:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"method.{k}": v for k, v in method.state_dict().items()})
    return tensors


def save_checkpoint(out_dir: Path, model: nn.Module, method: nn.Module, optimizer: torch.optim.Optimizer,
                    epoch: int, history: list[dict[str, Any]], fingerprint: str) -> None:
    """Write weights first, then the state that names the epoch: a crash between the two resumes one epoch
    earlier with weights it will overwrite, never with state that points at missing weights."""
    write_tensors(out_dir / WEIGHTS, module_tensors(model, method), metadata={"epoch": str(epoch)})
    state = {"epoch": epoch, "optimizer": optimizer.state_dict(), "history": history, "fingerprint": fingerprint}
    atomic_write(out_dir / STATE, lambda p: torch.save(state, p))


def load_checkpoint(out_dir: Path, model: nn.Module, method: nn.Module, optimizer: torch.optim.Optimizer,
                    fingerprint: str) -> tuple[int, list[dict[str, Any]]]:
    """Restore a run; returns ``(last finished epoch, history)``, or ``(0, [])`` when there is no checkpoint."""
    state_path, weights_path = out_dir / STATE, out_dir / WEIGHTS
    if not state_path.exists() or not weights_path.exists():
        return 0, []
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    if state["fingerprint"] != fingerprint:
        raise RuntimeError(
            f"{state_path} belongs to a different run spec (fingerprint {state['fingerprint']} != {fingerprint}); "
            "delete the run folder or choose another output folder"
        )
    tensors = read_tensors(weights_path)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    method.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("method.")})
    optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"]), list(state["history"])


def remove_checkpoint(out_dir: Path) -> None:
    """Drop the resume files once the run's final outputs are written."""
    for name in (STATE, WEIGHTS):
        (out_dir / name).unlink(missing_ok=True)
    folder = out_dir / "checkpoint"
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()
