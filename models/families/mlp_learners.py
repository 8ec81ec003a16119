"""The MLP family's learners: data-driven, physics-informed, iterative and trajectory objectives.

Networks take and return physical units (:class:`~ionops.models.mlp.MLP`);
losses are mean squared errors in units of each state's spread (``std``), so
both states weigh alike (the data terms' absolute errors with ``loss = "l1"``):

- data: ``mean(((f(t, inputs) - y) / std)^2)`` over a batch of samples;
- physics: ``data_weight`` x the data term, ``physics_weight`` x the residual
  ``mean(((d f / dt - F(f, k)) / std)^2)`` at ``collocation`` points drawn
  uniformly over [0, T] x the inputs' box (F the ionic model's
  ``vector_field``, d/dt by autograd, in ms), and ``boundary_weight`` x
  ``mean(((f(0, inputs) - y0) / std)^2)`` at as many points;
- iterative: ``mean(((f(y_t, k) - y_{t+Δ}) / std_Δ)^2)``, f an update
  y -> y + g(y, k) whose increments are scaled by their own spread;
- trajectory: ``mean(((f(inputs) - y(t_1..t_m)) / std_j)^2)``, f giving every
  state at every grid time at once, each output j scaled by its own spread.

Errors, per sample and state, in physical units: ``mae``, ``rmse``,
``max_abs`` and ``rel_l2`` over each validation or test trajectory (the
training points' ``mae`` is the absolute error of each point). An iterative
rollout that leaves the training states' range (widened by
``divergence_margin`` of it on each side) or becomes non-finite is held at
the range's edge from there on, so its error stays large but finite, and
marked in ``diverged`` (1 for such a trajectory): the fraction diverged is
reported beside the errors, never hidden in them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from ionops.datasets.loading import ProblemDataset, ProblemSplit
from ionops.models import relative_errors as metrics
from ionops.models.family import Objective, TrialConfig

EVAL_ROWS = 65_536  # network inputs per evaluation batch


def point_inputs(data: ProblemDataset) -> list[int]:
    """Columns of ``inputs`` that a point network takes after t: the varied inputs."""
    return [data.input_names.index(name) for name in data.varied]


def stimulus_columns(data: ProblemDataset) -> list[int]:
    """Columns an update rule takes beside the states: a varied stimulus (none if fixed)."""
    stimulus = data.attributes["stimulus_name"]
    return [data.input_names.index(stimulus)] if stimulus in data.varied else []


def scaling(data: ProblemDataset, learner: str) -> dict[str, tuple[float, ...]]:
    """The network's input ranges and output scale for ``learner``, from the training split."""
    train = data.splits["train"]
    n_states = len(data.state_names)
    if learner == "iterative":
        x, increments = _transitions(data, train)
        low, high = x.min(dim=0).values, x.max(dim=0).values
        mean, std = increments.mean(dim=0), increments.std(dim=0)
    elif learner == "trajectory":
        ranges = data.attributes["ranges"]
        low = torch.tensor([ranges[n][0] for n in data.varied])
        high = torch.tensor([ranges[n][1] for n in data.varied])
        outputs = train.states.flatten(1)  # (n, S * n_t): each state's trajectory in turn
        mean, std = outputs.mean(dim=0), outputs.std(dim=0)
        # an output that barely varies (a fixed initial state at t = 0) is not magnified
        spread = train.states.transpose(1, 2).reshape(-1, n_states).std(dim=0)
        std = torch.maximum(std, 1e-3 * spread.repeat_interleave(train.states.shape[2]))
    else:
        t_end = float(data.attributes["t_end_ms"])
        ranges = data.attributes["ranges"]
        low = torch.tensor([0.0, *(ranges[n][0] for n in data.varied)])
        high = torch.tensor([t_end, *(ranges[n][1] for n in data.varied)])
        states = train.states.reshape(-1, n_states)
        mean, std = states.mean(dim=0), states.std(dim=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return {"in_low": _floats(low), "in_high": _floats(high), "out_mean": _floats(mean),
            "out_std": _floats(std)}  # fmt: skip


def _floats(values: torch.Tensor) -> tuple[float, ...]:
    return tuple(float(v) for v in values.double())


def _transitions(data: ProblemDataset, split: ProblemSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """Update-rule inputs (states at t, varied stimulus) and increments of a training split."""
    before, after = split.states[:, 0], split.states[:, 1]
    x = torch.cat([before, split.inputs[:, stimulus_columns(data)]], dim=1)
    return x, after - before


def objective_for(data: ProblemDataset, trial: TrialConfig, seed: int) -> Objective:
    """The learner's objective on ``data``."""
    learning = trial.learning
    std = torch.tensor(trial.arguments["out_std"], dtype=torch.float32)
    loss = str(learning.get("loss", "mse"))  # searches from before the setting squared
    if learning["learner"] == "iterative":
        return IterativeObjective(data, std, float(learning["divergence_margin"]), loss)
    if learning["learner"] == "trajectory":
        return TrajectoryObjective(data, std, loss)
    return PointObjective(data, std, learning, seed, loss)


def penalty(scaled: torch.Tensor, loss: str) -> torch.Tensor:
    """The mean of the scaled errors squared (``mse``) or absolute (``l1``)."""
    return scaled.pow(2).mean() if loss == "mse" else scaled.abs().mean()


class _ProblemObjective(Objective):
    """What the learners share: tensors on the device and trajectory errors of each split."""

    def __init__(self, data: ProblemDataset, std: torch.Tensor, loss: str = "mse") -> None:
        self.data = data
        self.state_names = data.state_names
        self.std = std
        self.loss_kind = loss  # how the data term counts the scaled errors (see penalty)
        self.device = torch.device("cpu")
        self._splits = dict(data.splits)

    def to(self, device: torch.device) -> None:
        self.device = device
        self.std = self.std.to(device)
        self._splits = {
            name: ProblemSplit(
                s.layout,
                s.inputs.to(device),
                None if s.t is None else s.t.to(device),
                s.states.to(device),
                s.time,
            )
            for name, s in self.data.splits.items()
        }
        self._moved()

    def _moved(self) -> None:
        """Rebuild device tensors derived from the splits."""

    def splits(self) -> tuple[str, ...]:
        return tuple(self._splits)

    x: torch.Tensor  # the training split's network inputs, one row a sample

    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[Any]:
        order = torch.randperm(len(self.x), generator=generator).to(self.device)
        for begin in range(0, len(order), batch_size):
            yield order[begin : begin + batch_size]

    def describe(self) -> dict[str, Any]:
        from ionops.datasets.store import attributes_json

        attributes = self.data.attributes
        grids = [s.time for s in self.data.splits.values() if s.time is not None]
        if not grids:
            return {}  # trained without a trajectory split: nothing to predict on
        ranges = {name: list(attributes["ranges"][name]) for name in self.data.varied}
        return {"kind": self.data.kind, "attributes": attributes_json(attributes),
                "time": torch.tensor(grids[0]), "ranges": ranges, **self._described()}  # fmt: skip

    def _described(self) -> dict[str, Any]:
        return {"learner": "data"}

    def predict(self, model: nn.Module, split: ProblemSplit) -> torch.Tensor:
        """Trajectories of ``split`` (n, S, n_t), physical units."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        data = self._splits[split]
        model.eval()
        with torch.no_grad():
            if data.layout != "trajectories":
                return {"mae": self._point_errors(model, data)}
            predicted = self.predict(model, data)
        return trajectory_errors(predicted, data.states) | self._extra(predicted)

    def _point_errors(self, model: nn.Module, split: ProblemSplit) -> torch.Tensor:
        raise NotImplementedError

    def _extra(self, predicted: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}


def trajectory_errors(predicted: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample, per-state errors over time of (n, S, n_t) trajectories, physical units."""
    error = (predicted - truth).abs()
    return {
        "mae": error.mean(dim=-1),
        "rmse": error.pow(2).mean(dim=-1).sqrt(),
        "max_abs": error.amax(dim=-1),
        "rel_l2": metrics.rel_l2(predicted, truth),
    }


class PointObjective(_ProblemObjective):
    """(t, varied inputs) -> states: the data-driven and the physics-informed learners."""

    def __init__(self, data: ProblemDataset, std: torch.Tensor, learning: Mapping[str, Any],
                 seed: int, loss: str = "mse") -> None:  # fmt: skip
        super().__init__(data, std, loss)
        self.columns = point_inputs(data)
        self.learning = dict(learning)
        self.physics = learning["learner"] == "physics"
        self.collocation = torch.Generator().manual_seed(seed + 1)
        if self.physics:
            from ionops.datasets.ionic import get_ionic_model

            model = get_ionic_model(str(data.attributes["model"]))
            if model.vector_field is None or model.caputo:
                raise ValueError(
                    f"{model.name} has no vector_field for physics-informed losses "
                    "(a model with a Caputo derivative has no dy/dt to match)"
                )
            self.field = model.vector_field
            self.p = [float(data.attributes["parameters"][n]) for n in model.parameters]
        self._moved()

    def _moved(self) -> None:
        train = self._splits["train"]
        assert train.t is not None
        self.x = torch.cat([train.t[:, None], train.inputs[:, self.columns]], dim=1)
        self.y = train.states
        attrs = self.data.attributes
        ranges = attrs["ranges"]
        self.low = torch.tensor([0.0, *(ranges[n][0] for n in self.data.varied)],
                                device=self.device)  # fmt: skip
        self.high = torch.tensor([float(attrs["t_end_ms"]), *(ranges[n][1] for n in
                                  self.data.varied)], device=self.device)  # fmt: skip

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        weight = float(self.learning["data_weight"]) if self.physics else 1.0
        total = torch.zeros((), device=self.device)
        if weight > 0:
            error = (model(self.x[batch]) - self.y[batch]) / self.std
            total = total + weight * penalty(error, self.loss_kind)
        if self.physics:
            total = total + self._physics(model)
        return total

    def _physics(self, model: nn.Module) -> torch.Tensor:
        count = int(self.learning["collocation"])
        unit = torch.rand(count, len(self.low), generator=self.collocation).to(self.device)
        points = (self.low + (self.high - self.low) * unit).requires_grad_(True)
        states = model(points)
        rates = []
        for index in range(states.shape[1]):
            (gradient,) = torch.autograd.grad(states[:, index].sum(), points, create_graph=True)
            rates.append(gradient[:, 0])
        stimulus = self._column(points, self.data.attributes["stimulus_name"])
        field = self.field([states[:, k] for k in range(states.shape[1])], stimulus, self.p)
        residual = (torch.stack(rates, dim=1) - torch.stack(list(field), dim=1)) / self.std
        start = points.detach().clone()
        start[:, 0] = 0.0
        initial = torch.stack([self._column(start, f"{name}0") for name in self.state_names], 1)
        boundary = (model(start) - initial) / self.std
        return (float(self.learning["physics_weight"]) * residual.pow(2).mean()
                + float(self.learning["boundary_weight"]) * boundary.pow(2).mean())  # fmt: skip

    def _column(self, points: torch.Tensor, name: str) -> torch.Tensor:
        """An input over a batch of network inputs: its column if varied, else its fixed value."""
        if name in self.data.varied:
            return points[:, 1 + self.data.varied.index(name)]
        return torch.full((len(points),), float(self.data.attributes["fixed"][name]),
                          device=points.device)  # fmt: skip

    def _point_errors(self, model: nn.Module, split: ProblemSplit) -> torch.Tensor:
        assert split.t is not None
        x = torch.cat([split.t[:, None], split.inputs[:, self.columns]], dim=1)
        return torch.cat([(model(x[b : b + EVAL_ROWS]) - split.states[b : b + EVAL_ROWS]).abs()
                          for b in range(0, len(x), EVAL_ROWS)])  # fmt: skip

    def predict(self, model: nn.Module, split: ProblemSplit) -> torch.Tensor:
        return predict_points(model, split, self.columns)

    def _described(self) -> dict[str, Any]:
        return {"learner": "physics" if self.physics else "data"}

    def state_dict(self) -> dict[str, Any]:
        return {"collocation": self.collocation.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "collocation" in state:
            self.collocation.set_state(state["collocation"])


def predict_points(model: nn.Module, split: ProblemSplit, columns: list[int]) -> torch.Tensor:
    """A point network's trajectories of a trajectory split: (n, S, n_t), physical units."""
    assert split.time is not None
    n, n_t = len(split), split.time.size
    time = torch.tensor(split.time, dtype=torch.float32, device=split.inputs.device)
    varied = split.inputs[:, columns]
    rows = torch.cat([time.repeat(n)[:, None], varied.repeat_interleave(n_t, dim=0)], dim=1)
    out = torch.cat([model(rows[b : b + EVAL_ROWS]) for b in range(0, len(rows), EVAL_ROWS)])
    return out.reshape(n, n_t, -1).transpose(1, 2)


class TrajectoryObjective(_ProblemObjective):
    """Varied inputs -> every state at every grid time, one network evaluation a trajectory."""

    def __init__(self, data: ProblemDataset, std: torch.Tensor, loss: str) -> None:
        super().__init__(data, std, loss)
        self.columns = point_inputs(data)
        self._moved()

    def _moved(self) -> None:
        train = self._splits["train"]
        self.x = train.inputs[:, self.columns]
        self.y = train.states.flatten(1)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return penalty((model(self.x[batch]) - self.y[batch]) / self.std, self.loss_kind)

    def predict(self, model: nn.Module, split: ProblemSplit) -> torch.Tensor:
        return predict_trajectories(model, split, self.columns, len(self.state_names))

    def _described(self) -> dict[str, Any]:
        return {"learner": "trajectory"}


def predict_trajectories(model: nn.Module, split: ProblemSplit, columns: list[int],
                         n_states: int) -> torch.Tensor:  # fmt: skip
    """A trajectory network's trajectories of a split: (n, S, n_t), physical units."""
    assert split.time is not None
    varied = split.inputs[:, columns]
    rows = max(1, EVAL_ROWS // split.time.size)  # a row is every time: as many values a batch
    out = torch.cat([model(varied[b : b + rows]) for b in range(0, len(varied), rows)])
    return out.reshape(len(varied), n_states, -1)


class IterativeObjective(_ProblemObjective):
    """(states at t, stimulus) -> states at t + Δ; trajectories by rollout."""

    def __init__(self, data: ProblemDataset, std: torch.Tensor, margin: float,
                 loss: str = "mse") -> None:  # fmt: skip
        super().__init__(data, std, loss)
        self.margin = margin
        self.stimulus = stimulus_columns(data)
        self._diverged: torch.Tensor | None = None
        self._moved()

    def _moved(self) -> None:
        train = self._splits["train"]
        self.x, self.increments = _transitions(self.data, train)
        states = train.states.reshape(-1, len(self.state_names))
        low, high = states.min(dim=0).values, states.max(dim=0).values
        self.lower = low - self.margin * (high - low)
        self.upper = high + self.margin * (high - low)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x = self.x[batch]
        n_states = len(self.state_names)
        target = x[:, :n_states] + self.increments[batch]
        return penalty((model(x) - target) / self.std, self.loss_kind)

    def _point_errors(self, model: nn.Module, split: ProblemSplit) -> torch.Tensor:
        x, increments = _transitions(self.data, split)
        n_states = len(self.state_names)
        return (model(x) - (x[:, :n_states] + increments)).abs()

    def predict(self, model: nn.Module, split: ProblemSplit) -> torch.Tensor:
        trajectory, diverged = rollout(model, split, self.stimulus, len(self.state_names),
                                       self.lower, self.upper)  # fmt: skip
        self._diverged = diverged
        return trajectory

    def _extra(self, predicted: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self._diverged is not None
        return {"diverged": self._diverged.float()}

    def _described(self) -> dict[str, Any]:
        return {"learner": "iterative", "lower": self.lower.cpu(), "upper": self.upper.cpu()}


def rollout(
    model: nn.Module,
    split: ProblemSplit,
    stimulus: list[int],
    n_states: int,
    lower: torch.Tensor,
    upper: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """An update rule's trajectories from each initial state: (n, S, n_t), and (n,) diverged.

    A state outside [lower, upper] or non-finite marks its trajectory diverged
    and is held at the nearest bound from then on.
    """
    assert split.time is not None
    state = split.inputs[:, :n_states].clone()
    extra = split.inputs[:, stimulus]
    diverged = torch.zeros(len(split), dtype=torch.bool, device=state.device)
    steps = [state]
    for _ in range(split.time.size - 1):
        state = model(torch.cat([state, extra], dim=1))
        bad = ~torch.isfinite(state).all(dim=1) | (state < lower).any(dim=1) | (
            state > upper).any(dim=1)  # fmt: skip
        diverged |= bad
        state = torch.nan_to_num(state, nan=0.0).clamp(lower, upper)
        steps.append(state)
    return torch.stack(steps, dim=2), diverged
