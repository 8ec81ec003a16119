"""Where surrogates and their inputs come from: retrainings, MLflow models, checkpoints, files.

A surrogate loads from a retraining folder (its best seed by the validation
error, or ``seed``), an MLflow model URI (``runs:/RUN/surrogate``,
``models:/NAME/VERSION``) or a checkpoint file; inputs from a CSV file whose
header names them or from a dataset file's split (with the solver's
trajectories it holds).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ionops.errors import UserError
from ionops.models.registry import get_family
from ionops.serving.surrogate import Prediction, Surrogate, check_fixed
from ionops.training.checkpoint import load_checkpoint

MLFLOW_SCHEMES = ("runs:/", "models:/")


def load_surrogate(source: str | Path, *, seed: int | None = None,
                   tracking_uri: str | None = None) -> Surrogate:  # fmt: skip
    """A surrogate from a retraining folder, an MLflow model URI or a checkpoint file."""
    text = str(source)
    if text.startswith(MLFLOW_SCHEMES):
        return _from_mlflow(text, tracking_uri)
    path = Path(source)
    if path.is_dir():
        return Surrogate(load_checkpoint(_retrained_checkpoint(path, seed)),
                         f"{path} (seed {_chosen_seed(path, seed)})")  # fmt: skip
    if seed is not None:
        raise UserError(f"seed = {seed}: a seed is chosen in a retraining folder; {path} is a "
                        "single checkpoint")  # fmt: skip
    if not path.exists():
        raise UserError(f"no surrogate at {path}: give a retraining folder "
                        "(WORKDIR/retrains/NAME), a checkpoint file or an MLflow model URI "
                        "(runs:/RUN_ID/surrogate, models:/NAME/VERSION)")  # fmt: skip
    return Surrogate(load_checkpoint(path), str(path))


def _retrain_state(folder: Path) -> dict[str, Any]:
    state_file = folder / "retrain.json"
    if not state_file.exists():
        raise UserError(
            f"{folder} is not a retraining (no retrain.json): give the folder that "
            "`ionops retrain` wrote (WORKDIR/retrains/NAME), or a checkpoint"
        )
    state: dict[str, Any] = json.loads(state_file.read_text())
    if not state.get("per_seed"):
        raise UserError(f"the retraining in {folder} has no finished seed yet: finish it with "
                        "`ionops retrain` (same arguments)")  # fmt: skip
    return state


def _chosen_seed(folder: Path, seed: int | None) -> int:
    """``seed`` if the retraining finished it, else the seed of least validation error."""
    per_seed = {int(k): v for k, v in _retrain_state(folder)["per_seed"].items()}
    if seed is not None:
        if seed not in per_seed:
            raise UserError(f"seed = {seed}: the retraining in {folder} finished seeds "
                            f"{sorted(per_seed)}")  # fmt: skip
        return seed
    any_checkpoint = load_checkpoint(folder / f"seed-{min(per_seed)}" / "checkpoint.pt")
    return best_seed(per_seed, get_family(str(any_checkpoint["family"])).metric)


def best_seed(per_seed: Mapping[int, Mapping[str, float]], metric: str) -> int:
    """The seed of least validation ``metric`` (the lowest such seed on a tie)."""
    return min(per_seed, key=lambda s: (per_seed[s].get(f"validation/{metric}", float("inf")), s))


def _retrained_checkpoint(folder: Path, seed: int | None) -> Path:
    return folder / f"seed-{_chosen_seed(folder, seed)}" / "checkpoint.pt"


def _from_mlflow(uri: str, tracking_uri: str | None) -> Surrogate:
    import mlflow

    from ionops.serving.mlflow_model import checkpoint_in
    from ionops.tracking import fluent_store

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    store = _mlflow_store(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="ionops-model-") as folder, fluent_store(store):
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
        except Exception as exc:  # MlflowException, OSError: a URI that names nothing
            if uri.startswith("runs:/"):
                _check_run_holds(uri, store)  # say what the run is missing, where it is that
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot read the MLflow model {uri} ({first}); the tracking store "
                            f"is {store}") from None  # fmt: skip
        return Surrogate(load_checkpoint(checkpoint_in(Path(local), uri)), uri)


def _mlflow_store(tracking_uri: str | None) -> str:
    """The store an MLflow model URI is read from: ``tracking_uri``, else the working folder's
    (``$MLFLOW_TRACKING_URI``, or ``WORKDIR/mlflow.db``), as the command line reads it; one
    that cannot be used is refused, and a missing SQLite store is not created."""
    from ionops import tracking
    from ionops.workdir import default_workdir

    store = tracking_uri or tracking.tracking_uri(default_workdir())
    tracking.check_store(store, write=False)  # reading a model: a read-only store will do
    if store.startswith(("http://", "https://")):
        tracking.check_reachable(store)
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).exists():
        raise UserError(f"no MLflow store at {store.removeprefix('sqlite:///')}: nothing was "
                        "logged there; set IONOPS_WORKDIR to the working folder whose runs "
                        "you mean, or MLFLOW_TRACKING_URI (or pass tracking_uri)")  # fmt: skip
    return store


def _check_run_holds(uri: str, store: str) -> None:
    """Refuse ``runs:/RUN_ID/PATH`` whose run is not in ``store`` or logged nothing at PATH."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    run_id, _, artifact = uri.removeprefix("runs:/").partition("/")
    client = MlflowClient(tracking_uri=store)
    try:
        client.get_run(run_id)
        logged = [item.path for item in client.list_artifacts(run_id)]
    except MlflowException:
        raise UserError(f"{uri}: no run {run_id!r} in the tracking store {store}") from None
    top = artifact.strip("/").split("/")[0]
    if top and top not in logged:
        raise UserError(
            f"{uri}: run {run_id} has no logged surrogate at {top!r} (it holds "
            f"{', '.join(logged) or 'no artifacts'}); a retraining's seed runs hold one "
            "(runs:/RUN_ID/surrogate), and its registered model is models:/NAME/VERSION"
        )


def predict(source: str | Path, inputs: Any, *, seed: int | None = None,
            compare: bool = False, **options: Any) -> Prediction:  # fmt: skip
    """Load a surrogate (see :func:`load_surrogate`) and predict ``inputs`` with it;
    ``compare`` also solves them and fills in the errors; ``options`` go to
    :meth:`Surrogate.predict`."""
    surrogate = load_surrogate(source, seed=seed)
    prediction = surrogate.predict(inputs, **options)
    if compare:
        surrogate.compare(prediction)
    return prediction


Inputs = tuple[np.ndarray, np.ndarray | None]  # rows, and the solver's trajectories if stored


def read_inputs(path: Path, names: Sequence[str], split: str | None = None,
                fixed: Mapping[str, float] | None = None, *,
                surrogate: Surrogate | None = None) -> Inputs:  # fmt: skip
    """Inputs from a CSV file (a header naming the inputs) or a dataset file (its ``split``,
    ``test`` by default): (n, n_inputs) rows and, for a dataset file, the solver's
    trajectories it holds.

    A column of an input the surrogate holds ``fixed`` is accepted at that value only, and
    any other column is refused; a surrogate of no inputs predicts one trajectory per row
    (CSV) or sample (dataset). With ``surrogate``, a dataset of another ionic model, state
    set or grid is refused.
    """
    if not path.is_file():
        raise UserError(f"--inputs {path}: no such file")
    if path.suffix.lower() in (".h5", ".hdf5"):
        return _dataset_inputs(path, names, split or "test", fixed or {}, surrogate)
    if split is not None:
        raise UserError(f"--split {split}: {path} is a CSV file, which has no splits; --split "
                        "chooses the split of a dataset file (.h5)")  # fmt: skip
    import csv

    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [n for n in names if n not in header]
        if missing:
            raise UserError(f"{path}: the header {header} lacks {missing}; this surrogate takes "
                            f"columns {', '.join(names)}")  # fmt: skip
        held = [n for n in header if n in (fixed or {})]
        extra = [n for n in header if n not in names and n not in held]
        if extra:
            takes = ", ".join(names) or "none"
            raise UserError(f"{path}: column {', '.join(repr(n) for n in extra)} is not an "
                            f"input of this surrogate (it takes {takes}); remove the column, "
                            "or give the surrogate that takes it")  # fmt: skip
        rows, held_values = [], []
        for line, row in enumerate(reader, start=2):
            cleaned = {k.strip(): v for k, v in row.items() if k is not None}
            try:
                rows.append([float(cleaned[n]) for n in names])
                held_values.append([float(cleaned[n]) for n in held])
            except (TypeError, ValueError):
                raise UserError(f"{path} line {line}: {[cleaned.get(n) for n in [*names, *held]]} "
                                "are not all numbers") from None  # fmt: skip
    table = np.asarray(held_values, dtype=np.float64).reshape(len(held_values), len(held))
    check_fixed(fixed or {}, {n: table[:, k] for k, n in enumerate(held)}, str(path))
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names)), None


def _dataset_inputs(path: Path, names: Sequence[str], split: str, fixed: Mapping[str, float],
                    surrogate: Surrogate | None) -> Inputs:  # fmt: skip
    from ionops.datasets.kinds import get_kind
    from ionops.datasets.store import open_file, read_attributes

    attributes = read_attributes(path)
    kind = get_kind(str(attributes.get("kind", "operator")))  # files before kinds: operator
    with open_file(path) as handle:
        if split not in handle:
            raise UserError(f"{path} has no {split} split; choose one of {sorted(handle)}")
        group = handle[split]
        if surrogate is not None:
            time = group["time"] if "time" in group else handle.get("time")
            _check_same_problem(path, attributes, None if time is None else time[...], surrogate)
        found = kind.split_inputs(group, attributes)
        if not found:
            raise UserError(f"{path}: the {split} split holds no inputs")
        missing = [n for n in names if n not in found]
        if missing:
            raise UserError(f"{path} holds inputs {sorted(found)}; this surrogate takes "
                            f"{', '.join(names)}")  # fmt: skip
        check_fixed(fixed, found, f"{path} ({split} split)")
        states = group["states"]
        trajectories = states[...] if states.ndim == 3 else None
        rows = np.zeros((len(states), len(names)))
    for column, name in enumerate(names):
        rows[:, column] = found[name]
    return rows, trajectories


def _check_same_problem(path: Path, attributes: Mapping[str, Any], time: np.ndarray | None,
                        surrogate: Surrogate) -> None:  # fmt: skip
    """Refuse a dataset of another ionic model, state set or grid than ``surrogate``'s."""
    found = {"ionic model": str(attributes.get("model")),
             "states": ", ".join(attributes.get("state_names", []))}  # fmt: skip
    wanted = {"ionic model": surrogate.ionic_model, "states": ", ".join(surrogate.state_names)}
    if time is not None and time.ndim == 1 and surrogate.time.ndim == 1:
        found["grid"] = f"{time.size} points to {time[-1]:g} ms"
        wanted["grid"] = f"{surrogate.time.size} points to {surrogate.time[-1]:g} ms"
        if time.size == surrogate.time.size and np.allclose(time, surrogate.time, rtol=1e-9):
            found["grid"] = wanted["grid"]
    differ = [what for what in wanted if found[what] != wanted[what]]
    if differ:
        both = "; ".join(f"{what}: the file's {found[what]}, the surrogate's {wanted[what]}"
                         for what in differ)  # fmt: skip
        raise UserError(f"--inputs {path} is a dataset of another problem than the surrogate "
                        f"({both}): give a dataset of the surrogate's problem, or a CSV of "
                        "inputs")  # fmt: skip
