"""A trained surrogate and its predictions: what it is, predicting, comparing, writing.

A checkpoint carries everything a prediction needs beside the network: the
family and its constructor arguments, the training dataset's attributes
(ionic model, parameters, state names and units, grid, solver), the grid of
predicted trajectories, the trained range of every input and the family's
scalings (the FNO's normalisers). So no experiment file and no dataset is
needed to use a surrogate, and the solver can be run again on the same inputs
for a comparison. Weights are read with ``torch.load(..., weights_only=True)``
and the network is built by the project's own code: loading runs nothing that
a file brings.

Where surrogates and their inputs come from: :mod:`ionops.serving.sources`.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ionops.errors import UserError
from ionops.models.family import Serving, Training
from ionops.models.registry import get_family
from ionops.training.loop import torch_device

PRECISIONS = ("float32", "float64", "bfloat16")


class ExtrapolationWarning(UserWarning):
    """An input outside the range the surrogate was trained on."""


@dataclass
class Prediction:
    """Trajectories a surrogate predicted, in physical units, and what they came from.

    ``inputs`` maps each input the surrogate takes to its (n,) values;
    ``states`` is (n, n_states, n_t); ``solver_states`` and ``errors`` (per
    sample, named as the retraining's) are filled in by :meth:`Surrogate.compare`.
    """

    inputs: dict[str, np.ndarray]
    time: np.ndarray
    states: np.ndarray
    state_names: list[str]
    state_units: list[str]
    solver_states: np.ndarray | None = None
    errors: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def error_means(self) -> dict[str, float]:
        """Each error's mean over samples (NaN-free), per state variable as ``name/state``."""
        out: dict[str, float] = {}
        with warnings.catch_warnings():  # every sample undefined: NaN, which tables name
            warnings.simplefilter("ignore", RuntimeWarning)
            for key, values in self.errors.items():
                out[key] = float(np.nanmean(values))
                if values.ndim == 2:
                    for index, name in enumerate(self.state_names):
                        out[f"{key}/{name}"] = float(np.nanmean(values[:, index]))
        return out


class Surrogate:
    """A trained network with what it needs to predict: see the module docstring."""

    def __init__(self, state: Mapping[str, Any], source: str) -> None:
        described = state.get("surrogate") or {}
        if not described:
            raise UserError(
                f"{source} holds no description of its training data (written by ionops "
                f"{state.get('ionops_version', 'before 0.1')} or by a family that cannot be "
                "served): retrain it with this version of ionops to use it"
            )
        self.source = source
        family = get_family(str(state["family"]))
        self.family: Training = family
        self.serving: Serving = family.serving()
        self.arguments: dict[str, Any] = dict(state["arguments"])
        attributes = json.loads(described["attributes"])
        self.described: dict[str, Any] = {**described, "attributes": attributes}
        self.model = self.family.build(self.arguments)
        try:
            self.model.load_state_dict(state["model"])
        except (KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"{source}: the weights do not fit the {self.family.name} network "
                            f"it describes ({first})") from None  # fmt: skip
        self.model.eval()
        # copies of the network on other devices or in other dtypes, made at first use and
        # kept (moving the network there and back at every call costs its size in transfers)
        self._held: dict[tuple[str, torch.dtype], tuple[tuple[int, ...], nn.Module]] = {}
        self.epoch = int(state.get("epoch", 0))
        self.input_names = self.serving.input_names(self.described)
        self.fixed_inputs = self.serving.fixed_inputs(self.described)

    # -- what it is -----------------------------------------------------------------------------
    @property
    def attributes(self) -> dict[str, Any]:
        """The training dataset's root attributes."""
        return dict(self.described["attributes"])

    @property
    def ionic_model(self) -> str:
        return str(self.attributes["model"])

    @property
    def state_names(self) -> list[str]:
        return list(self.attributes["state_names"])

    @property
    def time(self) -> np.ndarray:
        """The grid (ms) of predicted trajectories."""
        return np.asarray(self.described["time"].double().numpy())

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        """Each input's trained [low, high]."""
        return {k: (float(v[0]), float(v[1])) for k, v in self.described["ranges"].items()}

    def describe(self) -> str:
        count = self.family.parameter_count(self.arguments)
        return (f"{self.family.name} surrogate of {self.ionic_model} ({len(self.state_names)} "
                f"states, {self.time.size} points to {self.time[-1]:g} ms, {count:,} parameters; "
                f"from {self.source})")  # fmt: skip

    def check(self, ionic_model: str | None = None, n_t: int | None = None,
              n_states: int | None = None) -> None:  # fmt: skip
        """Refuse a surrogate of another ionic model, grid or number of states than asked."""
        found = {"ionic model": self.ionic_model, "grid points": self.time.size,
                 "states": len(self.state_names)}  # fmt: skip
        asked = {"ionic model": ionic_model, "grid points": n_t, "states": n_states}
        for what, value in asked.items():
            if value is not None and value != found[what]:
                raise UserError(f"{self.source} is a surrogate of {self.ionic_model} on "
                                f"{self.time.size} grid points with {len(self.state_names)} "
                                f"states; asked for {what} {value!r}")  # fmt: skip

    # -- using it -------------------------------------------------------------------------------
    def inputs_array(self, inputs: Any) -> np.ndarray:
        """``inputs`` (a mapping of name -> values, or rows in :attr:`input_names` order) as
        an (n, n_inputs) float64 array; wrong names, shapes or values are clear errors."""
        names = self.input_names
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(names) - set(self.fixed_inputs))
            missing = [n for n in names if n not in inputs]
            if unknown or missing:
                raise UserError(f"inputs {sorted(inputs)}: this surrogate takes "
                                f"{self.takes()}")  # fmt: skip
            given = {n: np.atleast_1d(np.asarray(v, dtype=np.float64)) for n, v in inputs.items()}
            shapes = {n: c.shape for n, c in given.items()}
            if len(set(shapes.values())) > 1 or any(len(shape) != 1 for shape in shapes.values()):
                raise UserError(f"inputs of shapes {shapes}: give one value per sample for each")
            check_fixed(self.fixed_inputs, given)
            n = next(iter(given.values())).shape[0] if given else 1
            rows = np.stack([given[name] for name in names], axis=1) if names else np.zeros((n, 0))
        else:
            rows = np.asarray(inputs, dtype=np.float64)
            if rows.ndim == 1:
                rows = rows[None, :]
            if rows.ndim != 2 or rows.shape[1] != len(names):
                raise UserError(f"inputs of shape {rows.shape}: give rows of {len(names)} values "
                                f"({self.takes()})")  # fmt: skip
        if len(rows) == 0:
            raise UserError("no inputs: give at least one sample")
        if not np.isfinite(rows).all():
            row, column = np.argwhere(~np.isfinite(rows))[0]
            raise UserError(f"input {names[column]} of sample {row} is {rows[row, column]}: "
                            "inputs must be finite")  # fmt: skip
        return rows

    def takes(self) -> str:
        """The inputs in words, the fixed ones with their value."""
        varied = ", ".join(self.input_names) or "no inputs (one trajectory)"
        fixed = ", ".join(f"{k} = {v:g}" for k, v in self.fixed_inputs.items())
        return varied + (f" (and holds {fixed} fixed)" if fixed else "")

    def outside(self, rows: np.ndarray) -> list[str]:
        """One line per input with values outside the trained range."""
        lines = []
        for column, name in enumerate(self.input_names):
            if name not in self.ranges:
                continue
            low, high = self.ranges[name]
            values = rows[:, column]
            bad = np.flatnonzero((values < low) | (values > high))
            if bad.size:
                worst = bad[np.argmax(np.maximum(low - values[bad], values[bad] - high))]
                lines.append(
                    f"input {name} = {values[worst]:g} (sample {worst}"
                    + (f", and {bad.size - 1} more" if bad.size > 1 else "")
                    + f") is outside the range the surrogate was trained on, [{low:g}, "
                    f"{high:g}]: its prediction is an extrapolation"
                )
        return lines

    def predict(self, inputs: Any, *, batch_size: int | None = None, device: str = "auto",
                precision: str = "float32") -> Prediction:  # fmt: skip
        """Trajectories of ``inputs`` in physical units, ``batch_size`` samples per network
        call (default: the family's choice for the device); inputs outside the trained ranges
        are predicted with an :class:`ExtrapolationWarning` naming them."""
        rows = self.inputs_array(inputs)
        if batch_size is not None and batch_size < 1:
            raise UserError(f"batch_size = {batch_size}: give at least 1")
        if precision not in PRECISIONS:
            raise UserError(f"precision = {precision!r}; choose one of {', '.join(PRECISIONS)}")
        for line in self.outside(rows):
            warnings.warn(line, ExtrapolationWarning, stacklevel=2)
        target = torch_device(device)
        if batch_size is None:
            batch_size = self.serving.batch_hint(self.arguments, self.described, target)
        dtype = torch.float64 if precision == "float64" else torch.float32
        # bfloat16 autocasts the matrix products; on the CPU the network is held in bfloat16
        # too, so no product casts its weights again at every call (the FNO then computes in
        # bfloat16 throughout, on oneDNN's AMX kernels where the CPU has them)
        autocast = precision == "bfloat16"
        held = torch.bfloat16 if autocast and target.type == "cpu" else dtype
        model = self._network(target, held)
        described = {k: v.to(target) if isinstance(v, torch.Tensor) else v
                     for k, v in self.described.items()}  # fmt: skip
        # the trajectories go straight into the array returned: numpy asks for huge pages for
        # it, a concatenation of the calls' results would fault in 4 KiB pages (measured:
        # 6 ms against 17 for 256 ORd trajectories on a 1 ms grid)
        states = _states_array(len(rows), len(self.state_names), self.time.size)
        out = torch.from_numpy(states)

        def call(begin: int) -> None:
            chunk = rows[begin : begin + batch_size]
            with torch.inference_mode(), torch.autocast(target.type, torch.bfloat16,
                                                        enabled=autocast):  # fmt: skip
                batch = torch.as_tensor(chunk, dtype=dtype, device=target)
                out[begin : begin + len(chunk)].copy_(self.serving.predict(model, described, batch))

        begins = range(0, len(rows), batch_size)
        workers = min(len(begins), torch.get_num_threads()) if target.type == "cpu" else 1
        if workers > 1:
            _on_threads(call, begins, workers)
        else:
            for begin in begins:
                call(begin)
        return Prediction(
            inputs={n: rows[:, k] for k, n in enumerate(self.input_names)}, time=self.time,
            states=states, state_names=self.state_names,
            state_units=list(self.attributes.get("state_units", [""] * len(self.state_names))),
        )  # fmt: skip

    def _network(self, device: torch.device, dtype: torch.dtype) -> nn.Module:
        """The network on ``device`` in ``dtype``: :attr:`model` itself for the CPU in float32,
        else a copy, made again when :attr:`model`'s weights have changed since (a copy, not
        :attr:`model` converted: rounding to bfloat16 in place is lossy)."""
        if device.type == "cpu" and dtype == torch.float32:
            return self.model
        key = (str(device), dtype)
        versions = tuple(x for t in self.model.state_dict().values()
                         for x in (t._version, t.data_ptr()))  # fmt: skip
        if key not in self._held or self._held[key][0] != versions:
            self._held[key] = (versions, copy.deepcopy(self.model).to(device, dtype))
        return self._held[key][1]

    def solve(self, inputs: Any) -> np.ndarray:
        """The solver's trajectories of ``inputs`` (the training data's solver and settings)."""
        return np.asarray(self.serving.solve(self.described, self.inputs_array(inputs)))

    def compare(self, prediction: Prediction, solver_states: np.ndarray | None = None) -> None:
        """Fill in ``prediction``'s solver trajectories (solved now unless given) and errors."""
        if solver_states is None:
            solver_states = self.solve(prediction.inputs)
        if solver_states.shape != prediction.states.shape:
            raise UserError(f"reference trajectories of shape {solver_states.shape} for "
                            f"predictions of shape {prediction.states.shape}")  # fmt: skip
        prediction.solver_states = np.asarray(solver_states, dtype=np.float32)
        errors = self.serving.errors(torch.from_numpy(prediction.states),
                                    torch.from_numpy(prediction.solver_states),
                                    self.described)  # fmt: skip
        prediction.errors = {k: v.numpy() for k, v in errors.items()}

    def write(self, path: Path, prediction: Prediction, options: Mapping[str, Any] | None = None,
              ) -> None:  # fmt: skip
        """``prediction`` as a dataset file (its ``test`` split): see
        :func:`ionops.datasets.store.write_prediction`."""
        from ionops.datasets.store import write_prediction

        inputs = dict(prediction.inputs)
        if self.described["kind"] != "operator":  # every input of the problem, fixed ones too
            fixed = self.attributes.get("fixed", {})
            inputs.update({k: np.full(len(prediction), float(v)) for k, v in fixed.items()})
        meta = {"source": self.source, "family": self.family.name, "epoch": self.epoch,
                **dict(options or {})}  # fmt: skip
        write_prediction(Path(path), self.attributes, prediction.time, inputs, prediction.states,
                         prediction.solver_states, meta)  # fmt: skip


def check_fixed(fixed: Mapping[str, float], given: Mapping[str, Any], where: str = "inputs"
                ) -> None:  # fmt: skip
    """Refuse a value of an input the surrogate holds ``fixed``, other than its value; the
    other inputs in ``given`` are not this check's."""
    for name, values in given.items():
        if name not in fixed:
            continue
        column = np.atleast_1d(np.asarray(values, dtype=np.float64))
        bad = np.flatnonzero(column != fixed[name])
        if bad.size:
            value = fixed[name]
            raise UserError(
                f"{where}: {name} = {column[bad[0]]:g} (sample {bad[0]}), but this surrogate was "
                f"trained with {name} fixed at {value:g}: give {name} = {value:g} or leave it "
                f"out, or use a surrogate trained with {name} varied"
            )


def _on_threads(call: Any, chunks: Sequence[Any], workers: int) -> list[Any]:
    """``call`` of every chunk on ``workers`` threads, each running its operations on one core.

    Calls of a few samples divide poorly among cores inside each operation (ORd's
    constrained FNO on two cores: 1.46x one core's throughput); whole calls side by side,
    torch releasing the GIL in its operations, reach 1.63x. Torch's thread count is
    process-wide: it is 1 while the calls run and restored after.
    """
    from concurrent.futures import ThreadPoolExecutor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="ionops-predict") as pool:
            return list(pool.map(call, chunks))
    finally:
        torch.set_num_threads(threads)


def available_memory() -> int | None:
    """Bytes of memory this machine can still hand out without swapping (Linux's
    MemAvailable; else the free physical pages), or None where neither is known."""
    try:
        with Path("/proc/meminfo").open() as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _states_array(n: int, n_states: int, n_t: int) -> np.ndarray:
    """An empty float32 array for ``n`` trajectories; refused, before any work, where the
    memory available cannot hold it (it would fail at the end, or be killed part way)."""
    size, available = 4 * n * n_states * n_t, available_memory()
    if available is not None and size > available:
        raise UserError(f"{n:,} trajectories of {n_states} states on {n_t:,} points take "
                        f"{size / 1e9:,.1f} GB in float32; {available / 1e9:,.1f} GB of memory "
                        "is available: predict the inputs in parts")  # fmt: skip
    return np.empty((n, n_states, n_t), np.float32)


def keep_freed_memory() -> None:
    """Let this process keep the memory it frees (glibc: no trimming, mmap only above 32 MiB).

    A prediction allocates and frees activations of megabytes per layer; by default glibc
    hands such blocks back to the system and the next call faults them in again, which
    measured here costs as much system time as the computation. ``ionops predict`` calls
    this; a program that predicts many batches may too. No effect off glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return
    if mallopt is not None:
        mallopt(-1, 2**30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of freed heap
        mallopt(-3, 2**25)  # M_MMAP_THRESHOLD: heap, not mmap, up to glibc's 32 MiB maximum
