"""The splitting-PINN family's networks, objective and errors (see
:mod:`ionops.models.families.splitting`).

A splitting march is not trained by gradients: its epochs advance two marches (the test
problem and the validation one) by a chunk of the horizon each, and its "optimisation"
(:class:`MarchStep`) is that advance. The network it leaves is :class:`MarchedSolution`:
the current windows' output layers (the trained coefficients) and the test problem's
trajectory at every window's end, which is what ``ionops predict`` serves. A checkpoint also
carries both marches' states (the objective's), so a search resumes them where they stopped.
The baselines (``pinn``, ``fpinn``) are two :class:`~ionops.models.horizon_pinn.HorizonNetwork`
s, one per problem, trained together by Adam through the standard optimisation.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ionops.datasets.ionic import IonicModel, get_ionic_model
from ionops.datasets.reference_data import ReferenceData
from ionops.datasets.stimuli import from_section
from ionops.models import spikes
from ionops.models.family import Objective, TrialConfig
from ionops.models.horizon_pinn import HorizonNetwork, HorizonResidual
from ionops.models.splitting import March, Marcher, Problem, WindowSettings, problem_of
from ionops.training.optimisation import Optimisation

SPIKE_KEYS = ("f1", "precision", "recall", "phase_drift")


class MarchedSolution(nn.Module):
    """A splitting march's result: each group's output-layer coefficients (the current
    window's) and the test problem's states at every window's end so far."""

    time: torch.Tensor
    states: torch.Tensor
    filled: torch.Tensor
    events: torch.Tensor
    n_events: torch.Tensor
    seconds: torch.Tensor

    def __init__(self, n_states: int, groups: list[list[int]], widths: list[int],
                 lattice: int) -> None:  # fmt: skip
        super().__init__()
        self.coefficients = nn.ParameterList(
            nn.Parameter(torch.zeros(len(g) * (widths[-1] + 1), dtype=torch.float64),
                         requires_grad=False) for g in groups)  # fmt: skip
        self.register_buffer("time", torch.zeros(lattice, dtype=torch.float64))
        self.register_buffer("states", torch.zeros(n_states, lattice, dtype=torch.float64))
        self.register_buffer("filled", torch.zeros((), dtype=torch.int64))
        self.register_buffer("events", torch.zeros(lattice, dtype=torch.float64))
        self.register_buffer("n_events", torch.zeros((), dtype=torch.int64))
        self.register_buffer("seconds", torch.zeros((), dtype=torch.float64))

    def store(self, marcher: Marcher, record: March) -> None:
        times, states = record.arrays()
        if times.size > self.time.numel() or len(record.events) > self.events.numel():
            raise RuntimeError(f"a march of {times.size} window ends and {len(record.events)} "
                               f"events overflows its network ({self.time.numel()})")  # fmt: skip
        with torch.no_grad():
            for parameter, values in zip(self.coefficients, marcher.coefficients, strict=True):
                parameter.copy_(torch.as_tensor(values))
            self.time[: times.size] = torch.as_tensor(times)
            self.states[:, : times.size] = torch.as_tensor(states)
            self.filled.fill_(times.size)
            self.events[: len(record.events)] = torch.as_tensor(np.array(record.events))
            self.n_events.fill_(len(record.events))
            self.seconds.fill_(record.seconds)

    def trajectory(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """(times, states (S, n), event times) of the march so far."""
        n, k = int(self.filled), int(self.n_events)
        return (self.time[:n].cpu().numpy().copy(), self.states[:, :n].cpu().numpy().copy(),
                self.events[:k].cpu().numpy().copy())  # fmt: skip

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        raise TypeError("a marched solution is read with trajectory(), not called")


class HorizonPair(nn.Module):
    """The baselines' two networks: the test problem's and the validation problem's."""

    def __init__(self, widths: list[int], start: list[float], validation_start: list[float],
                 t_end: float) -> None:  # fmt: skip
        super().__init__()
        self.test = HorizonNetwork(widths, start, t_end)
        self.validation = HorizonNetwork(widths, validation_start, t_end)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.test(t)
        return out


def build(arguments: Mapping[str, Any]) -> nn.Module:
    widths = [int(w) for w in arguments["widths"]]
    if arguments["method"] == "splitting":
        return MarchedSolution(int(arguments["n_states"]), [list(g) for g in arguments["groups"]],
                               widths, int(arguments["lattice"]))  # fmt: skip
    return HorizonPair(widths, list(arguments["start"]), list(arguments["validation_start"]),
                       float(arguments["t_end"]))  # fmt: skip


class MarchStep(Optimisation):
    """A march's epoch: the objective's loss advances the marches; nothing is stepped."""

    def __init__(self) -> None:
        self.optimizers, self.schedulers, self.clip_norm, self.closure = [], [], None, False
        self._parameters = []

    def step(self, loss_of: Callable[[], torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return loss_of().detach()

    def end_epoch(self, train_loss: float) -> None:
        pass

    @property
    def learning_rate(self) -> float:
        return 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [], "schedulers": []}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def problem_for(attributes: Mapping[str, Any], start: NDArray[np.float64]) -> Problem:
    model = get_ionic_model(str(attributes["model"]))
    parameters = model.parameter_vector(dict(attributes["parameters"]))
    t_end = float(attributes["t_end_ms"])
    pieces = from_section(dict(attributes["stimulus"])).pieces(t_end)
    return problem_of(model, parameters, start, pieces, t_end)


def common_times(reference: NDArray[np.float64], marched: NDArray[np.float64]) -> NDArray:
    """Indices into ``reference`` of its times that a march also recorded (to 1e-9 ms)."""
    keys = np.round(np.asarray(marched) * 1e9).astype(np.int64)
    found = np.isin(np.round(reference * 1e9).astype(np.int64), keys)
    return np.flatnonzero(found)


def crossings(model: IonicModel, parameters: NDArray[np.float64], time: NDArray[np.float64],
              states: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
    """The grid times at which a reset model's event function turns non-negative."""
    values = np.array([model.event(t, np.ascontiguousarray(states[:, k]), parameters)
                       for k, t in enumerate(time)])  # fmt: skip
    up = np.flatnonzero((values[:-1] < 0) & (values[1:] >= 0))
    return np.asarray(time[up + 1])


def trajectory_errors(attributes: Mapping[str, Any], time: NDArray[np.float64],
                      truth: NDArray[np.float64], predicted: NDArray[np.float64],
                      true_events: NDArray[np.float64], events: NDArray[np.float64] | None,
                      threshold: float, window: float,
                      ) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
    """``rel_l2`` of each state over ``time`` and the spike scores of the first; spikes are
    peaks above ``threshold`` for a model without resets, events for one with them (given
    in ``events``, or found as crossings of the predicted states), the truth's recorded."""
    model = get_ionic_model(str(attributes["model"]))
    norms = np.linalg.norm(truth, axis=1)
    rel = np.linalg.norm(predicted - truth, axis=1) / np.where(norms > 0, norms, np.nan)
    out: dict[str, Any] = {"rel_l2": np.where(np.isfinite(rel), rel, np.inf)}
    if model.has_events:
        if events is None:
            p = model.parameter_vector(dict(attributes["parameters"]))
            events = crossings(model, p, time, np.nan_to_num(predicted, nan=-1e300))
        reached = float(time[-1]) if time.size else 0.0
        scored = spikes.event_score(true_events[true_events <= reached + 1e-9], events, window)
    else:
        finite = np.where(np.isfinite(predicted[0]), predicted[0], -np.inf)
        scored = spikes.score(time, truth[0], finite, threshold, window)
    out.update({key: scored.values[key] for key in SPIKE_KEYS})
    return out, {k: v for k, v in scored.undefined.items() if k in SPIKE_KEYS}


def _tensors(errors: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in errors.items():
        array = np.asarray(value, dtype=np.float64)
        out[key] = torch.as_tensor(array.reshape(1, -1) if array.ndim else array.reshape(1))
    return out


class SplittingObjective(Objective):
    """Two problems solved with one trial's settings; see the module docstring."""

    def __init__(self, data: ReferenceData, trial: TrialConfig) -> None:
        self.data = data
        self.learning = learning = dict(trial.learning)
        self.state_names = data.state_names
        self.method = str(learning["method"])
        self.epochs = int(trial.training.epochs)
        self.seed = int(trial.training.seed)
        attributes = data.attributes
        self.problems = {split: problem_for(attributes, data.initial_state[split])
                         for split in ("test", "validation")}  # fmt: skip
        self.done = 0  # epochs (chunks of the horizon, or Adam iterations) behind us
        self.cost = 0.0  # a baseline's seconds of training
        self.undefined: dict[str, dict[str, str]] = {}
        if self.method == "splitting":
            settings = WindowSettings(
                window_ms=float(learning["window_ms"]), widths=tuple(learning["widths"]),
                collocation=int(learning["collocation"]), splitting=str(learning["splitting"]),
                feature_scale=float(learning["feature_scale"]),
                iterations=int(learning["iterations"]), tolerance=float(learning["tolerance"]),
                caputo_step_ms=float(learning["caputo_step_ms"]),
            )  # fmt: skip
            self.marchers = {split: Marcher(problem, settings, self.seed)
                             for split, problem in self.problems.items()}  # fmt: skip
            self.records = {split: March([0.0], [problem.start.copy()])
                            for split, problem in self.problems.items()}  # fmt: skip
        else:
            points = int(learning["points"])
            self.residuals = {split: HorizonResidual(problem, self.method, points)
                              for split, problem in self.problems.items()}  # fmt: skip

    def splits(self) -> tuple[str, ...]:
        return ("train", "validation", "test")

    def optimisation(self, model: nn.Module, phase: Any, settings: Any) -> Optimisation:
        if self.method == "splitting":
            return MarchStep()
        return super().optimisation(model, phase, settings)

    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[Any]:
        if self.method == "splitting":
            yield None
            return
        yield {split: residual.collocation(generator) for split, residual in
               self.residuals.items()}  # fmt: skip

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        self.done += 1
        if self.method == "splitting":
            assert isinstance(model, MarchedSolution)
            until = self.problems["test"].t_end * min(self.done, self.epochs) / self.epochs
            for split, marcher in self.marchers.items():
                marcher.run(until, self.records[split])
            model.store(self.marchers["test"], self.records["test"])
            residuals = self.records["test"].residuals
            return torch.tensor(max(residuals) if residuals else 0.0)
        assert isinstance(model, HorizonPair)
        started = clock.perf_counter()
        total = self.residuals["test"].loss(model.test, batch["test"]) + \
            self.residuals["validation"].loss(model.validation, batch["validation"])  # fmt: skip
        self.cost += clock.perf_counter() - started
        return total

    # -- errors ----------------------------------------------------------------------------------
    def trajectory(self, model: nn.Module, split: str) -> tuple[NDArray, NDArray, NDArray | None]:
        """(times, states, events or None) of the problem ``split`` names as the network has
        it (a march: its window ends so far; a baseline: the reference's grid)."""
        key = "validation" if split == "validation" else "test"
        if isinstance(model, MarchedSolution):
            if key == "test":
                return model.trajectory()
            times, states = self.records[key].arrays()
            return times, states, np.array(self.records[key].events)
        assert isinstance(model, HorizonPair)
        network = model.validation if key == "validation" else model.test
        times = self.data.time[key]
        parameter = next(network.parameters())
        with torch.no_grad():
            values = network(torch.as_tensor(times, dtype=parameter.dtype,
                                             device=parameter.device))  # fmt: skip
        return times, values.T.double().cpu().numpy(), None

    def evaluate(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        key = "validation" if split == "validation" else "test"
        times, states, events = self.trajectory(model, split)
        reference = self.data.time[key]
        rows = common_times(reference, times)
        mine = common_times(times, reference[rows])
        errors, undefined = trajectory_errors(
            self.data.attributes, reference[rows], self.data.states[key][:, rows],
            states[:, mine], self.data.events[key], events,
            float(self.learning["spike_threshold"]), float(self.learning["spike_window_ms"]),
        )  # fmt: skip
        if isinstance(model, MarchedSolution):
            seconds = float(model.seconds) if key == "test" else self.records[key].seconds
            errors["window_cost"] = seconds / max(len(times) - 1, 1)
        else:
            errors["window_cost"] = self.cost / max(self.done, 1)
        self.undefined[split] = undefined
        return _tensors(errors)

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        undefined = {k: dict(v) for k, v in self.undefined.items()}
        out: dict[str, Any] = {"done": self.done, "cost": self.cost, "undefined": undefined}
        if self.method == "splitting":
            out["marches"] = {split: _as_tensors(marcher.state(self.records[split]))
                              for split, marcher in self.marchers.items()}  # fmt: skip
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.done = int(state.get("done", 0))
        self.cost = float(state.get("cost", 0.0))
        self.undefined = {k: dict(v) for k, v in state.get("undefined", {}).items()}
        for split, saved in state.get("marches", {}).items():
            arrays = {k: (v.numpy() if isinstance(v, torch.Tensor) else
                          [c.numpy() for c in v] if isinstance(v, list) else v)
                      for k, v in saved.items()}  # fmt: skip
            self.records[split] = self.marchers[split].restore(arrays)

    def describe(self) -> dict[str, Any]:
        from ionops.datasets.store import attributes_json

        data, learning = self.data, self.learning
        time = data.time["test"]  # a march predicts at its windows' ends on it (NaN between)
        return {"kind": "reference", "attributes": attributes_json(data.attributes),
                "time": torch.as_tensor(time), "ranges": {"horizon_ms": [0.0, float(time[-1])]},
                "method": self.method, "spike_threshold": float(learning["spike_threshold"]),
                "spike_window_ms": float(learning["spike_window_ms"])}  # fmt: skip


def _as_tensors(state: Mapping[str, Any]) -> dict[str, Any]:
    """A march's state with numpy arrays as tensors (a checkpoint loads weights only)."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            out[key] = torch.as_tensor(value)
        elif isinstance(value, list):
            out[key] = [torch.as_tensor(v) for v in value]
        else:
            out[key] = value
    return out
