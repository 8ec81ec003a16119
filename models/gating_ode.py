"""A gating network converted to an ODE (paper 004, eq. 2.7.1-2) and solved by the project's BDF.

The gating layer's rate rho = sigma(z) over the sampling step dt is a time constant
tau = -dt / log rho, so each classic gate obeys h' = (h_inf - h) / tau with h_inf and tau
functions of the observables through phi1. The converted model is the ionic model's own
right-hand side with the gates' equations replaced by these: what a retrained gating layer
says about the model, solved like the model itself (stiff BDF, the same pacing). Its
parameters are the ionic model's followed by the scaling and the network's weights
(:func:`parameter_vector`); the right-hand side is compiled once per network shape.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numba import njit
from numpy.typing import NDArray
from torch import nn

from ionops.datasets.ionic import IonicModel

if TYPE_CHECKING:
    from ionops.models.gating_rnn import GatingNetwork, Scaling


def parameter_vector(ionic_parameters: NDArray[np.float64], network: GatingNetwork,
                     scaling: Scaling, dt: float) -> NDArray[np.float64]:  # fmt: skip
    """The converted model's parameters: the ionic model's, each state's scaling range, the
    step dt and phi1's and the gating layer's weights and biases."""
    layers = [cast(nn.Linear, network.phi1[0]), cast(nn.Linear, network.phi1[2]),
              network.gating.steady, network.gating.rate]  # fmt: skip
    weights = [np.asarray(a.detach().cpu().double().numpy()).ravel()
               for layer in layers for a in (layer.weight, layer.bias)]  # fmt: skip
    return np.concatenate([np.asarray(ionic_parameters, dtype=np.float64),
                           np.asarray(scaling.low), np.asarray(scaling.high), [float(dt)],
                           *weights])  # fmt: skip


def converted_model(ionic: IonicModel, gates: tuple[int, ...], observables: tuple[int, ...],
                    width: int) -> IonicModel:  # fmt: skip
    """``ionic`` with the classic ``gates`` (state indices) driven by a gating network of
    ``width`` reading ``observables``: solve it with :func:`parameter_vector`'s parameters."""
    rhs = _converted_rhs(ionic.kernels if isinstance(ionic.kernels, str) else id(ionic.kernels),
                         ionic.n_states, len(ionic.parameters), gates, observables,
                         width)  # fmt: skip
    return replace(ionic, name=f"{ionic.name}+gating", kernels=SimpleNamespace(rhs=rhs),
                   title=f"{ionic.title} with learned gate kinetics")  # fmt: skip


@functools.cache
def _converted_rhs(kernels: Any, n_states: int, n_base: int, gates: tuple[int, ...],
                   observables: tuple[int, ...], width: int) -> Any:  # fmt: skip
    import importlib

    base = importlib.import_module(kernels).rhs if isinstance(kernels, str) else None
    if base is None:
        raise TypeError("a converted model needs an ionic model whose kernels are a module")
    gate_index = np.array(gates, dtype=np.int64)
    observed = np.array(observables, dtype=np.int64)
    n_gates, n_obs = len(gates), len(observables)

    @njit(error_model="numpy")
    def rhs(t: float, y: NDArray, p: NDArray, i_app: float, dydt: NDArray) -> None:
        base(t, y, p[:n_base], i_app, dydt)
        k = n_base
        low = p[k : k + n_states]
        high = p[k + n_states : k + 2 * n_states]
        dt = p[k + 2 * n_states]
        k += 2 * n_states + 1
        x = np.empty(n_obs)
        for a in range(n_obs):
            j = observed[a]
            x[a] = (y[j] - low[j]) / (high[j] - low[j])
        first = np.empty(width)
        for r in range(width):
            total = p[k + width * n_obs + r]
            for a in range(n_obs):
                total += p[k + r * n_obs + a] * x[a]
            first[r] = max(total, 0.0)
        k += width * n_obs + width
        second = np.empty(width)
        for r in range(width):
            total = p[k + width * width + r]
            for a in range(width):
                total += p[k + r * width + a] * first[a]
            second[r] = max(total, 0.0)
        k += width * width + width
        steady_at, rate_at = k, k + n_gates * width + n_gates
        for g in range(n_gates):
            z_steady = p[steady_at + n_gates * width + g]
            z_rate = p[rate_at + n_gates * width + g]
            for a in range(width):
                z_steady += p[steady_at + g * width + a] * second[a]
                z_rate += p[rate_at + g * width + a] * second[a]
            steady = 1.0 / (1.0 + np.exp(-z_steady))
            # -log(sigma(z)) / dt, computed without overflow: softplus(-z) / dt
            rate = (max(-z_rate, 0.0) + np.log1p(np.exp(-abs(z_rate)))) / dt
            j = gate_index[g]
            dydt[j] = (low[j] + (high[j] - low[j]) * steady - y[j]) * rate

    return rhs
