"""The neural-ODE family's field and what it is fitted from: the window a trial learns from,
the ionic model's right-hand side F, the network's constructor arguments (its shape and the
window's scalings) and the learned field's forecasts (compiled Heun, torchdiffeq's dopri5,
the project's BDF).

The window is the dataset's clean window plus its recorded noise times ``noise_scale``
(``noise = true``), so a noise-scale search and the no-noise ablation read the same file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.stimuli import from_section
from ionops.datasets.window_data import WindowData

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


def spread(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each row's standard deviation (S,), 1 where it is 0."""
    deviation = values.std(axis=1)
    return np.where(deviation > 0, deviation, 1.0)


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
                       in_std=spread(observed).tolist(), t_mean=float(time.mean()),
                       t_std=float(time.std()), out_mean=derivative.mean(axis=1).tolist(),
                       out_std=spread(derivative).tolist())  # fmt: skip
    if model.method == "node" and not model.time_input:
        scaling["t_std"] = math.inf  # the time input is (t - t_mean) / inf = 0
    if model.output == "sinh":
        knee = SINH_KNEE * ratespread(data.attributes, observed, time)
        scaling.update(out_mean=[0.0] * n_states, out_std=knee.tolist())
    return {"method": model.method, "n_states": n_states, "widths": list(model.widths),
            "layer_norm": model.layer_norm, "scaling": scaling,
            "precision": model.precision, "output": model.output}  # fmt: skip


def ratespread(attributes: Mapping[str, Any], observed: NDArray[np.float64],
                time: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
    """Each dz_j/dt's spread over the noisy window (S,): the smaller of two estimates that
    the noise inflates in different states, F at the observed states (the gates' noise
    inflates F_V: 718 mV/ms on ``hh-node`` against 40 on the clean window) and the observed
    states' finite differences (the noise's own rate inflates the gates': 5/ms against
    0.1)."""
    at_states = spread(right_hand_side(attributes, observed, time))
    differences = spread(np.diff(observed, axis=1) / np.diff(time))
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
