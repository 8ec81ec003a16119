"""Reference datasets: the generation spec, plan, file and loader of the ``reference`` kind
(described in :mod:`ionops.datasets.reference`; imported when a plan is made or a file read)."""

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
from ionops.datasets.window_data import steps
from ionops.errors import UserError

SOLVER = {"rtol": 1e-11, "atol": 1e-12}  # BDF tolerances of an ordinary model's reference
SPLITS = ("validation", "test")
DEFAULT_SHIFT = 5.0  # the validation start: the first state (the membrane potential) + 5


@dataclass(frozen=True)
class ReferenceSpec:
    """Everything that determines a reference dataset (and so its bytes)."""

    kind: str
    model: str
    stimulus: Mapping[str, Any]
    t_end_ms: float
    dt_ms: float
    caputo_step_ms: float
    parameter_set: str | None = None
    parameters: Mapping[str, float] = field(default_factory=dict)
    initial_state: str | None = None
    validation_offset: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, data: Any) -> ReferenceSpec:
        values = data.model_dump()
        values["model"] = values.pop("ionic_model")
        return cls(**values)

    def manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": asdict(self)}


@dataclass(frozen=True)
class ReferencePlan(GenerationPlan):
    """A validated reference spec: the model, protocol, two starts and the grid."""

    spec: ReferenceSpec
    model: IonicModel
    parameters: NDArray[np.float64]
    stimulus: Stimulus
    starts: dict[int, NDArray[np.float64]]  # split index -> initial state
    n_t: int
    unit = "traj"
    IDENTITY: ClassVar[Mapping[str, str]] = {
        "kind": "data.kind", "model": "data.ionic_model", "parameters": "data.parameters.{}",
        "parameter_set": "data.parameter_set", "initial_state": "data.initial_state",
        "stimulus": "data.stimulus.{}", "t_end_ms": "data.t_end_ms", "dt_ms": "data.dt_ms",
        "caputo_step_ms": "data.caputo_step_ms",
        "validation_offset": "data.validation_offset.{}",
    }  # fmt: skip

    def tasks(self) -> list[tuple[int, int]]:
        return [(0, 0), (1, 0)]

    def n_samples(self) -> int:
        return 2

    def cost(self, task: tuple[int, int]) -> float:
        return float(self.n_t)

    def settings(self) -> SolverSettings:
        if self.model.caputo:
            return SolverSettings(rtol=1e-10, atol=1e-12, max_step=self.spec.caputo_step_ms,
                                  max_steps=100_000_000)  # fmt: skip
        return SolverSettings(rtol=SOLVER["rtol"], atol=SOLVER["atol"], max_steps=100_000_000)

    def solve(self, task: tuple[int, int], writer: JournalWriter) -> None:
        grid = np.arange(self.n_t, dtype=np.float64) * self.spec.dt_ms
        try:
            solution = solve_stimulus(self.model, grid, self.stimulus, self.settings(),
                                      self.parameters, self.starts[task[0]],
                                      label=SPLITS[task[0]])  # fmt: skip
        except SolveFailed as exc:
            raise parallel.Failure(str(exc)) from None
        stats = tuple(int(v) for v in solution.stats.values())
        writer.append(task[0], 0, solution.attempts, stats, encode_chunk(solution.states),
                      solution.events if self.model.has_events else None)  # fmt: skip

    def attributes(self) -> dict[str, Any]:
        from ionops import __version__

        model, spec = self.model, self.spec
        solver = ("ionops L1 scheme (uniform step)" if model.caputo else
                  "ionops BDF: variable-order NDF (orders 1-5), events located")  # fmt: skip
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "ionops_version": __version__,
            "kind": spec.kind, "model": model.name, "model_title": model.title,
            "parameters": dict(zip(model.parameters, self.parameters.tolist(), strict=True)),
            "parameter_set": spec.parameter_set or "",
            "state_names": list(model.state_names), "state_units": list(model.state_units),
            "time_unit": model.time_unit, "stimulus_name": model.stimulus_name,
            "stimulus": self.stimulus.record(), "initial_state": spec.initial_state or "",
            "t_end_ms": spec.t_end_ms, "dt_ms": spec.dt_ms,
            "caputo_step_ms": spec.caputo_step_ms,
            "validation_offset": dict(sorted(spec.validation_offset.items())),
            "solver": solver, "rtol": self.settings().rtol,
        }  # fmt: skip

    def assemble(self, output: Path, records: Mapping[tuple[int, int], Record]) -> None:
        write_reference(output, self, records)


def make_reference_plan(spec: ReferenceSpec) -> ReferencePlan:
    """Validate ``spec`` against its model; every problem is a :class:`UserError`."""
    model = get_ionic_model(spec.model)
    overrides = {**model.parameter_set(spec.parameter_set), **spec.parameters}
    parameters = model.parameter_vector(overrides)
    y0 = model.initial_state(parameters, spec.initial_state)
    offset = dict(spec.validation_offset) or {model.state_names[0]: DEFAULT_SHIFT}
    shift = np.array([offset.get(s, 0.0) for s in model.state_names])
    n_t = steps("t_end_ms", spec.t_end_ms, spec.dt_ms) + 1
    if model.caputo:
        steps("dt_ms", spec.dt_ms, spec.caputo_step_ms)
    return ReferencePlan(spec, model, parameters, from_section(dict(spec.stimulus)),
                         {0: y0 + shift, 1: y0}, n_t)  # fmt: skip


def write_reference(output: Path, plan: ReferencePlan,
                    records: Mapping[tuple[int, int], Record]) -> None:  # fmt: skip
    """Assemble a reference file from its two solved problems, atomically."""
    attributes, n_states = plan.attributes(), plan.model.n_states
    with assembling(output, attributes) as handle:
        for index, split in enumerate(SPLITS):
            record = records[(index, 0)]
            states = decode_chunk(record.read_payload(), (n_states, plan.n_t))
            group = handle.create_group(split)
            group.attrs["layout"] = "reference"
            group.create_dataset("time", data=np.arange(plan.n_t) * plan.spec.dt_ms,
                                 track_times=False)  # fmt: skip
            group["time"].attrs["units"] = "ms"
            group.create_dataset("states", data=states.astype(np.float64), track_times=False)
            group.create_dataset("initial_state", data=plan.starts[index], track_times=False)
            group.create_dataset("event_times", data=record.read_events(), track_times=False)


@dataclass(frozen=True)
class ReferenceData:
    """A reference dataset in memory: each split's time, states, start and event times, and
    the file's root attributes."""

    attributes: dict[str, Any]
    time: dict[str, NDArray[np.float64]]
    states: dict[str, NDArray[np.float64]]
    initial_state: dict[str, NDArray[np.float64]]
    events: dict[str, NDArray[np.float64]]

    @property
    def nbytes(self) -> int:
        arrays = [*self.time.values(), *self.states.values(), *self.events.values()]
        return sum(int(a.nbytes) for a in arrays)

    @property
    def state_names(self) -> list[str]:
        return list(self.attributes["state_names"])


def load_reference(path: Path) -> ReferenceData:
    """A reference dataset file, checked for its layout and finite values."""
    attributes = read_attributes(path)
    if attributes.get("kind") != "reference":
        raise UserError(f"{path} is a {attributes.get('kind', 'operator')!r} dataset; the "
                        "experiment wants a 'reference' dataset")  # fmt: skip
    out: dict[str, dict[str, NDArray[np.float64]]] = {k: {} for k in ("t", "s", "y0", "e")}
    with open_file(path) as handle:
        for split in SPLITS:
            if split not in handle or "states" not in handle[split]:
                raise UserError(f"{path} has no {split}/states: it is damaged; delete it and "
                                "generate it again")  # fmt: skip
            group = handle[split]
            out["t"][split] = group["time"][...].astype(np.float64)
            out["s"][split] = group["states"][...].astype(np.float64)
            out["y0"][split] = group["initial_state"][...].astype(np.float64)
            out["e"][split] = group["event_times"][...].astype(np.float64)
            if not np.isfinite(out["s"][split]).all():
                raise UserError(f"{path}: {split}/states holds NaN or infinite values; "
                                "generate it again")  # fmt: skip
    return ReferenceData(attributes, out["t"], out["s"], out["y0"], out["e"])
