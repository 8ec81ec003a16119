"""The HDF5 dataset file: self-describing, readable with plain h5py, written once.

Operator datasets (stimulus protocols; ``n`` samples per split, ``S`` states,
``n_t`` grid points)::

    /                 attributes: format, model, parameters, state names and
                      units, initial state, solver and tolerances, seed, ...
    /time             (n_t,) float64, ms
    /<split>/amplitude      (n,) float64, the stimulus i
    /<split>/t_stim         (n,) float64, ms
    /<split>/subset         (n,) int16, index into the root attribute ``subsets``
    /<split>/states         (n, S, n_t) float32, one chunk per sample, shuffle + gzip 1
    /<split>/solver_stats   (n, 6) int64, columns in its ``columns`` attribute
    /<split>/solver_attempts (n,) int8, 1 unless a retry with tighter settings was needed
    /<split>/event_times    (total,) float64, ms: a model with resets only; every sample's
                            spikes in order, located to the solver's tolerance
    /<split>/event_counts   (n,) int64: how many of them each sample has (sample k's are
                            event_times[sum(counts[:k]):][:counts[k]]; :func:`read_events`)

Point, transition and trajectory datasets (:mod:`ionops.datasets.problems`; root
attributes also ``kind``, ``input_names``, ``varied``, ``ranges``, ``fixed``)::

    /<split>/inputs   (n, n_inputs) float64: every input (initial states, stimulus)
    /<split>/t        (n,) float64, ms: training splits, the time of each sample
    /<split>/states   points (n, S); transitions (n, 2, S): at t and t + Δ;
                      trajectories (n, S, n_t), float32, chunked by blocks of samples
    /<split>/time     (n_t,) float64, ms: trajectory splits (validation, test; train of
                      a trajectory dataset)

Each split group has a ``layout`` attribute (points, transitions, trajectories).

The file is assembled in one pass from the generation journal, in sample
order, into a temporary name and renamed into place, so a file under the final
name is always complete, and the same samples give the same bytes whatever
the number of ranks or interruptions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from numpy.typing import NDArray

from ionops.datasets.journal import Record
from ionops.datasets.protocols import SPLITS, SampleTable
from ionops.errors import UserError

if TYPE_CHECKING:
    from ionops.datasets.problems import ProblemPlan

FORMAT = "ionops-dataset"
FORMAT_VERSION = 1
PROBLEM_KINDS = ("point", "transition", "trajectory")  # the initial-value problem datasets
STAT_COLUMNS = (
    "steps", "rhs_evaluations", "jacobians", "lu_factorisations", "rejected", "newton_failures",
)  # fmt: skip


def _attribute(value: Any) -> Any:
    """HDF5-friendly attribute values: mappings become JSON text, string lists string arrays."""
    if isinstance(value, Mapping) or (
        isinstance(value, list | tuple) and value and isinstance(value[0], Mapping)
    ):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list | tuple) and value and isinstance(value[0], str):
        return np.array(value, dtype=h5py.string_dtype())
    return value


@contextmanager
def assembling(path: Path, attributes: Mapping[str, Any]) -> Iterator[h5py.File]:
    """An HDF5 file to fill, with ``attributes`` at its root, written beside ``path`` and moved
    onto it only once complete: a failure or a kill leaves no file that looks finished."""
    temporary = path.with_name(f".{path.name}.assembling")
    try:
        with h5py.File(temporary, "w", libver="earliest") as handle:
            for key, value in attributes.items():
                handle.attrs[key] = _attribute(value)
            yield handle
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_dataset(
    path: Path,
    attributes: Mapping[str, Any],
    t_grid: NDArray[np.float64],
    n_states: int,
    samples: Mapping[str, SampleTable],
    records: Mapping[tuple[int, int], Record],
    events: bool = False,
) -> None:
    """Assemble the final file from journal records, atomically (temp file, then rename);
    with ``events``, each split also holds its samples' event times."""
    with assembling(path, attributes) as handle:
        handle.create_dataset("time", data=t_grid, track_times=False)
        handle["time"].attrs["units"] = "ms"
        for split_index, split in enumerate(SPLITS):
            _write_split(
                handle.create_group(split), split_index, samples[split],
                t_grid.size, n_states, records, events,
            )  # fmt: skip


def _write_split(
    group: h5py.Group,
    split_index: int,
    table: SampleTable,
    n_t: int,
    n_states: int,
    records: Mapping[tuple[int, int], Record],
    events: bool,
) -> None:
    n = len(table)
    group.create_dataset("amplitude", data=table.amplitude, track_times=False)
    group.create_dataset("t_stim", data=table.t_stim, track_times=False)
    group["t_stim"].attrs["units"] = "ms"
    group.create_dataset("subset", data=table.subset, track_times=False)
    layout: dict[str, Any] = {}
    if n:  # an empty split (a user's table may have none) cannot be chunked
        layout = {"chunks": (1, n_states, n_t), "shuffle": True, "compression": "gzip",
                  "compression_opts": 1}  # fmt: skip
    states = group.create_dataset(
        "states", shape=(n, n_states, n_t), dtype="<f4", track_times=False, **layout
    )
    stats = np.zeros((n, len(STAT_COLUMNS)), dtype=np.int64)
    attempts = np.zeros(n, dtype=np.int8)
    for index in range(n):
        record = records[(split_index, index)]
        states.id.write_direct_chunk((index, 0, 0), record.read_payload())
        stats[index] = record.stats
        attempts[index] = record.attempts
    group.create_dataset("solver_stats", data=stats, track_times=False)
    group["solver_stats"].attrs["columns"] = _attribute(list(STAT_COLUMNS))
    group.create_dataset("solver_attempts", data=attempts, track_times=False)
    if events:
        times = [records[(split_index, index)].read_events() for index in range(n)]
        group.create_dataset("event_times", data=np.concatenate([np.empty(0), *times]),
                             track_times=False)  # fmt: skip
        group["event_times"].attrs["units"] = "ms"
        group.create_dataset("event_counts", data=np.array([t.size for t in times], np.int64),
                             track_times=False)  # fmt: skip


def read_events(group: h5py.Group) -> list[NDArray[np.float64]]:
    """Each sample's event times (ms) of a split that records them (a model with resets)."""
    if "event_counts" not in group:
        raise UserError(f"{group.file.filename} records no event times in {group.name}: its "
                        "model has no resets, or the file predates them")  # fmt: skip
    counts = group["event_counts"][()]
    times = group["event_times"][()]
    return np.split(times, np.cumsum(counts)[:-1]) if counts.size else []


def write_problem_dataset(
    path: Path, plan: ProblemPlan, records: Mapping[tuple[int, int], Record]
) -> None:
    """Assemble a point, transition or trajectory dataset from journal records, atomically."""
    with assembling(path, plan.attributes()) as handle:
        for split_index, split in enumerate(SPLITS):
            group = handle.create_group(split)
            table = plan.tables[split]
            group.attrs["layout"] = table.layout
            group.create_dataset("inputs", data=table.inputs, track_times=False)
            if table.t is not None:
                group.create_dataset("t", data=table.t, track_times=False)
                group["t"].attrs["units"] = "ms"
            else:
                group.create_dataset("time", data=plan.eval_time, track_times=False)
                group["time"].attrs["units"] = "ms"
            shape = plan.state_shape(split)
            n, block = len(table), plan.block_size(split)
            layout: dict[str, Any] = {}
            if n:
                layout = {"chunks": (block, *shape), "shuffle": True, "compression": "gzip",
                          "compression_opts": 1}  # fmt: skip
            states = group.create_dataset("states", shape=(n, *shape), dtype="<f4",
                                          track_times=False, **layout)  # fmt: skip
            for index in range(plan.blocks(split)):
                offset = (index * block,) + (0,) * len(shape)
                states.id.write_direct_chunk(offset, records[(split_index, index)]
                                             .read_payload())  # fmt: skip


def write_prediction(
    path: Path,
    attributes: Mapping[str, Any],
    time: NDArray[np.float64],
    inputs: Mapping[str, NDArray[np.float64]],
    states: NDArray[np.float32],
    solver_states: NDArray[np.float32] | None = None,
    prediction: Mapping[str, Any] | None = None,
) -> None:
    """A surrogate's prediction as a dataset file whose ``test`` split holds the samples.

    The root attributes are the training dataset's, plus ``prediction`` (JSON: the source,
    the family, the options). Operator kind: ``test/amplitude``, ``test/t_stim``,
    ``test/subset`` (-1: no subset) and ``test/states``; point, transition and trajectory kinds:
    ``test/inputs`` (every input), ``test/time`` and ``test/states`` (layout
    trajectories). ``test/solver_states`` holds the solver's trajectories when compared.
    The file is written under a temporary name and renamed into place.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.writing")
    n = states.shape[0]
    try:
        with h5py.File(temporary, "w", libver="earliest") as handle:
            for key, value in attributes.items():
                handle.attrs[key] = _attribute(value)
            handle.attrs["prediction"] = json.dumps(dict(prediction or {}), sort_keys=True)
            group = handle.create_group("test")
            if attributes.get("kind", "operator") == "operator":
                handle.create_dataset("time", data=time, track_times=False)
                handle["time"].attrs["units"] = "ms"
                group.create_dataset("amplitude", data=inputs["amplitude"], track_times=False)
                group.create_dataset("t_stim", data=inputs["t_stim"], track_times=False)
                group.create_dataset("subset", data=np.full(n, -1, dtype=np.int16),
                                     track_times=False)  # fmt: skip
            else:
                group.attrs["layout"] = "trajectories"
                names = list(attributes.get("input_names") or inputs)  # a window: the given
                group.attrs["input_names"] = json.dumps(names)
                group.create_dataset("inputs", data=np.stack([inputs[k] for k in names], 1),
                                     track_times=False)  # fmt: skip
                group.create_dataset("time", data=time, track_times=False)
            for name, values in (("states", states), ("solver_states", solver_states)):
                if values is not None:
                    group.create_dataset(name, data=np.asarray(values, dtype="<f4"),
                                         track_times=False)  # fmt: skip
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def open_file(path: Path) -> h5py.File:
    """A dataset file opened to read; one that is not HDF5, or is cut short, a clear error."""
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        text = str(exc)
        why = ("cut short (a copy or a write that did not finish)" if "truncated" in text
               else "not an HDF5 file" if "signature" in text else text)  # fmt: skip
        raise UserError(f"{path} is not a readable dataset: {why}; generate it again with "
                        "`ionops generate --overwrite`") from None  # fmt: skip


def attributes_json(attributes: Mapping[str, Any]) -> str:
    """A dataset's attributes as JSON text (arrays as lists), as checkpoints carry them."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray | np.generic):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not an attribute value")

    return json.dumps(dict(attributes), default=plain, sort_keys=True)


def read_attributes(path: Path) -> dict[str, Any]:
    """The root attributes of a dataset file, JSON-encoded ones decoded."""
    with open_file(path) as handle:
        out: dict[str, Any] = {}
        for key, value in handle.attrs.items():
            if isinstance(value, str) and value[:1] in ("{", "["):
                out[key] = json.loads(value)
            elif isinstance(value, np.ndarray) and value.dtype.kind == "O":
                out[key] = [v.decode() if isinstance(v, bytes) else v for v in value]
            else:
                out[key] = value.item() if isinstance(value, np.generic) else value
        return out
