"""What the search and the retraining share: Ray for a dataset, GPUs per trial, files, signals."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ionops.config import ExperimentConfig

EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: stopped early (signal, time limit), can be resumed


def load_data(experiment: ExperimentConfig, workdir: Path) -> Any:
    """The experiment's dataset (generated first if missing), normalised, in memory."""
    from ionops.datasets.loading import load_dataset
    from ionops.workdir import ensure_dataset

    return load_dataset(ensure_dataset(experiment, workdir), experiment.training.normalisation)


def connect_for(data: Any, address: str | None) -> Any:
    """Ray for this driver, with an object store that holds the dataset twice over."""
    from ionops.cluster.runtime import connect

    dataset_bytes = sum(s.inputs.nbytes + s.targets.nbytes for s in data.splits.values())
    return connect(address, object_store_bytes=2 * dataset_bytes + 64 * 2**20)


def gpus_per_trial(experiment: ExperimentConfig, cluster_gpus: float) -> float:
    """``search.gpus_per_trial``; ``"auto"`` is half a GPU where the cluster has GPUs."""
    wanted = experiment.search.gpus_per_trial
    if wanted == "auto":
        return 0.5 if cluster_gpus > 0 else 0.0
    return float(wanted)


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)


@contextmanager
def sigterm_as_sigusr1() -> Iterator[None]:
    """SIGTERM (a time limit, ``kill``) stops Tune as gracefully as SIGUSR1 does."""

    def forward(signum: int, frame: Any) -> None:
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
