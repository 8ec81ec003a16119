"""The working folder that holds data, runs and the MLflow store (``./ionops-work`` by default)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def default_workdir() -> Path:
    """$IONOPS_WORKDIR, else ./ionops-work."""
    return Path(os.environ.get("IONOPS_WORKDIR", "ionops-work"))


def dataset_path(data: Any, workdir: Path | None = None) -> Path:
    """Where the dataset of an experiment's ``[data]`` section lives by default.

    The name holds what changes the content, so different settings never
    collide and the same settings find their file again.
    """
    name = f"{data.ionic_model}_f{data.fraction:g}_nt{data.n_t}_T{data.t_end_ms:g}_s{data.seed}.h5"
    return (workdir or default_workdir()) / "data" / name
