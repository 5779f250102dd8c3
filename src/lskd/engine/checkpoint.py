"""Per-epoch checkpoints: written atomically, verified by SHA-256, two generations deep, loaded without running code.

A generation is three files in ``<run>/checkpoint/``: ``<slot>.safetensors`` (weights of the student and of the
method, such as CTKD's temperature), ``<slot>_state.pt`` (optimizer state, epoch, history; read with
``torch.load(weights_only=True)``, so a crafted pickle cannot run code) and ``<slot>.json``, the manifest: epoch,
spec fingerprint and the SHA-256 of the two other files, sealed by a SHA-256 of its own content.

Saving epoch N writes the ``next`` generation (each file atomically, the manifest last), then renames ``last`` to
``prev`` and ``next`` to ``last``. Loading verifies every generation present (seal, both hashes) before anything
is unpickled and resumes from the newest intact one. Hence:

- a kill at any moment, even between two files or in the middle of the renames, leaves an intact generation, at
  worst one epoch older than the newest;
- an error while saving (a full disk) leaves ``last`` untouched and raises :class:`CheckpointWriteError`;
- a truncated or bit-flipped file fails its hash: its generation is skipped with a warning that names it, and the
  run resumes from the previous intact generation (from epoch 1 when none is left). Corrupt state is never used,
  and because a run is a pure function of its spec, resuming from an older generation ends in the same bytes;
- a file that matches its hash but is not a plain tensor pickle (a crafted file with a forged manifest) is refused
  with :class:`CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from lskd.engine.io import (
    atomic_write,
    read_tensors,
    sha256_file,
    write_json,
    write_tensors,
)

FOLDER = "checkpoint"
SLOTS = ("next", "last", "prev")
WEIGHTS = f"{FOLDER}/last.safetensors"
STATE = f"{FOLDER}/last_state.pt"
MANIFEST = f"{FOLDER}/last.json"


class CheckpointError(RuntimeError):
    """A checkpoint exists but must not be used (another run's, or not written by lskd)."""


class CheckpointWriteError(CheckpointError):
    """Writing a checkpoint failed (e.g. the disk is full); the previous generation is untouched."""


class _Unusable(Exception):
    """One generation fails verification; the message says why."""


def _files(out_dir: Path, slot: str) -> dict[str, Path]:
    folder = Path(out_dir) / FOLDER
    return {"weights": folder / f"{slot}.safetensors", "state": folder / f"{slot}_state.pt",
            "manifest": folder / f"{slot}.json"}


def _seal(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def module_tensors(model: nn.Module, method: nn.Module) -> dict[str, torch.Tensor]:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"method.{k}": v for k, v in method.state_dict().items()})
    return tensors


def save_checkpoint(out_dir: Path, model: nn.Module, method: nn.Module, optimizer: torch.optim.Optimizer,
                    epoch: int, history: list[dict[str, Any]], fingerprint: str,
                    partial: dict[str, Any] | None = None) -> None:
    """Write the epoch's generation (manifest last), then make it ``last`` and the former ``last`` ``prev``.

    ``epoch`` is the last completed epoch. ``partial`` (a preempted job, :mod:`lskd.engine.preempt`) is the state
    ``step`` optimiser steps into epoch ``epoch + 1``: tensors, numbers and dicts of them only (``step``, the
    student's random stream, the running loss sums); the manifest then records that ``step`` too.
    """
    new = _files(out_dir, "next")
    state = {"epoch": epoch, "optimizer": optimizer.state_dict(), "history": history, "fingerprint": fingerprint}
    step = int(partial["step"]) if partial else 0
    if partial:
        state["partial"] = partial
    try:
        write_tensors(new["weights"], module_tensors(model, method), metadata={"epoch": str(epoch)})
        atomic_write(new["state"], lambda p: torch.save(state, p))
        body = {"epoch": epoch, "fingerprint": fingerprint,
                "sha256": {"weights": sha256_file(new["weights"]), "state": sha256_file(new["state"])}}
        if step:
            body["step"] = step
        write_json(new["manifest"], {**body, "seal": _seal(body)})
    except Exception as err:  # torch.save reports a full disk as RuntimeError, safetensors as its own error
        for path in new.values():
            path.unlink(missing_ok=True)
        raise CheckpointWriteError(
            f"could not write the epoch-{epoch} checkpoint in {new['weights'].parent}: {err}. {_kept(out_dir)} "
            "Free space (or fix the folder) and rerun the same command: the run resumes from there.") from err
    for old, young in (("last", "prev"), ("next", "last")):
        src, dst = _files(out_dir, old), _files(out_dir, young)
        for kind in ("weights", "state", "manifest"):
            if src[kind].exists():
                src[kind].replace(dst[kind])


def _kept(out_dir: Path) -> str:
    try:
        return f"The epoch-{_verify(_files(out_dir, 'last'))['epoch']} checkpoint is untouched."
    except _Unusable:
        return "No earlier checkpoint exists, so a rerun starts from epoch 1."


def _verify(files: dict[str, Path]) -> dict[str, Any]:
    """The manifest body of an intact generation; raises :class:`_Unusable` saying what is wrong."""
    if not files["manifest"].exists():
        raise _Unusable("no manifest (a write that did not finish, or a checkpoint without checksums)")
    try:
        manifest = json.loads(files["manifest"].read_text())
        body = {k: manifest[k] for k in ("epoch", "fingerprint", "sha256")}
        if "step" in manifest:  # a mid-epoch generation (preempted job)
            body["step"] = manifest["step"]
        sealed = manifest["seal"] == _seal(body)
    except (ValueError, KeyError, TypeError) as err:
        raise _Unusable(f"unreadable manifest ({type(err).__name__}: {err})") from None
    if not sealed:
        raise _Unusable("the manifest does not match its own SHA-256 (corrupted)")
    for kind in ("weights", "state"):
        path, recorded = files[kind], body["sha256"][kind]
        if not path.exists():
            raise _Unusable(f"{path.name} is missing")
        found = sha256_file(path)
        if found != recorded:
            raise _Unusable(f"{path.name} has SHA-256 {found[:16]}… but {recorded[:16]}… was recorded when it was "
                            "written (truncated or corrupted)")
    return body


class Resume(NamedTuple):
    """What :func:`load_checkpoint` restored: the last completed epoch, the history up to it, and for a mid-epoch
    generation the ``partial`` state of :func:`save_checkpoint` (else ``None``)."""

    epoch: int
    history: list[dict[str, Any]]
    partial: dict[str, Any] | None = None


def load_checkpoint(out_dir: Path, model: nn.Module, method: nn.Module, optimizer: torch.optim.Optimizer,
                    fingerprint: str, *, label: str = "") -> Resume:
    """Restore the newest intact generation (by epoch, then step); :class:`Resume` ``(0, [])`` when none is."""
    intact, skipped = [], []
    for slot in SLOTS:
        files = _files(out_dir, slot)
        if not any(p.exists() for p in files.values()):
            continue
        try:
            intact.append((_verify(files), files))
        except _Unusable as why:
            skipped.append(f"{files['manifest'].parent / slot}.*: {why}")
    intact.sort(key=lambda item: (item[0]["epoch"], item[0].get("step", 0)), reverse=True)
    if skipped:
        then = (f"resuming from the intact epoch-{intact[0][0]['epoch']} checkpoint" if intact
                else "no intact checkpoint is left, starting from epoch 1")
        print(f"[{label or out_dir}] warning: skipping unusable checkpoint files ({'; '.join(skipped)}); {then}",
              file=sys.stderr)
    if not intact:
        return Resume(0, [])
    body, files = intact[0]
    if body["fingerprint"] != fingerprint:
        raise CheckpointError(
            f"{files['manifest']} belongs to a different run spec (fingerprint {body['fingerprint']} != "
            f"{fingerprint}); delete the run folder or choose another output folder")
    try:
        state = torch.load(files["state"], map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (refused whatever the cause; never retried unsafely)
        raise CheckpointError(
            f"{files['state']} matches its recorded SHA-256 but cannot be read with weights_only=True (lskd never "
            f"unpickles arbitrary objects), so lskd did not write it; refusing it. Delete {files['state'].parent} "
            f"to restart the run. ({type(err).__name__}: {err})") from None
    partial = state.get("partial") if isinstance(state, dict) else None
    if (not isinstance(state, dict) or state.get("epoch") != body["epoch"]
            or (int(partial["step"]) if partial else 0) != body.get("step", 0)):
        raise CheckpointError(f"{files['state']} does not hold the epoch-{body['epoch']} state its manifest names")
    tensors = read_tensors(files["weights"])
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    method.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("method.")})
    optimizer.load_state_dict(state["optimizer"])
    return Resume(int(body["epoch"]), list(state["history"]), partial)


def remove_checkpoint(out_dir: Path) -> None:
    """Drop the resume files once the run's final outputs are written."""
    shutil.rmtree(Path(out_dir) / FOLDER, ignore_errors=True)
