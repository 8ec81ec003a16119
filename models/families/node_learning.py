"""The neural-ODE family's objective: the window's data and physics losses, forecasts, errors.

The window a trial learns from is the dataset's clean window plus its recorded noise times
``noise_scale`` (``noise = true``), so a noise-scale search and the no-noise ablation read
the same file. The physics targets F(z_i) are the ionic model's right-hand side at these
observed states under the dataset's stimulus; they do not depend on the network, so the
residual of a neural ODE is one batched network call per iteration. The PINN's residual
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

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.stimuli import from_section
from ionops.datasets.window_data import WindowData
from ionops.errors import UserError
from ionops.models import spikes
from ionops.models.families.node_collocation import Rounds
from ionops.models.family import Objective, TrialConfig
from ionops.training.optimisation import Optimisation, Phase

DOPRI5 = {"rtol": 1e-6, "atol": 1e-8}  # torchdiffeq's adaptive Runge-Kutta, training and forecast
BDF = {"rtol": 1e-8, "atol": 1e-10}  # the project's BDF on a learned field (forecast only)
SINH_KNEE = 0.02  # output = "sinh": f_j = c_j sinh(.), c_j this times the spread of dz_j/dt


def observed_window(data: WindowData, noise: bool, noise_scale: float) -> NDArray[np.float64]:
    """The window a trial learns from: (S, N)."""
    if not noise:
        return data.clean.copy()
    scale = np.asarray(data.attributes["noise_scale"], dtype=np.float64)
    return data.clean + noise_scale * scale[:, None] * data.noise


def right_hand_side(attributes: Mapping[str, Any], states: Any, time: NDArray[np.float64],
                    amplitude: float | None = None) -> Any:  # fmt: skip
    """The ionic model's F at ``states`` (S, N) and ``time`` (N,) under the dataset's stimulus
    (its amplitude replaced by ``amplitude`` where given): (S, N), numpy or torch as given."""
    model = get_ionic_model(str(attributes["model"]))
    record = dict(attributes["stimulus"])
    if amplitude is not None:
        record["amplitude"] = amplitude
    current: Any = from_section(record).on_grid(time)
    if isinstance(states, torch.Tensor):
        current = torch.as_tensor(current, dtype=states.dtype, device=states.device)
    parameters = [float(attributes["parameters"][name]) for name in model.parameters]
    values = model.vector_field(list(states), current, parameters)  # type: ignore[misc]
    if isinstance(states, torch.Tensor):
        return torch.stack([torch.as_tensor(v).expand(states.shape[1]) for v in values])
    return np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64), states.shape[1])
                     for v in values])  # fmt: skip


def _spread(values: NDArray[np.float64]) -> NDArray[np.float64]:
    spread = values.std(axis=1)
    return np.where(spread > 0, spread, 1.0)


def network_arguments(model: Any, data: WindowData) -> dict[str, Any]:
    """The network's constructor arguments: its shape and the window's scalings."""
    observed = observed_window(data, model.noise, model.noise_scale)
    n_states = observed.shape[0]
    time = data.time["train"]
    scaling: dict[str, Any] = {"in_mean": [0.0] * n_states, "in_std": [1.0] * n_states,
                               "t_mean": 0.0, "t_std": 1.0, "out_mean": [0.0] * n_states,
                               "out_std": [1.0] * n_states}  # fmt: skip
    if model.normalise:
        derivative = right_hand_side(data.attributes, observed, time)
        scaling.update(in_mean=observed.mean(axis=1).tolist(),
                       in_std=_spread(observed).tolist(), t_mean=float(time.mean()),
                       t_std=float(time.std()), out_mean=derivative.mean(axis=1).tolist(),
                       out_std=_spread(derivative).tolist())  # fmt: skip
    if model.method == "node" and not model.time_input:
        scaling["t_std"] = math.inf  # the time input is (t - t_mean) / inf = 0
    if model.output == "sinh":
        knee = SINH_KNEE * rate_spread(data.attributes, observed, time)
        scaling.update(out_mean=[0.0] * n_states, out_std=knee.tolist())
    return {"method": model.method, "n_states": n_states, "widths": list(model.widths),
            "layer_norm": model.layer_norm, "scaling": scaling,
            "precision": model.precision, "output": model.output}  # fmt: skip


def rate_spread(attributes: Mapping[str, Any], observed: NDArray[np.float64],
                time: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
    """Each dz_j/dt's spread over the noisy window (S,): the smaller of two estimates that
    the noise inflates in different states, F at the observed states (the gates' noise
    inflates F_V: 718 mV/ms on ``hh-node`` against 40 on the clean window) and the observed
    states' finite differences (the noise's own rate inflates the gates': 5/ms against
    0.1)."""
    at_states = _spread(right_hand_side(attributes, observed, time))
    differences = _spread(np.diff(observed, axis=1) / np.diff(time))
    return np.minimum(at_states, differences)


def forecast(field: Any, z0: NDArray[np.float64], time: NDArray[np.float64],
             integrator: str, shift: NDArray[np.float64] | None = None,
             ) -> NDArray[np.float64]:  # fmt: skip
    """A neural ODE's trajectory (S, N) from ``z0`` over ``time``, with ``shift`` added to the
    field (a change of the applied current); NaN from where it stops being finite."""
    shift = np.zeros(len(z0)) if shift is None else np.asarray(shift, dtype=np.float64)
    if integrator == "heun":
        from ionops.models.node_kernels import heun_path

        kernel: Any = heun_path
        widths = np.array(field.hidden.widths, dtype=np.int64)
        return np.asarray(kernel(field.flat(), widths, field.hidden.layer_norm,
                                 np.asarray(z0, dtype=np.float64), time,
                                 *field.scaling_arrays(), shift))  # fmt: skip
    if integrator == "bdf":
        return _bdf_forecast(field, z0, time, shift)
    import torchdiffeq

    parameter = next(field.parameters())
    offset = torch.as_tensor(shift, dtype=parameter.dtype, device=parameter.device)
    with torch.no_grad():
        out = torchdiffeq.odeint(lambda t, z: field(z, t) + offset,
                                 torch.as_tensor(z0, dtype=parameter.dtype,
                                                 device=parameter.device),
                                 torch.as_tensor(time, dtype=parameter.dtype,
                                                 device=parameter.device),
                                 method="dopri5", **DOPRI5)  # fmt: skip
    return np.asarray(out.T.double().cpu().numpy())


def _bdf_forecast(field: Any, z0: NDArray[np.float64], time: NDArray[np.float64],
                  shift: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
    """The learned field solved by the project's BDF (finite-difference Jacobian) at BDF."""
    import types

    from ionops.datasets.ionic.base import IonicModel
    from ionops.datasets.solver import SolverSettings, integrate_protocol
    from ionops.models.node_kernels import field_rhs, pack

    n_states = len(z0)
    names = tuple(f"z{k}" for k in range(n_states))
    model = IonicModel(name="learned field", title="a neural ODE's learned field",
                       state_names=names, state_units=("",) * n_states, parameters={},
                       kernels=types.SimpleNamespace(rhs=field_rhs),
                       initial_states={})  # fmt: skip
    packed = pack(field.flat(), field.hidden.widths, field.hidden.layer_norm,
                  field.scaling_arrays(), shift)  # fmt: skip
    segments = np.array([[0.0, float(time[-1]), 0.0]])
    settings = SolverSettings(rtol=BDF["rtol"], atol=BDF["atol"], max_steps=10_000_000)
    _, states, _, _ = integrate_protocol(model, packed, np.asarray(z0, dtype=np.float64),
                                              segments, time, settings)  # fmt: skip
    return np.asarray(states, dtype=np.float64)  # NaN where it could not go on


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
    out: dict[str, Any] = {"rmse": rmse, "nrmse": rmse / _spread(truth[:, keep])}
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
        residual_scale = _spread(derivative) if learning["residual_scaling"] else \
            np.ones(len(observed))  # fmt: skip
        data_scale = _spread(observed) if learning["normalise"] else np.ones(len(observed))
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
        time = tensors["time"].to(dtype).clone().requires_grad_(True)
        states = model(time)  # (N, S)
        scaled = (states - tensors["observed"].T.to(dtype)) / tensors["data_scale"]
        total = scaled.pow(2).sum(dim=1).mean()
        derivative = torch.stack([torch.autograd.grad(states[:, j].sum(), time,
                                                      create_graph=True)[0]
                                  for j in range(states.shape[1])], dim=1)  # fmt: skip
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
