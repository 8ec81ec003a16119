"""Point, transition and trajectory datasets: an ionic model's initial-value problem over a box.

The inputs of a problem are the initial value of every state (``u0`` for a
state ``u``) and the stimulus (the model's stimulus name, ``k`` for
``fhn_werneck``), constant in time; each is varied over a range or fixed.
Samples are drawn by Latin hypercube, one independent stream per split:

- ``train`` of a ``point`` dataset: n samples (t, inputs), t over [0, T] on
  the solver's output grid (every ``save_dt_ms``); the target is the state at t;
- ``train`` of a ``transition`` dataset: n samples over [0, T - Δ] x box; the
  states at t and at t + Δ (``transition_ms``);
- ``train`` of a ``trajectory`` dataset: n whole trajectories, as below;
- ``validation``, ``test``: n whole trajectories from inputs over the box,
  every ``eval_dt_ms`` on [0, T].

The data solver is explicit Euler at ``solver_dt_ms`` saved every
``save_dt_ms`` (the paper's 0.01 and 0.1 ms;
:mod:`ionops.datasets.euler`) or the project's BDF at tight tolerances. Each
task solves a block of samples; the file is assembled by the same driver as
every dataset (:func:`ionops.datasets.generate.generate`): MPI-parallel,
resumable, byte-identical whatever the number of ranks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ionops.datasets import parallel
from ionops.datasets.catalog import problem_error, problem_inputs
from ionops.datasets.generate import GenerationPlan
from ionops.datasets.ionic import IonicModel, get_ionic_model
from ionops.datasets.journal import JournalWriter, Record, encode_chunk
from ionops.datasets.protocols import SPLITS
from ionops.datasets.solver import SolveFailed, SolverSettings, solve_stimulus
from ionops.datasets.stimuli import Constant
from ionops.datasets.store import FORMAT, FORMAT_VERSION, PROBLEM_KINDS, write_problem_dataset
from ionops.errors import UserError

TRAIN_BLOCK = 4096  # samples per task (and HDF5 chunk) of a training split
TRAJECTORY_BLOCK_VALUES = 2**18  # float32 values per task of a trajectory split (1 MiB)
BDF_SETTINGS = SolverSettings(rtol=1e-9, atol=1e-11)


@dataclass(frozen=True)
class ProblemSpec:
    """Everything that determines a problem dataset (and so its bytes). Times in ms."""

    kind: str
    model: str
    t_end_ms: float
    vary: Mapping[str, tuple[float, float]]
    fixed: Mapping[str, float]
    train: int
    validation: int
    test: int = 0
    eval_dt_ms: float = 1.0
    transition_ms: float = 1.0
    solver: str = "euler"
    solver_dt_ms: float = 0.01
    save_dt_ms: float = 0.1
    seed: int = 0
    parameters: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, data: Any) -> ProblemSpec:
        """From an experiment's ``[data]`` section of kind point, transition or trajectory."""
        values = data.model_dump()
        values["model"] = values.pop("ionic_model")
        values["vary"] = {k: tuple(v) for k, v in values["vary"].items()}
        return cls(**values)

    def manifest(self) -> dict[str, Any]:
        out = asdict(self)
        out["vary"] = {k: list(v) for k, v in sorted(self.vary.items())}
        out["fixed"] = dict(sorted(self.fixed.items()))
        out["parameters"] = dict(sorted(self.parameters.items()))
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": out}

    def counts(self) -> dict[str, int]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def input_names(model: IonicModel) -> list[str]:
    """A problem's inputs for ``model``: every state's initial value, then the stimulus."""
    return [f"{name}0" for name in model.state_names] + [model.stimulus_name]


@dataclass(frozen=True)
class Table:
    """The samples of one split: every input (n, n_inputs), and for training the time t (n,)."""

    inputs: NDArray[np.float64]
    t: NDArray[np.float64] | None
    layout: str  # points, transitions or trajectories

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass(frozen=True)
class ProblemPlan(GenerationPlan):
    """A validated problem spec: the drawn samples, the grids and how to solve a block."""

    spec: ProblemSpec
    model: IonicModel
    parameters: NDArray[np.float64]
    names: tuple[str, ...]
    tables: dict[str, Table]
    eval_time: NDArray[np.float64]
    steps_per_eval: int
    steps_per_transition: int
    unit = "block"
    IDENTITY: ClassVar[Mapping[str, str]] = {
        "kind": "data.kind", "model": "data.ionic_model", "parameters": "data.parameters.{}",
        "input_names": "data.ionic_model", "ranges": "data.vary.{}", "fixed": "data.fixed.{}",
        "t_end_ms": "data.t_end_ms", "eval_dt_ms": "data.eval_dt_ms",
        "transition_ms": "data.transition_ms", "solver": "data.solver",
        "solver_dt_ms": "data.solver_dt_ms", "save_dt_ms": "data.save_dt_ms", "rtol": "data.solver",
        "seed": "data.seed", "counts": "data.{}",
    }  # fmt: skip

    # -- the driver's interface -----------------------------------------------------------------
    def tasks(self) -> list[tuple[int, int]]:
        return [(s, b) for s, split in enumerate(SPLITS) for b in range(self.blocks(split))]

    def n_samples(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def cost(self, task: tuple[int, int]) -> float:
        split = SPLITS[task[0]]
        begin, end = self.block_range(split, task[1])
        per_sample = self.eval_time.size if self.tables[split].layout == "trajectories" else 1
        return float((end - begin) * per_sample)

    def solve(self, task: tuple[int, int], writer: JournalWriter) -> None:
        split = SPLITS[task[0]]
        begin, end = self.block_range(split, task[1])
        states = self.solve_block(split, begin, end)
        if not np.isfinite(states).all():
            bad = begin + int(np.flatnonzero(~np.isfinite(states).reshape(end - begin, -1)
                                             .all(axis=1))[0])  # fmt: skip
            values = dict(zip(self.names, self.tables[split].inputs[bad].tolist(), strict=True))
            raise parallel.Failure(
                f"{split} sample {bad} of {self.model.name} is not finite with the "
                f"{self.spec.solver} solver (inputs {values}); use a smaller solver_dt_ms or "
                "narrow the ranges in [data.vary]"
            )
        padded = np.zeros((self.block_size(split), *states.shape[1:]), dtype=np.float32)
        padded[: end - begin] = states
        euler = self.spec.solver == "euler"
        steps = int(self.spec.t_end_ms / self.spec.solver_dt_ms) if euler else 0
        stats = (steps * (end - begin), 0, 0, 0, 0, 0)
        writer.append(task[0], task[1], 1, stats, encode_chunk(padded))

    def attributes(self) -> dict[str, Any]:
        from ionops import __version__

        model, spec = self.model, self.spec
        solver = (f"explicit Euler, dt = {spec.solver_dt_ms:g} ms" if spec.solver == "euler" else
                  "ionops BDF: variable-order NDF (orders 1-5)")  # fmt: skip
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "ionops_version": __version__,
            "kind": spec.kind, "model": model.name, "model_title": model.title,
            "parameters": dict(zip(model.parameters, self.parameters.tolist(), strict=True)),
            "parameter_notes": dict(model.notes), "state_names": list(model.state_names),
            "state_units": list(model.state_units), "time_unit": model.time_unit,
            "stimulus_name": model.stimulus_name, "input_names": list(self.names),
            "varied": [n for n in self.names if n in spec.vary],
            "ranges": {k: list(v) for k, v in sorted(spec.vary.items())},
            "fixed": dict(sorted(spec.fixed.items())), "t_end_ms": spec.t_end_ms,
            "eval_dt_ms": spec.eval_dt_ms, "transition_ms": spec.transition_ms,
            "solver": solver, "solver_dt_ms": spec.solver_dt_ms, "save_dt_ms": spec.save_dt_ms,
            "seed": spec.seed,
            "counts": spec.counts(), "sampling": "Latin hypercube, one stream per split",
            "rtol": BDF_SETTINGS.rtol if spec.solver == "bdf" else 0.0,
        }  # fmt: skip

    def assemble(self, output: Path, records: Mapping[tuple[int, int], Record]) -> None:
        write_problem_dataset(output, self, records)

    # -- blocks ---------------------------------------------------------------------------------
    def state_shape(self, split: str) -> tuple[int, ...]:
        """The shape of one sample's states in ``split``."""
        n_states = self.model.n_states
        layout = self.tables[split].layout
        if layout == "points":
            return (n_states,)
        if layout == "transitions":
            return (2, n_states)
        return (n_states, self.eval_time.size)

    def block_size(self, split: str) -> int:
        """Samples per task and per HDF5 chunk (never more than the split holds)."""
        size = TRAIN_BLOCK
        if self.tables[split].layout == "trajectories":
            size = max(1, TRAJECTORY_BLOCK_VALUES // math.prod(self.state_shape(split)))
        return max(1, min(size, len(self.tables[split])))

    def blocks(self, split: str) -> int:
        return math.ceil(len(self.tables[split]) / self.block_size(split))

    def block_range(self, split: str, block: int) -> tuple[int, int]:
        size = self.block_size(split)
        return block * size, min(len(self.tables[split]), (block + 1) * size)

    def solve_block(self, split: str, begin: int, end: int) -> NDArray[np.float64]:
        """States of samples ``begin:end`` of ``split``, shaped (n, *state_shape)."""
        table = self.tables[split]
        n_states = self.model.n_states
        y0 = table.inputs[begin:end, :n_states]
        stimulus = table.inputs[begin:end, n_states]
        dt = self.spec.solver_dt_ms
        if table.layout == "trajectories":
            steps = np.tile(np.arange(self.eval_time.size) * self.steps_per_eval, (end - begin, 1))
        else:
            assert table.t is not None
            first = np.rint(table.t[begin:end] / dt).astype(np.int64)[:, None]
            steps = first if table.layout == "points" else np.hstack(
                [first, first + self.steps_per_transition])  # fmt: skip
        if self.spec.solver == "euler":
            from ionops.datasets.euler import euler

            states = euler(self.model, self.parameters, y0, stimulus, dt, steps)  # (n, m, S)
        else:
            states = self._bdf(y0, stimulus, steps.astype(np.float64) * dt)
        if table.layout == "points":
            return states[:, 0, :]
        if table.layout == "transitions":
            return states
        return states.transpose(0, 2, 1)

    def _bdf(self, y0: NDArray[np.float64], stimulus: NDArray[np.float64],
             times: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
        try:
            return bdf_states(self.model, self.parameters, y0, stimulus, times)
        except SolveFailed as exc:
            raise parallel.Failure(str(exc)) from None


def bdf_states(
    model: IonicModel,
    p: NDArray[np.float64],
    y0: NDArray[np.float64],
    stimulus: NDArray[np.float64],
    times: NDArray[np.float64],
) -> NDArray[np.float64]:
    """States (n, m, S) at ``times`` (n, m) ms from each ``y0`` under a constant stimulus,
    with the project's BDF at the point datasets' tolerances."""
    out = np.empty((y0.shape[0], times.shape[1], y0.shape[1]))
    for i in range(y0.shape[0]):
        if times[i, -1] == 0.0:
            out[i] = y0[i]
            continue
        grid = np.concatenate([[0.0], times[i]]) if times[i, 0] > 0 else times[i]
        solution = solve_stimulus(model, grid, Constant(float(stimulus[i])), BDF_SETTINGS, p=p,
                                  y0=y0[i])  # fmt: skip
        out[i] = solution.states[:, -times.shape[1] :].T
    return out


def solve_trajectories(attributes: Mapping[str, Any], inputs: NDArray[np.float64],
                       time: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
    """Trajectories (n, S, n_t) on ``time`` of ``inputs`` (n, every input) with the solver of a
    point, transition or trajectory dataset (its root ``attributes``): what it would hold."""
    model = get_ionic_model(str(attributes["model"]))
    p = model.parameter_vector(attributes["parameters"])
    n_states = model.n_states
    y0, stimulus = inputs[:, :n_states], inputs[:, n_states]
    dt = float(attributes["solver_dt_ms"])
    steps = np.tile(np.rint(np.asarray(time) / dt).astype(np.int64), (len(inputs), 1))
    if str(attributes["solver"]).startswith("explicit Euler"):
        from ionops.datasets.euler import euler

        states = euler(model, p, y0, stimulus, dt, steps)
    else:
        states = bdf_states(model, p, y0, stimulus, steps.astype(np.float64) * dt)
    return states.transpose(0, 2, 1)


def make_problem_plan(spec: ProblemSpec) -> ProblemPlan:
    """Validate ``spec`` and draw its samples; every problem is a :class:`UserError`."""
    model = get_ionic_model(spec.model)
    parameters = model.parameter_vector(spec.parameters)
    names = tuple(input_names(model))
    _check_inputs(spec, names)
    dt = spec.solver_dt_ms
    steps_per_eval = _whole_steps("eval_dt_ms", spec.eval_dt_ms, dt)
    steps_per_transition = _whole_steps("transition_ms", spec.transition_ms, dt)
    save = _whole_steps("save_dt_ms", spec.save_dt_ms, dt) * dt
    n_eval = _whole_steps("t_end_ms", spec.t_end_ms, spec.eval_dt_ms) + 1
    eval_time = np.arange(n_eval, dtype=np.float64) * (steps_per_eval * dt)
    horizon = spec.t_end_ms - (spec.transition_ms if spec.kind == "transition" else 0.0)
    streams = np.random.SeedSequence(spec.seed).spawn(len(SPLITS))
    tables: dict[str, Table] = {}
    for split, stream in zip(SPLITS, streams, strict=True):
        count = spec.counts()[split]
        rng = np.random.default_rng(stream)
        if split == "train" and spec.kind != "trajectory":
            unit = _latin_hypercube(count, 1 + len(spec.vary), rng)
            t = np.rint(np.rint(unit[:, 0] * horizon / save) * save / dt) * dt
            inputs = _inputs(spec, names, unit[:, 1:], count)
            layout = "points" if spec.kind == "point" else "transitions"
            tables[split] = Table(inputs, t, layout)
        else:
            unit = _latin_hypercube(count, len(spec.vary), rng)
            tables[split] = Table(_inputs(spec, names, unit, count), None, "trajectories")
    return ProblemPlan(spec, model, parameters, names, tables, eval_time, steps_per_eval,
                       steps_per_transition)  # fmt: skip


def _check_inputs(spec: ProblemSpec, names: tuple[str, ...]) -> None:
    if spec.kind not in PROBLEM_KINDS:
        known = ", ".join(PROBLEM_KINDS)
        raise UserError(f"data.kind = {spec.kind!r}: a problem dataset is one of {known}")
    if list(names) != problem_inputs(spec.model):
        raise UserError(f"{spec.model}'s inputs {names} differ from the catalog's")
    problem = problem_error(spec.model, spec.vary, spec.fixed)
    if problem is not None:
        raise UserError(problem)


def _whole_steps(name: str, value: float, step: float) -> int:
    """``value / step`` when it is a whole number, else a clear error."""
    ratio = value / step
    if abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio) or round(ratio) < 1:
        raise UserError(f"data.{name} = {value:g} is not a whole number of steps of {step:g} ms")
    return round(ratio)


def _latin_hypercube(n: int, dims: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """``n`` points of a Latin hypercube in [0, 1)^dims: one per stratum of every dimension."""
    if dims == 0:
        return np.zeros((n, 0))
    strata = np.column_stack([rng.permutation(n) for _ in range(dims)])
    return (strata + rng.random((n, dims))) / n


def _inputs(spec: ProblemSpec, names: tuple[str, ...], unit: NDArray[np.float64],
            count: int) -> NDArray[np.float64]:  # fmt: skip
    """Every input of ``count`` samples: varied ones scaled from ``unit``, fixed ones constant."""
    out = np.empty((count, len(names)))
    varied = [name for name in names if name in spec.vary]
    for index, name in enumerate(names):
        if name in spec.vary:
            low, high = spec.vary[name]
            out[:, index] = low + (high - low) * unit[:, varied.index(name)]
        else:
            out[:, index] = spec.fixed[name]
    return out
