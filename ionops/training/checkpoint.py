"""Checkpoints that describe themselves and load without unpickling arbitrary objects.

A checkpoint is a plain dict of tensors and primitives: the surrogate family
and its constructor arguments, the model, optimizer and LR-scheduler states,
the RNG states (torch's global one and the shuffling generator), the number of
finished epochs, the training settings, the normalisers, the history of epoch
metrics, and the ionops version. It is written to a temporary file and renamed
into place, and read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from ionops.errors import DiskFull, UserError

FORMAT = "ionops-checkpoint"
FORMAT_VERSION = 1
FILENAME = "checkpoint.pt"
FULL_BELOW = 2**20  # free bytes under which a failed write is taken for a full disk


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` atomically: a killed process never leaves a half file under ``path``."""
    from ionops import __version__

    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "ionops_version": __version__}
    payload.update(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, temporary)
        temporary.replace(path)
    except (OSError, RuntimeError) as exc:
        # torch reports a full disk as "iostream error" without errno: look at the disk
        if shutil.disk_usage(path.parent).free < FULL_BELOW or getattr(exc, "errno", 0) == 28:
            raise DiskFull(f"disk full at {path.parent}: the checkpoint {path.name} could not "
                           "be written (the previous one is kept); free some space and run "
                           "the same command again", f" at {path.parent}") from None  # fmt: skip
        raise
    finally:
        temporary.unlink(missing_ok=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a foreign file is a clear error."""
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}") from None
    except Exception as exc:  # torch raises UnpicklingError and others for foreign files
        first = str(exc).strip().split(". ")[0] or type(exc).__name__
        raise UserError(
            f"{path} is not a loadable ionops checkpoint ({first}): cut short, or "
            "not written by ionops; remove it to start that run over"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not an ionops checkpoint")
    return state
