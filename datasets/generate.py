"""Generate a dataset: plan its tasks, solve them on every rank, assemble the file.

A generation writes ``OUTPUT.partial/`` (a manifest of its settings and one
journal per rank and run) while it runs, and ``OUTPUT`` only at the end. Run
again with the same settings and it continues from the journals; the finished
file is byte-identical to an uninterrupted run's, whatever the number of ranks.

The driver (:func:`generate`) serves every dataset kind
(:mod:`ionops.datasets.kinds`) through the kind's :class:`GenerationPlan`: the
operator datasets of stimulus protocols planned here (one task per
trajectory), the point, transition and trajectory datasets of
:mod:`ionops.datasets.problems` (one task per block of samples).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ionops.datasets import parallel
from ionops.datasets.identity import Difference, differences
from ionops.datasets.ionic import IonicModel, get_ionic_model
from ionops.datasets.journal import JournalWriter, Record, encode_chunk, read_journals
from ionops.datasets.on_disk import check_room, partial_folder, prepare
from ionops.datasets.protocols import (
    SPLITS,
    SampleTable,
    Subset,
    draw_samples,
    paper_counts,
    scale_counts,
)
from ionops.datasets.solver import SolveFailed, SolverSettings, solve
from ionops.datasets.store import FORMAT, FORMAT_VERSION, write_dataset
from ionops.errors import IonopsError, UserError

MIN_GRID_POINTS = 8


@dataclass(frozen=True)
class GenerationSpec:
    """Everything that determines a dataset's content (and so its bytes).

    Times in ms. ``rtol``/``atol`` default to the model's own tolerances;
    ``parameters`` override the model's defaults by name; ``initial_state``
    names one of the model's initial states (default: its first).
    """

    model: str
    n_t: int
    t_end_ms: float
    fraction: float = 1.0
    seed: int = 0
    rtol: float | None = None
    atol: float | None = None
    parameters: Mapping[str, float] = field(default_factory=dict)
    initial_state: str | None = None
    subsets: Mapping[str, Mapping[str, Any]] | None = None
    kind: ClassVar[str] = "operator"

    @classmethod
    def from_config(cls, data: Any) -> GenerationSpec:
        """From an experiment's ``[data]`` section."""
        return cls(
            model=data.ionic_model, n_t=data.n_t, t_end_ms=data.t_end_ms, fraction=data.fraction,
            seed=data.seed, rtol=data.rtol, atol=data.atol, parameters=data.parameters,
            initial_state=data.initial_state,
            subsets=None if data.subsets is None else
            {name: s.model_dump() for name, s in data.subsets.items()},
        )  # fmt: skip

    def manifest(self) -> dict[str, Any]:
        out = asdict(self)
        out["parameters"] = dict(sorted(self.parameters.items()))
        if self.subsets is not None:
            out["subsets"] = {k: {**v, "i": list(v["i"]), "t_stim": list(v["t_stim"])}
                              for k, v in self.subsets.items()}  # fmt: skip
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": out}


class GenerationPlan:
    """What the driver needs of a validated dataset spec: its tasks, how to solve one, the file.

    ``tasks`` are (split index, item) keys, one journal record each;
    :meth:`solve` appends one record per task; :meth:`assemble` writes the
    final file from the records. ``IDENTITY`` maps every root attribute that
    records a setting of the content to its ``[data]`` key
    (:mod:`ionops.datasets.identity`): :meth:`differences` compares a file's
    recorded attributes with this plan's on them, for ``ionops generate`` and
    for every command that reads the dataset of an experiment.
    """

    spec: Any
    model: IonicModel
    unit = "traj"
    IDENTITY: ClassVar[Mapping[str, str]] = {}

    @property
    def kind(self) -> str:
        return str(self.spec.kind)

    def tasks(self) -> list[tuple[int, int]]:
        raise NotImplementedError

    def n_samples(self) -> int:
        raise NotImplementedError

    def cost(self, task: tuple[int, int]) -> float:
        return 1.0

    def solve(self, task: tuple[int, int], writer: JournalWriter) -> None:
        raise NotImplementedError

    def attributes(self) -> dict[str, Any]:
        raise NotImplementedError

    def assemble(self, output: Path, records: Mapping[tuple[int, int], Record]) -> None:
        raise NotImplementedError

    def differences(self, found: Mapping[str, Any]) -> list[Difference]:
        """Where a file's recorded ``found`` attributes differ from this plan's settings."""
        return differences(found, {"kind": self.kind, **self.attributes()}, self.IDENTITY)


@dataclass(frozen=True)
class Plan(GenerationPlan):
    """An operator spec resolved against its model: the protocols and how to solve them."""

    spec: GenerationSpec
    model: IonicModel
    parameters: np.ndarray
    y0: np.ndarray
    t_grid: np.ndarray
    settings: SolverSettings
    subsets: list[tuple[Subset, dict[str, int]]]
    samples: dict[str, SampleTable]
    IDENTITY: ClassVar[Mapping[str, str]] = {
        "kind": "data.kind", "model": "data.ionic_model", "parameters": "data.parameters.{}",
        "initial_state_kind": "data.initial_state", "initial_state": "data.initial_state",
        "rtol": "data.rtol", "atol": "data.atol", "seed": "data.seed",
        "fraction": "data.fraction", "t_end_ms": "data.t_end_ms", "n_t": "data.n_t",
        "subsets": "data.subsets",
    }  # fmt: skip

    def tasks(self) -> list[tuple[int, int]]:
        return [(s, k) for s, split in enumerate(SPLITS) for k in range(len(self.samples[split]))]

    def n_samples(self) -> int:
        return sum(len(t) for t in self.samples.values())

    def cost(self, task: tuple[int, int]) -> float:
        table = self.samples[SPLITS[task[0]]]
        return estimated_cost(table.amplitude[task[1]], table.t_stim[task[1]], self.spec.t_end_ms)

    def solve(self, task: tuple[int, int], writer: JournalWriter) -> None:
        split, sample = task
        table = self.samples[SPLITS[split]]
        amplitude, t_stim = float(table.amplitude[sample]), float(table.t_stim[sample])
        try:
            solution = solve(
                self.model, self.t_grid, amplitude, t_stim, self.settings,
                p=self.parameters, y0=self.y0, label=f"{SPLITS[split]} sample {sample}",
            )  # fmt: skip
        except SolveFailed as exc:
            raise parallel.Failure(str(exc)) from None
        stats = tuple(solution.stats.values())
        writer.append(split, sample, solution.attempts, stats, encode_chunk(solution.states),
                      solution.events if self.model.has_events else None)  # fmt: skip

    def assemble(self, output: Path, records: Mapping[tuple[int, int], Record]) -> None:
        write_dataset(output, self.attributes(), self.t_grid, self.model.n_states,
                      self.samples, records, events=self.model.has_events)  # fmt: skip

    def attributes(self) -> dict[str, Any]:
        from ionops import __version__

        model, spec = self.model, self.spec
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "ionops_version": __version__,
            "model": model.name,
            "model_title": model.title,
            "parameters": dict(zip(model.parameters, self.parameters.tolist(), strict=True)),
            "parameter_notes": dict(model.notes),
            "state_names": list(model.state_names),
            "state_units": list(model.state_units),
            "time_unit": model.time_unit,
            "current_unit": model.current_unit,
            "stimulus": "I_app(t) = amplitude for t <= t_stim, 0 afterwards; positive depolarises",
            "initial_state_kind": spec.initial_state or next(iter(model.initial_states)),
            "initial_state": self.y0,
            "solver": "ionops BDF: variable-order NDF (orders 1-5), split at t_stim",
            "rtol": self.settings.rtol,
            "atol": self.settings.atol_vector(model.n_states),
            "max_steps": self.settings.max_steps,
            "seed": spec.seed,
            "fraction": spec.fraction,
            "t_end_ms": spec.t_end_ms,
            "n_t": spec.n_t,
            "subsets": [{**asdict(subset), "counts": counts} for subset, counts in self.subsets],
        } | ({"events": "the model's resets (spikes): <split>/event_times, event_counts"}
             if model.has_events else {})  # fmt: skip


def make_plan(spec: Any) -> GenerationPlan:
    """The plan of any kind's ``spec`` (:meth:`DatasetKind.plan`); every problem is a
    :class:`UserError`."""
    from ionops.datasets.kinds import get_kind

    return get_kind(spec.kind).plan(spec)


def make_operator_plan(spec: GenerationSpec) -> Plan:
    """Validate an operator ``spec`` and draw its samples; every problem is a
    :class:`UserError`."""
    model = get_ionic_model(spec.model)
    if spec.n_t < MIN_GRID_POINTS:
        raise UserError(f"n_t = {spec.n_t}: too few grid points; need at least {MIN_GRID_POINTS}")
    if not spec.t_end_ms > 0:
        raise UserError(f"t_end_ms = {spec.t_end_ms}: the horizon must be positive")
    p = model.parameter_vector(spec.parameters)
    y0 = model.initial_state(p, spec.initial_state)
    rtol_default, atol_default = model.tolerances
    settings = SolverSettings(
        rtol=spec.rtol if spec.rtol is not None else rtol_default,
        atol=spec.atol if spec.atol is not None else atol_default,
    )
    if not 0 < settings.rtol < 1:
        raise UserError(f"rtol = {settings.rtol}: must be in (0, 1)")
    if min(np.atleast_1d(settings.atol)) <= 0:
        raise UserError(f"atol = {settings.atol}: must be positive")
    tables = scale_counts(_protocol(spec), spec.fraction)
    names: list[str] = []
    for rows in tables.values():
        names.extend(s.name for s, _ in rows if s.name not in names)
    subsets: dict[str, tuple[Subset, dict[str, int]]] = {}
    for split, rows in tables.items():
        for subset, count in rows:
            subset.validate(spec.t_end_ms)
            subsets.setdefault(subset.name, (subset, {}))[1][split] = count
    t_grid = np.linspace(0.0, spec.t_end_ms, spec.n_t)
    samples = draw_samples(tables, names, spec.seed)
    return Plan(spec, model, p, y0, t_grid, settings, list(subsets.values()), samples)


def _protocol(spec: GenerationSpec) -> dict[str, list[tuple[Subset, int]]]:
    """The paper's subsets for the model, or the user's own table."""
    if spec.subsets is None:
        return paper_counts(spec.model)
    if not spec.subsets:
        raise UserError("data.subsets is empty: give at least one subset, or omit it")
    tables: dict[str, list[tuple[Subset, int]]] = {split: [] for split in SPLITS}
    for name, row in spec.subsets.items():
        (i_low, i_high), (t_low, t_high) = row["i"], row["t_stim"]
        subset = Subset(name, float(i_low), float(i_high), float(t_low), float(t_high))
        for split in SPLITS:
            tables[split].append((subset, int(row.get(split, 0))))
    if sum(count for _, count in tables["train"]) == 0:
        raise UserError("data.subsets has no training samples: give some subset train > 0")
    return tables


@dataclass(frozen=True)
class GenerationReport:
    """What a call did: ``written`` is False when a finished file was already there.

    ``solved_now`` counts the tasks solved by this call, of ``tasks`` in all
    (a task is one trajectory of an operator dataset, one block of samples of
    a point, transition or trajectory dataset: ``unit``).
    """

    path: Path
    n_samples: int
    solved_now: int
    seconds: float
    written: bool = True
    tasks: int = 0
    unit: str = "traj"


def spec_from_config(data: Any) -> Any:
    """The generation spec of an experiment's ``[data]`` section, whatever its kind."""
    from ionops.datasets.kinds import get_kind

    return get_kind(data.kind).spec(data)


def estimated_cost(amplitude: float, t_stim: float, t_end_ms: float) -> float:
    """Relative solve cost of a protocol: long stimuli cost more (repeated or prolonged firing)."""
    stimulated = min(t_stim, t_end_ms) if amplitude != 0.0 else 0.0
    return 1.0 + 3.0 * stimulated / t_end_ms


def generate(
    spec: Any,
    output: Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> GenerationReport:
    """Generate ``output`` from ``spec`` on every rank of the MPI world (or serially).

    ``spec`` is a :class:`GenerationSpec` (an operator dataset) or a
    :class:`~ionops.datasets.problems.ProblemSpec` (a point, transition or trajectory
    dataset). Continues an interrupted generation with the same settings
    found beside ``output``. Raises :class:`UserError` for bad input before
    anything is written, and :class:`SolveFailed` if a sample cannot be solved.
    """
    comm = parallel.world()
    rank = 0 if comm is None else comm.Get_rank()
    started = time.perf_counter()
    setup: tuple[str, Any] = ("ok", None)
    plan: GenerationPlan | None = None
    if rank == 0:
        try:
            plan = make_plan(spec)
            setup = ("ok", prepare(plan, output, overwrite=overwrite, resume=resume))
        except IonopsError as exc:
            setup = ("error", str(exc))
    if comm is not None:
        setup = comm.bcast(setup, root=0)
    if setup[0] == "error":
        raise (UserError(setup[1]) if rank == 0 else _QuietFailure(setup[1]))
    state = setup[1]
    if state["complete"]:
        seconds = time.perf_counter() - started
        return GenerationReport(output, state["n_samples"], 0, seconds, written=False)

    plan = plan or make_plan(spec)  # ranks other than 0 draw the same plan themselves
    partial = partial_folder(output)
    journal = partial / f"{state['run_id']}-r{rank:04d}.journal"
    index = plan.tasks()
    tasks = state["pending"] if rank == 0 else []
    bar = _progress_bar(plan, state, enabled=progress and rank == 0)
    with JournalWriter(journal) as writer:

        def work(task: int) -> None:
            plan.solve(index[task], writer)

        failure = parallel.run_tasks(comm, tasks, work, bar.update)
    bar.close()
    if comm is not None:
        comm.Barrier()  # every journal is closed before rank 0 reads them
    if failure is not None:
        raise SolveFailed(failure) if rank == 0 else _QuietFailure(failure)
    if rank == 0:
        records = read_journals(partial)
        missing = [key for key in index if key not in records]
        if missing:
            raise IonopsError(f"{len(missing)} samples missing from the journals in {partial}")
        check_room(output, records)
        plan.assemble(output, records)
        shutil.rmtree(partial)
    if comm is not None:
        comm.Barrier()
    return GenerationReport(
        output, state["n_samples"], len(state["pending"]), time.perf_counter() - started,
        tasks=len(index), unit=plan.unit,
    )  # fmt: skip


class _QuietFailure(IonopsError):
    """The failure as seen on ranks other than 0, which stay quiet (rank 0 reports it)."""

    quiet = True


def _progress_bar(plan: GenerationPlan, state: dict[str, Any], *, enabled: bool) -> Any:
    from tqdm import tqdm

    total = len(plan.tasks())
    return tqdm(
        total=total, initial=total - len(state["pending"]), disable=not enabled,
        desc=f"{plan.model.name} {plan.unit}s", unit=plan.unit, dynamic_ncols=True,
    )  # fmt: skip
