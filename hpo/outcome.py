"""A search's results as its folder keeps them: ``search.json``, ``trials.csv``, ``best.json``.

What :mod:`ionops.hpo.search` writes when a search ends (or stops early), and
what the retraining and the report read back, without Ray.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ionops.config import ExperimentConfig, validate_experiment
from ionops.errors import UserError

STATE_FILE = "search.json"


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the search left it."""

    index: int  # the order in which the search proposed it, from 1
    trial_id: str
    outcome: str  # completed, stopped (by ASHA), errored, unfinished
    epochs: int
    metric: float
    point: dict[str, Any]
    eval_seconds: float = math.nan  # the last evaluation of its validation split

    def row(self, metric: str) -> dict[str, Any]:
        return {"index": self.index, "trial_id": self.trial_id, "outcome": self.outcome,
                "epochs": self.epochs, metric: self.metric, "eval_seconds": self.eval_seconds,
                **self.point}  # fmt: skip


@dataclass(frozen=True)
class SearchOutcome:
    """What a search produced: its folder, whether it is complete, its trials and the best."""

    folder: Path
    complete: bool
    trials: list[TrialRecord]
    best: TrialRecord | None
    parent_run_id: str
    metric: str


def load_outcome(folder: Path) -> SearchOutcome:
    """A search as its folder records it (``trials.csv``, ``best.json``, ``search.json``)."""
    state_path = folder / STATE_FILE
    if not state_path.exists():
        raise UserError(f"no search in {folder} (no {STATE_FILE}); run `ionops tune` first")
    state = json.loads(state_path.read_text())
    metric = recorded_metric(folder, state)
    trials = []
    if (folder / "trials.csv").exists():
        with (folder / "trials.csv").open() as handle:
            for row in csv.DictReader(handle):
                fixed = ("index", "trial_id", "outcome", "epochs", metric, "eval_seconds")
                point = {k: _parse(v) for k, v in row.items() if k not in fixed}
                trials.append(TrialRecord(
                    int(row["index"]), row["trial_id"], row["outcome"], int(row["epochs"]),
                    float(row[metric]), point, float(row.get("eval_seconds") or math.nan),
                ))  # fmt: skip
    best = None
    if (folder / "best.json").exists():
        best = TrialRecord(**json.loads((folder / "best.json").read_text()))
    return SearchOutcome(folder, bool(state.get("complete")), trials, best,
                         state["parent_run_id"], metric)  # fmt: skip


def recorded_metric(folder: Path, state: dict[str, Any]) -> str:
    """The metric a search minimised: as its state records it, or (a search from before the
    metric was recorded) its family's validation metric."""
    if "metric" in state:
        return str(state["metric"])
    from ionops.hpo.trainable import search_metric

    return search_metric(validate_experiment(state["experiment"], str(folder / STATE_FILE)))


def experiment_of(folder: Path) -> ExperimentConfig:
    """The experiment a search folder ran."""
    state = json.loads((folder / STATE_FILE).read_text())
    return validate_experiment(state["experiment"], str(folder / STATE_FILE))


def _parse(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def write_trials(path: Path, trials: list[TrialRecord], metric: str) -> None:
    rows = [t.row(metric) for t in trials]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    temporary.replace(path)
