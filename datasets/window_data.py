"""Window datasets: the generation spec, plan, file and loader of the ``window`` kind.

The kind's section and what the file holds are described in
:mod:`ionops.datasets.window`; this module solves, writes and reads it (imported when a
plan is made or a file read, so that reading an experiment stays light).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ionops.datasets import parallel
from ionops.datasets.generate import GenerationPlan
from ionops.datasets.ionic import IonicModel, get_ionic_model
from ionops.datasets.journal import JournalWriter, Record, decode_chunk, encode_chunk
from ionops.datasets.solver import SolveFailed, SolverSettings, solve_stimulus
from ionops.datasets.stimuli import Stimulus, from_section
from ionops.datasets.store import FORMAT, FORMAT_VERSION, assembling, open_file, read_attributes
from ionops.errors import UserError

SOLVER = {"rtol": 1e-10, "atol": 1e-12}  # the window's BDF tolerances (a reference solution)


@dataclass(frozen=True)
class WindowSpec:
    """Everything that determines a window dataset (and so its bytes)."""

    kind: str
    model: str
    stimulus: Mapping[str, Any]
    t_end_ms: float
    long_end_ms: float
    dt_ms: float
    window_ms: float
    noise: Mapping[str, Any]
    validation_offset: Mapping[str, float]
    parameters: Mapping[str, float] = field(default_factory=dict)
    initial_state: str | None = None

    @classmethod
    def from_config(cls, data: Any) -> WindowSpec:
        values = data.model_dump()
        values["model"] = values.pop("ionic_model")
        return cls(**values)

    def manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": asdict(self)}


def steps(name: str, value: float, dt: float) -> int:
    """``value / dt`` when a whole number of steps, else a clear error naming the key."""
    ratio = value / dt
    if abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio) or round(ratio) < 1:
        raise UserError(f"data.{name} = {value:g} is not a whole number of steps of data.dt_ms "
                        f"= {dt:g} ms")  # fmt: skip
    return round(ratio)


def ornstein_uhlenbeck(n_states: int, n_t: int, dt: float, theta: float, sigma: float,
                       seed: int) -> NDArray[np.float64]:  # fmt: skip
    """(n_states, n_t) deterministic OU paths from 0 (paper 002, eq. 9), one stream a state."""
    out = np.zeros((n_states, n_t))
    for state, stream in enumerate(np.random.SeedSequence(seed).spawn(n_states)):
        kicks = sigma * np.sqrt(dt) * np.random.default_rng(stream).standard_normal(n_t - 1)
        for k in range(1, n_t):
            out[state, k] = out[state, k - 1] * (1.0 - theta * dt) + kicks[k - 1]
    return out


@dataclass(frozen=True)
class WindowPlan(GenerationPlan):
    """A validated window spec: the model, protocol, starts and grids; two trajectories to
    solve (validation and test; the training window is the test's first ``n_window``)."""

    spec: WindowSpec
    model: IonicModel
    parameters: NDArray[np.float64]
    stimulus: Stimulus
    starts: dict[int, NDArray[np.float64]]  # split index -> initial state
    scale: NDArray[np.float64]
    n_window: int
    n_end: int
    n_long: int
    unit = "traj"
    IDENTITY: ClassVar[Mapping[str, str]] = {
        "kind": "data.kind", "model": "data.ionic_model", "parameters": "data.parameters.{}",
        "initial_state": "data.initial_state", "stimulus": "data.stimulus.{}",
        "t_end_ms": "data.t_end_ms", "long_end_ms": "data.long_end_ms", "dt_ms": "data.dt_ms",
        "window_ms": "data.window_ms", "noise": "data.noise.{}",
        "validation_offset": "data.validation_offset.{}", "rtol": "data.ionic_model",
    }  # fmt: skip

    def tasks(self) -> list[tuple[int, int]]:
        return [(1, 0), (2, 0)]

    def n_samples(self) -> int:
        return 2

    def cost(self, task: tuple[int, int]) -> float:
        return float(self.n_end if task[0] == 1 else self.n_long)

    def solve(self, task: tuple[int, int], writer: JournalWriter) -> None:
        n_t = self.n_end if task[0] == 1 else self.n_long
        grid = np.arange(n_t, dtype=np.float64) * self.spec.dt_ms
        settings = SolverSettings(rtol=SOLVER["rtol"], atol=SOLVER["atol"], max_steps=10_000_000)
        label = "validation" if task[0] == 1 else "test"
        try:
            solution = solve_stimulus(self.model, grid, self.stimulus, settings, self.parameters,
                                      self.starts[task[0]], label=label)  # fmt: skip
        except SolveFailed as exc:
            raise parallel.Failure(str(exc)) from None
        stats = tuple(int(v) for v in solution.stats.values())
        writer.append(task[0], 0, solution.attempts, stats, encode_chunk(solution.states))

    def attributes(self) -> dict[str, Any]:
        from ionops import __version__

        model, spec = self.model, self.spec
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "ionops_version": __version__,
            "kind": spec.kind, "model": model.name, "model_title": model.title,
            "parameters": dict(zip(model.parameters, self.parameters.tolist(), strict=True)),
            "state_names": list(model.state_names), "state_units": list(model.state_units),
            "time_unit": model.time_unit, "stimulus_name": model.stimulus_name,
            "stimulus": self.stimulus.record(), "initial_state": spec.initial_state or "",
            "t_end_ms": spec.t_end_ms, "long_end_ms": spec.long_end_ms, "dt_ms": spec.dt_ms,
            "window_ms": spec.window_ms, "noise": dict(spec.noise),
            "noise_scale": self.scale.tolist(),
            "validation_offset": dict(sorted(spec.validation_offset.items())),
            "solver": "ionops BDF: variable-order NDF (orders 1-5)",
            "rtol": SOLVER["rtol"], "atol": SOLVER["atol"],
        }  # fmt: skip

    def assemble(self, output: Path, records: Mapping[tuple[int, int], Record]) -> None:
        write_window(output, self, records)


def make_window_plan(spec: WindowSpec) -> WindowPlan:
    """Validate ``spec`` against its model; every problem is a :class:`UserError`."""
    model = get_ionic_model(spec.model)
    parameters = model.parameter_vector(spec.parameters)
    y0 = model.initial_state(parameters, spec.initial_state)
    unknown = sorted(set(spec.validation_offset) - set(model.state_names))
    unknown += sorted(set(spec.noise["scale"]) - set(model.state_names))
    if unknown:
        raise UserError(f"data.validation_offset / data.noise.scale name {unknown}, not states "
                        f"of {model.name} ({', '.join(model.state_names)})")  # fmt: skip
    shift = np.array([spec.validation_offset.get(s, 0.0) for s in model.state_names])
    scale = np.array([spec.noise["scale"].get(s, 1.0) for s in model.state_names])
    dt = spec.dt_ms
    return WindowPlan(
        spec, model, parameters, from_section(dict(spec.stimulus)), {1: y0 + shift, 2: y0},
        scale, steps("window_ms", spec.window_ms, dt), steps("t_end_ms", spec.t_end_ms, dt)
        + 1, steps("long_end_ms", spec.long_end_ms, dt) + 1,
    )  # fmt: skip


def write_window(output: Path, plan: WindowPlan,
                 records: Mapping[tuple[int, int], Record]) -> None:  # fmt: skip
    """Assemble a window file from its two solved trajectories, atomically."""
    attributes, starts, scale, dt = plan.attributes(), plan.starts, plan.scale, plan.spec.dt_ms
    n_states, n_window, n_end, n_long = len(scale), plan.n_window, plan.n_end, plan.n_long
    test = decode_chunk(records[(2, 0)].read_payload(), (n_states, n_long))
    validation = decode_chunk(records[(1, 0)].read_payload(), (n_states, n_end))
    noise_settings = attributes["noise"]
    noise = ornstein_uhlenbeck(n_states, n_window, dt, noise_settings["theta"],
                               noise_settings["sigma"], noise_settings["seed"])  # fmt: skip
    clean = test[:, :n_window]
    noisy = (clean.astype(np.float64) + scale[:, None] * noise).astype(np.float32)
    with assembling(output, attributes) as handle:
        splits = {"train": (noisy, starts[2]), "validation": (validation, starts[1]),
                  "test": (test, starts[2])}  # fmt: skip
        for split, (states, start) in splits.items():
            group = handle.create_group(split)
            group.attrs["layout"] = "window"
            group.create_dataset("time", data=np.arange(states.shape[1]) * dt,
                                 track_times=False)  # fmt: skip
            group["time"].attrs["units"] = "ms"
            group.create_dataset("states", data=states, track_times=False)
            group.create_dataset("initial_state", data=start, track_times=False)
        handle["train"].create_dataset("clean", data=clean, track_times=False)
        handle["train"].create_dataset("noise", data=noise, track_times=False)


@dataclass(frozen=True)
class WindowData:
    """A window dataset in memory: every split's time and states (float64), the window's
    clean states and unscaled noise, and the file's root attributes."""

    attributes: dict[str, Any]
    time: dict[str, NDArray[np.float64]]
    states: dict[str, NDArray[np.float64]]
    initial_state: dict[str, NDArray[np.float64]]
    clean: NDArray[np.float64]
    noise: NDArray[np.float64]

    @property
    def nbytes(self) -> int:
        arrays = [*self.time.values(), *self.states.values(), self.clean, self.noise]
        return sum(int(a.nbytes) for a in arrays)

    @property
    def state_names(self) -> list[str]:
        return list(self.attributes["state_names"])


def load_window(path: Path) -> WindowData:
    """A window dataset file, checked for its layout and finite values."""
    attributes = read_attributes(path)
    if attributes.get("kind") != "window":
        raise UserError(f"{path} is a {attributes.get('kind', 'operator')!r} dataset; the "
                        "experiment wants a 'window' dataset")  # fmt: skip
    time, states, starts = {}, {}, {}
    with open_file(path) as handle:
        for split in ("train", "validation", "test"):
            if split not in handle or "states" not in handle[split]:
                raise UserError(f"{path} has no {split}/states: it is damaged; delete it and "
                                "generate it again")  # fmt: skip
            group = handle[split]
            time[split] = group["time"][...].astype(np.float64)
            states[split] = group["states"][...].astype(np.float64)
            starts[split] = group["initial_state"][...].astype(np.float64)
        clean = handle["train/clean"][...].astype(np.float64)
        noise = handle["train/noise"][...].astype(np.float64)
    for split, values in states.items():
        if not np.isfinite(values).all():
            raise UserError(f"{path}: {split}/states holds NaN or infinite values; generate "
                            "it again")  # fmt: skip
    return WindowData(attributes, time, states, starts, clean, noise)
