"""Paced datasets: the generation spec, plan, file and loader of the ``paced`` kind
(described in :mod:`ionops.datasets.paced`; imported when a plan is made or a file read)."""

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
from ionops.datasets.stimuli import Pacing
from ionops.datasets.store import FORMAT, FORMAT_VERSION, assembling, open_file, read_attributes
from ionops.datasets.window_data import steps
from ionops.errors import UserError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class PacedSpec:
    """Everything that determines a paced dataset (and so its bytes)."""

    kind: str
    model: str
    cycle_lengths: tuple[float, float, float]
    test_cycle_lengths: tuple[float, ...]
    validation: int
    seed: int
    segment_ms: float
    discard_ms: float
    dt_ms: float
    stimulus_amplitude: float
    stimulus_ms: float
    stimulus_offset_ms: float
    parameter_set: str | None = None
    parameters: Mapping[str, float] = field(default_factory=dict)
    scale: Mapping[str, float] = field(default_factory=dict)
    initial_state: str | None = None

    @classmethod
    def from_config(cls, data: Any) -> PacedSpec:
        values = data.model_dump()
        values["model"] = values.pop("ionic_model")
        values["cycle_lengths"] = tuple(values["cycle_lengths"])
        values["test_cycle_lengths"] = tuple(values["test_cycle_lengths"])
        return cls(**values)

    def manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": asdict(self)}


def grid_cycle_lengths(low: float, high: float, step: float) -> NDArray[np.float64]:
    count = int(np.floor((high - low) / step + 1e-9)) + 1
    return np.round(low + step * np.arange(count), 9)


@dataclass(frozen=True)
class PacedPlan(GenerationPlan):
    """A validated paced spec: the model, the parameters and every split's cycle lengths."""

    spec: PacedSpec
    model: IonicModel
    parameters: NDArray[np.float64]
    y0: NDArray[np.float64]
    cycles: dict[str, NDArray[np.float64]]
    n_t: int
    unit = "segment"
    IDENTITY: ClassVar[Mapping[str, str]] = {
        "kind": "data.kind", "model": "data.ionic_model", "parameters": "data.parameters.{}",
        "parameter_set": "data.parameter_set", "scale": "data.scale.{}",
        "cycle_lengths": "data.cycle_lengths", "test_cycle_lengths": "data.test_cycle_lengths",
        "validation": "data.validation", "seed": "data.seed", "segment_ms": "data.segment_ms",
        "discard_ms": "data.discard_ms", "dt_ms": "data.dt_ms",
        "stimulus_amplitude": "data.stimulus_amplitude", "stimulus_ms": "data.stimulus_ms",
        "stimulus_offset_ms": "data.stimulus_offset_ms", "initial_state": "data.initial_state",
    }  # fmt: skip

    def tasks(self) -> list[tuple[int, int]]:
        return [(s, k) for s, split in enumerate(SPLITS) for k in range(len(self.cycles[split]))]

    def n_samples(self) -> int:
        return sum(len(c) for c in self.cycles.values())

    def cost(self, task: tuple[int, int]) -> float:
        return 1000.0 / float(self.cycles[SPLITS[task[0]]][task[1]])  # beats per second

    def pacing(self, cycle_length: float) -> Pacing:
        spec = self.spec
        return Pacing(spec.stimulus_amplitude, spec.stimulus_ms, spec.stimulus_offset_ms,
                      cycle_length)  # fmt: skip

    def times(self) -> NDArray[np.float64]:
        """The solver's grid: the start, then every kept sample."""
        kept = self.spec.discard_ms + self.spec.dt_ms * np.arange(self.n_t, dtype=np.float64)
        return kept if self.spec.discard_ms == 0 else np.concatenate((np.zeros(1), kept))

    def solve(self, task: tuple[int, int], writer: JournalWriter) -> None:
        split, index = task
        cycle = float(self.cycles[SPLITS[split]][index])
        rtol, atol = self.model.tolerances
        settings = SolverSettings(rtol=rtol, atol=atol, max_steps=50_000_000)
        try:
            solution = solve_stimulus(self.model, self.times(), self.pacing(cycle), settings,
                                      self.parameters, self.y0,
                                      label=f"{SPLITS[split]} segment at {cycle:g} ms")  # fmt: skip
        except SolveFailed as exc:
            raise parallel.Failure(str(exc)) from None
        states = solution.states[:, -self.n_t :]
        stats = tuple(int(v) for v in solution.stats.values())
        writer.append(split, index, solution.attempts, stats, encode_chunk(states))

    def attributes(self) -> dict[str, Any]:
        from ionops import __version__

        model, spec = self.model, self.spec
        rtol = model.tolerances[0]
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "ionops_version": __version__,
            "kind": spec.kind, "model": model.name, "model_title": model.title,
            "parameters": dict(zip(model.parameters, self.parameters.tolist(), strict=True)),
            "parameter_set": spec.parameter_set or "", "scale": dict(sorted(spec.scale.items())),
            "state_names": list(model.state_names), "state_units": list(model.state_units),
            "time_unit": model.time_unit, "current_unit": model.current_unit,
            "stimulus_name": model.stimulus_name, "initial_state": spec.initial_state or "",
            "cycle_lengths": list(spec.cycle_lengths),
            "test_cycle_lengths": list(spec.test_cycle_lengths),
            "validation": spec.validation, "seed": spec.seed, "segment_ms": spec.segment_ms,
            "discard_ms": spec.discard_ms, "dt_ms": spec.dt_ms,
            "stimulus_amplitude": spec.stimulus_amplitude, "stimulus_ms": spec.stimulus_ms,
            "stimulus_offset_ms": spec.stimulus_offset_ms,
            "solver": "ionops BDF: variable-order NDF (orders 1-5), split at every pulse",
            "rtol": rtol,
        }  # fmt: skip

    def assemble(self, output: Path, records: Mapping[tuple[int, int], Record]) -> None:
        write_paced(output, self, records)


def make_paced_plan(spec: PacedSpec) -> PacedPlan:
    """Validate ``spec`` against its model and draw the validation segments; every problem is
    a :class:`UserError`."""
    model = get_ionic_model(spec.model)
    values = {**model.parameter_set(spec.parameter_set), **spec.parameters}
    defaults = dict(zip(model.parameters, model.parameter_vector(values).tolist(), strict=True))
    for name, factor in spec.scale.items():
        if name not in defaults:
            raise UserError(f"data.scale names {name!r}, not a parameter of {model.name}; its "
                            f"parameters: {', '.join(model.parameters)}")  # fmt: skip
        defaults[name] *= factor
    parameters = model.parameter_vector(defaults)
    grid = grid_cycle_lengths(*spec.cycle_lengths)
    if spec.validation >= grid.size:
        raise UserError(f"data.validation = {spec.validation} leaves no training segment of the "
                        f"{grid.size} cycle lengths in data.cycle_lengths")  # fmt: skip
    order = np.random.default_rng(spec.seed).permutation(grid.size)
    validation = np.sort(grid[order[: spec.validation]])
    train = np.sort(grid[order[spec.validation :]])
    kept = spec.segment_ms - spec.discard_ms
    n_t = steps("segment_ms - discard_ms", kept, spec.dt_ms) + 1
    if spec.discard_ms:
        steps("discard_ms", spec.discard_ms, spec.dt_ms)
    cycles = {"train": train, "validation": validation,
              "test": np.array(spec.test_cycle_lengths, dtype=np.float64)}  # fmt: skip
    return PacedPlan(spec, model, parameters, model.initial_state(parameters, spec.initial_state),
                     cycles, n_t)  # fmt: skip


def write_paced(output: Path, plan: PacedPlan, records: Mapping[tuple[int, int], Record]) -> None:
    """Assemble a paced file from its solved segments, atomically."""
    n_states, n_t = plan.model.n_states, plan.n_t
    time = plan.spec.dt_ms * np.arange(n_t)
    with assembling(output, plan.attributes()) as handle:
        for index, split in enumerate(SPLITS):
            cycles = plan.cycles[split]
            group = handle.create_group(split)
            group.attrs["layout"] = "paced"
            group.create_dataset("cycle_length", data=cycles, track_times=False)
            group.create_dataset("time", data=time, track_times=False)
            group["time"].attrs["units"] = "ms"
            shape = (len(cycles), n_states, n_t)
            states = group.create_dataset("states", shape, "<f4", chunks=(1, *shape[1:]),
                                          track_times=False)  # fmt: skip
            stimulus = np.zeros((len(cycles), n_t), dtype=np.float32)
            for k, cycle in enumerate(cycles):
                chunk = decode_chunk(records[(index, k)].read_payload(), (n_states, n_t))
                states[k] = chunk
                stimulus[k] = plan.pacing(float(cycle)).step_means(plan.times()[-n_t:],
                                                                   plan.spec.dt_ms)  # fmt: skip
            group.create_dataset("stimulus", data=stimulus, track_times=False)


@dataclass(frozen=True)
class PacedData:
    """A paced dataset in memory: each split's cycle lengths, states and stimulus."""

    attributes: dict[str, Any]
    time: NDArray[np.float64]
    cycle_length: dict[str, NDArray[np.float64]]
    states: dict[str, NDArray[np.float32]]
    stimulus: dict[str, NDArray[np.float32]]

    @property
    def nbytes(self) -> int:
        arrays: list[np.ndarray] = [self.time, *self.cycle_length.values(),
                                    *self.states.values(), *self.stimulus.values()]  # fmt: skip
        return sum(int(a.nbytes) for a in arrays)


def load_paced(path: Path) -> PacedData:
    """A paced dataset file, checked for its layout and finite values (NaN named by split,
    segment and state)."""
    attributes = read_attributes(path)
    if attributes.get("kind") != "paced":
        raise UserError(f"{path} is a {attributes.get('kind', 'operator')!r} dataset; the "
                        "experiment wants a 'paced' dataset")  # fmt: skip
    cycles, states, stimulus = {}, {}, {}
    with open_file(path) as handle:
        time = handle["train/time"][...].astype(np.float64)
        for split in SPLITS:
            if split not in handle or "states" not in handle[split]:
                raise UserError(f"{path} has no {split}/states: it is damaged; delete it and "
                                "generate it again")  # fmt: skip
            cycles[split] = handle[split]["cycle_length"][...]
            states[split] = handle[split]["states"][...]
            stimulus[split] = handle[split]["stimulus"][...]
            bad = ~np.isfinite(states[split])
            if bad.any():
                segment, state, _ = np.argwhere(bad)[0]
                raise UserError(f"{path}: {split} segment {segment} (cycle length "
                                f"{cycles[split][segment]:g} ms) holds NaN or infinite values in "
                                f"{attributes['state_names'][state]}")  # fmt: skip
    return PacedData(attributes, time, cycles, states, stimulus)
