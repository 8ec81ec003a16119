"""The neural-ODE family's objective: the window's data and physics losses, forecasts, errors.

The window a trial learns from, the ionic model's F, the network's arguments and the
forecasts are :mod:`ionops.models.families.node_field`'s. The physics targets F(z_i) are
the ionic model's right-hand side at the observed states under the dataset's stimulus; they
do not depend on the network, so the residual of a neural ODE is one batched network call
per iteration. The PINN's residual
takes its states from the network, so it goes through the model's ``vector_field``.

The data term is mean_i sum_j ((z_hat_ij - z_ij) / c_j)^2 with c_j the observed states'
spread (1 without ``normalise``); Heun with backpropagation runs in the compiled kernels
(:func:`ionops.models.node.heun_rollout`), torchdiffeq integrates otherwise.

Collocation rounds (``collocation_rounds``, not the paper's) end a run by fitting f to F
along the field's own forecast: :mod:`ionops.models.families.node_collocation`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ionops.datasets.window_data import WindowData
from ionops.errors import UserError
from ionops.models import spikes
from ionops.models.families.node_collocation import Rounds
from ionops.models.families.node_field import (
    DOPRI5,
    forecast,
    observed_window,
    right_hand_side,
    spread,
)
from ionops.models.family import Objective, TrialConfig
from ionops.models.node import TimeNetwork
from ionops.training.optimisation import Optimisation, Phase


def long_errors(time: NDArray[np.float64], truth: NDArray[np.float64],
                predicted: NDArray[np.float64], t_end: float) -> dict[str, Any]:  # fmt: skip
    """``long_rmse``: each state's RMSE from ``t_end`` on, where two points or more reach."""
    long = time >= t_end
    if long.sum() < 2:
        return {}
    return {"long_rmse": np.sqrt(np.mean((predicted[:, long] - truth[:, long]) ** 2, axis=1))}


def trajectory_errors(time: NDArray[np.float64], truth: NDArray[np.float64],
                      predicted: NDArray[np.float64], after: float, until: float | None,
                      threshold: float, window: float,
                      ) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
    """Errors of one forecast over ``after < t <= until``: RMSE and RMSE over each state's
    spread (S,), the spike scores of the first state; and the undefined scores' reasons."""
    keep = (time > after) & (time <= (until if until is not None else math.inf))
    if not keep.any():  # the training window itself
        keep = np.ones_like(time, dtype=bool)
    error = predicted[:, keep] - truth[:, keep]
    rmse = np.sqrt(np.mean(error**2, axis=1))
    rmse = np.where(np.isfinite(rmse), rmse, np.inf)  # a forecast that blew up
    out: dict[str, Any] = {"rmse": rmse, "nrmse": rmse / spread(truth[:, keep])}
    finite = np.where(np.isfinite(predicted[0, keep]), predicted[0, keep], -np.inf)
    scored = spikes.score(time[keep], truth[0, keep], finite, threshold, window)
    out.update(scored.values)
    return out, dict(scored.undefined)


class TimeFirst(nn.Module):
    """A field f(z, t) as torchdiffeq calls it, f(t, z)."""

    def __init__(self, field: nn.Module) -> None:
        super().__init__()
        self.field = field

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.field(z, t)
        return out


class NodeObjective(Objective):
    """One window's losses and every split's forecast errors; see the module docstring."""

    def __init__(self, data: WindowData, trial: TrialConfig) -> None:
        self.data = data
        self.learning = learning = dict(trial.learning)
        self.state_names = data.state_names
        self.method = learning["method"]
        time = data.time["train"]
        observed = observed_window(data, learning["noise"], learning["noise_scale"])
        if not np.isfinite(observed).all():
            raise UserError("the training window holds NaN or infinite values: generate the "
                            "dataset again")  # fmt: skip
        threshold, spiking = float(learning["spike_threshold"]), data.clean[0]
        if not len(spikes.peaks(time, spiking, threshold)[0]):
            raise UserError(
                f"the training window (data.window_ms = {data.attributes['window_ms']:g}) has no "
                f"spike: its {data.state_names[0]} peaks at {spiking.max():.4g}, below "
                f"model.spike_threshold = {threshold:g}; lengthen the window, raise the "
                "stimulus, or lower the threshold"
            )
        derivative = right_hand_side(data.attributes, observed, time)
        residual_scale = spread(derivative) if learning["residual_scaling"] else \
            np.ones(len(observed))  # fmt: skip
        data_scale = spread(observed) if learning["normalise"] else np.ones(len(observed))
        self.time, self.observed, self.data_scale = time, observed, data_scale
        self.weight = float(learning["physics_weight"]) if learning["physics"] else 0.0
        self.device = torch.device("cpu")
        self._tensors = {"time": torch.tensor(time), "observed": torch.as_tensor(observed),
                         "derivative": torch.as_tensor(derivative),
                         "residual_scale": torch.as_tensor(residual_scale),
                         "data_scale": torch.as_tensor(data_scale)}  # fmt: skip
        self.undefined: dict[str, dict[str, str]] = {}
        self.rounds = int(learning.get("collocation_rounds", 0))
        horizon = float(learning.get("collocation_horizon_ms") or data.attributes["t_end_ms"])
        self.phase = "train"
        iterations = int(learning.get("collocation_iterations", 300))
        self._rounds = Rounds(
            observed,
            float(time[1] - time[0]),
            horizon,
            iterations,
            lambda states, at: right_hand_side(data.attributes, states, at),
            weighting=str(learning.get("collocation_weighting", "relative")),
            max_points=int(learning.get("collocation_max_points", 2048)) or None,
        )

    @property
    def collocated(self) -> dict[str, torch.Tensor]:
        """The collocation rounds' points so far (none before them)."""
        return self._rounds.points

    @property
    def _lbfgs(self) -> torch.optim.LBFGS | None:
        return self._rounds.lbfgs

    def to(self, device: torch.device) -> None:
        self.device = device
        self._tensors = {k: v.to(device) for k, v in self._tensors.items()}
        self._rounds.to(device)

    # -- phases: the window, then the collocation rounds -----------------------------------------
    def phases(self, settings: Any) -> Sequence[Phase]:
        if not self.rounds:
            return (Phase("train"),)
        return (Phase("window", until=settings.epochs - self.rounds), Phase("collocation"))

    def enter(self, phase: Phase) -> None:
        self.phase = phase.name

    def optimisation(self, model: nn.Module, phase: Phase, settings: Any) -> Optimisation:
        if phase.name != "collocation":
            return super().optimisation(model, phase, settings)
        return self._rounds.optimisation(model)

    def splits(self) -> tuple[str, ...]:
        return ("train", "validation", "test")

    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[Any]:
        if self.phase == "collocation":
            return self._rounds.epoch()  # one round
        return iter([None])  # one iteration of the paper: the whole window

    # -- losses ----------------------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        if self.method == "pinn":
            return self._pinn_loss(model)
        if self.phase == "collocation":
            return self._rounds.loss(model)
        tensors = self._tensors
        data_weight = float(self.learning.get("data_weight", 1.0))
        total = data_weight * self._data_loss(model) if data_weight else torch.zeros(())
        if self.weight:
            dtype = next(model.parameters()).dtype
            states = tensors["observed"].T.to(dtype)
            fitted = model(states, tensors["time"].to(dtype))
            residual = (fitted - tensors["derivative"].T.to(dtype)) / tensors["residual_scale"]
            total = total + self.weight * residual.pow(2).sum(dim=1).mean()
        return total

    def _data_loss(self, model: nn.Module) -> torch.Tensor:
        learning = self.learning
        z0 = self.observed[:, 0]
        if learning["integrator"] == "heun" and learning["gradient"] == "backprop":
            from ionops.models.node import VectorField, heun_rollout

            loss, _ = heun_rollout(
                cast(VectorField, model), z0, self.time, self.observed, self.data_scale
            )
            return loss
        import torchdiffeq

        tensors = self._tensors
        dtype = next(model.parameters()).dtype
        solve = torchdiffeq.odeint_adjoint if learning["gradient"] == "adjoint" else \
            torchdiffeq.odeint  # fmt: skip
        method = "heun2" if learning["integrator"] == "heun" else "dopri5"
        options: dict[str, Any] = DOPRI5 if method == "dopri5" else {}
        extra = {"adjoint_params": tuple(model.parameters())} if solve is not torchdiffeq.odeint \
            else {}  # fmt: skip
        observed, time = tensors["observed"].to(dtype), tensors["time"].to(dtype)
        path = solve(TimeFirst(model), observed[:, 0], time,
                     method=method, **options, **extra)  # (N, S)  # fmt: skip
        scaled = (path - tensors["observed"].T.to(dtype)) / tensors["data_scale"]
        return scaled.pow(2).sum(dim=1).mean()

    def _pinn_loss(self, model: nn.Module) -> torch.Tensor:
        tensors = self._tensors
        dtype = next(model.parameters()).dtype
        states, derivative = cast(TimeNetwork, model).with_rate(tensors["time"].to(dtype))
        scaled = (states - tensors["observed"].T.to(dtype)) / tensors["data_scale"]
        total = scaled.pow(2).sum(dim=1).mean()
        wanted = right_hand_side(self.data.attributes, states.T, self.time).T
        residual = (derivative - wanted) / tensors["residual_scale"]
        return total + self.weight * residual.pow(2).sum(dim=1).mean()

    # -- errors ----------------------------------------------------------------------------------
    def trajectory(self, model: nn.Module, split: str) -> NDArray[np.float64]:
        """The network's trajectory (S, N) over ``split``'s grid from its initial state."""
        time = self.data.time[split]
        if self.method == "pinn":
            with torch.no_grad():
                parameter = next(model.parameters())
                values = model(torch.as_tensor(time, dtype=parameter.dtype,
                                               device=parameter.device))  # fmt: skip
            return np.asarray(values.T.double().cpu().numpy())
        start = self.data.clean[:, 0] if split == "train" else self.data.initial_state[split]
        return forecast(model, start, time, str(self.learning["predict_integrator"]))

    def evaluate(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        data, learning = self.data, self.learning
        attributes = data.attributes
        window, t_end = float(attributes["window_ms"]), float(attributes["t_end_ms"])
        time = data.time[split]
        truth = data.clean if split == "train" else data.states[split]
        predicted = self.trajectory(model, split)
        after = -math.inf if split == "train" else window
        errors, undefined = trajectory_errors(time, truth, predicted, after,
                                              None if split == "validation" else t_end,
                                              float(learning["spike_threshold"]),
                                              float(learning["spike_window_ms"]))  # fmt: skip
        if split == "test":
            errors.update(long_errors(time, truth, predicted, t_end))
        self.undefined[split] = undefined
        out: dict[str, torch.Tensor] = {}
        for key, value in errors.items():
            array = np.asarray(value, dtype=np.float64)
            out[key] = torch.as_tensor(array.reshape(1, -1) if array.ndim else array.reshape(1))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "undefined": {k: dict(v) for k, v in self.undefined.items()},
            "collocated": {k: v.detach().cpu() for k, v in self.collocated.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.undefined = {k: dict(v) for k, v in state.get("undefined", {}).items()}
        self._rounds.load_state_dict(state.get("collocated", {}))

    def describe(self) -> dict[str, Any]:
        from ionops.datasets.store import attributes_json

        data, learning = self.data, self.learning
        attributes = data.attributes
        test = data.states["test"]
        ranges = {f"{name}0": [float(test[k].min()), float(test[k].max())]
                  for k, name in enumerate(data.state_names)}  # fmt: skip
        amplitude = float(attributes["stimulus"].get("amplitude", 0.0))
        ranges[str(attributes["stimulus_name"])] = [amplitude, amplitude]
        ranges["horizon_ms"] = [0.0, float(data.time["test"][-1])]
        return {"kind": "window", "attributes": attributes_json(attributes),
                "time": torch.as_tensor(data.time["test"]), "ranges": ranges,
                "method": self.method, "integrator": learning["predict_integrator"],
                "spike_threshold": float(learning["spike_threshold"]),
                "spike_window_ms": float(learning["spike_window_ms"])}  # fmt: skip
