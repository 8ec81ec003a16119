"""The working folder that holds data, runs and the MLflow store (``./ionops-work`` by default)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write ``content`` to a temporary file and rename it into place: never a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(content, bytes):
        temporary.write_bytes(content)
    else:
        temporary.write_text(content)
    temporary.replace(path)


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (see :func:`write_atomic`)."""
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def default_workdir() -> Path:
    """$IONOPS_WORKDIR, else ./ionops-work."""
    return Path(os.environ.get("IONOPS_WORKDIR", "ionops-work"))


def dataset_path(data: Any, workdir: Path | None = None) -> Path:
    """Where the dataset of an experiment's ``[data]`` section lives by default.

    The name holds what changes the content, so different settings never
    collide and the same settings find their file again: an operator
    dataset's fraction, grid, horizon and seed; for a point, transition or trajectory
    dataset its counts, horizon and seed, and a digest of every other setting.
    """
    if data.kind == "operator":
        name = (f"{data.ionic_model}_f{data.fraction:g}_nt{data.n_t}_T{data.t_end_ms:g}"
                f"_s{data.seed}.h5")  # fmt: skip
    else:
        digest = hashlib.sha256(json.dumps(data.model_dump(mode="json"), sort_keys=True)
                                .encode()).hexdigest()[:8]  # fmt: skip
        counts = f"n{data.train}-{data.validation}-{data.test}_T{data.t_end_ms:g}"
        name = f"{data.ionic_model}_{data.kind}_{counts}_s{data.seed}_{digest}.h5"
    return (workdir or default_workdir()) / "data" / name


def ensure_dataset(experiment: Any, workdir: Path) -> Path:
    """The experiment's dataset file, generated first (serially) when it is missing."""
    from ionops.datasets.generate import generate, spec_from_config

    path = dataset_path(experiment.data, workdir)
    if not path.exists():
        print(f"no dataset at {path}: generating it first (ionops generate {experiment.name})")
        generate(spec_from_config(experiment.data), path)
    return path
