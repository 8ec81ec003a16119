"""The working folder that holds data, runs and the MLflow store (``./ionops-work`` by default)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ionops.errors import UserError


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
    """Where the dataset of an experiment's ``[data]`` section lives by default: its kind's
    file name (every setting of the content in it, so different settings never share a
    file and the same settings find theirs again) under ``WORKDIR/data``."""
    from ionops.datasets.kinds import get_kind

    return (workdir or default_workdir()) / "data" / get_kind(data.kind).file_name(data)


def ensure_dataset(experiment: Any, workdir: Path, path: Path | None = None) -> Path:
    """The experiment's dataset file, checked against its ``[data]``.

    Without ``path``, the default file (:func:`dataset_path`), generated first
    (serially) when it is missing. A file whose recorded settings differ from
    ``[data]`` is refused, naming each setting with both values.
    """
    from ionops.datasets.generate import generate, spec_from_config
    from ionops.datasets.identity import check_dataset

    given = path is not None
    file = Path(path) if path is not None else dataset_path(experiment.data, workdir)
    if not given and not file.exists():
        print(f"no dataset at {file}: generating it first (ionops generate {experiment.name})")
        generate(spec_from_config(experiment.data), file)
    if given and file.is_dir():
        inside = sorted(p.name for p in file.glob("*.h5"))[:5]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise UserError(f"--data {file} is a folder; give a dataset file{hint}")
    if given and not file.is_file():
        raise UserError(f"--data {file}: no such dataset file")
    fix = "give the dataset of these settings, or set these [data] keys to the file's"
    if not given:
        fix = (f"generate it again with `ionops generate {experiment.name} --overwrite` and the "
               "same --set options, or set these [data] keys to the file's")  # fmt: skip
    check_dataset(experiment.data, file, fix)
    return file
