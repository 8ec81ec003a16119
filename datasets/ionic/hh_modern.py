"""Hodgkin-Huxley in the modern convention (V is the membrane potential, rest near -65 mV).

    Cm dV/dt = I_ext - gNa m^3 h (V - ENa) - gK n^4 (V - EK) - gL (V - EL)
    dx/dt = alpha_x(V) (1 - x) - beta_x(V) x,   x in {n, m, h}

    alpha_n = 0.01 (V + 55) / (1 - exp(-0.1 (V + 55))),  beta_n = 0.125 exp(-0.0125 (V + 65))
    alpha_m = 0.1 (V + 40) / (1 - exp(-0.1 (V + 40))),   beta_m = 4 exp(-0.0556 (V + 65))
    alpha_h = 0.07 exp(-0.05 (V + 65)),                  beta_h = 1 / (1 + exp(-0.1 (V + 35)))

Cm = 1 uF/cm^2, gNa = 120, gK = 36, gL = 0.3 mS/cm^2, ENa = 50, EK = -77, EL = -54.387 mV
(the neural-ODE paper's model, paper 002); states (V, n, m, h), starting from the gates'
steady state at V = -65 mV. A constant I_ext = 10 uA/cm^2 fires about every 14.6 ms.

``vector_field`` is the right-hand side in arithmetic alone (numpy arrays or torch
tensors, any batch shape after the states' axis), with the removable points of alpha_n
and alpha_m (V = -55, -40 mV) taken by a series there and a guarded division elsewhere,
so that neither the values nor their gradients are NaN at them. The compiled equations
are in :mod:`ionops.datasets.ionic.hh_modern_kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic.base import IonicModel, array_module

PARAMETERS = {
    "Cm": 1.0,
    "gNa": 120.0,
    "gK": 36.0,
    "gL": 0.3,
    "ENa": 50.0,
    "EK": -77.0,
    "EL": -54.387,
}
REST_MV = -65.0
_SERIES = 1e-4  # |u| below which u / (1 - exp(-u)) is its series 1 + u/2 + u^2/12


def _ratio(u: Any) -> Any:
    """u / (1 - exp(-u)), continuous (value and gradient) through its removable point u = 0."""
    xp = array_module(u)
    small = xp.abs(u) < _SERIES
    safe = xp.where(small, xp.ones_like(u), u)
    return xp.where(small, 1.0 + u / 2.0 + u * u / 12.0, safe / -xp.expm1(-safe))


def rate_values(v: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
    """(alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h) in 1/ms of numpy arrays or tensors."""
    xp = array_module(v)
    alpha_n = 0.1 * _ratio(0.1 * (v + 55.0))
    beta_n = 0.125 * xp.exp(-0.0125 * (v + 65.0))
    alpha_m = _ratio(0.1 * (v + 40.0))
    beta_m = 4.0 * xp.exp(-0.0556 * (v + 65.0))
    alpha_h = 0.07 * xp.exp(-0.05 * (v + 65.0))
    beta_h = 1.0 / (1.0 + xp.exp(-0.1 * (v + 35.0)))
    return alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h


def vector_field(y: Sequence[Any], i_app: Any, p: Sequence[float]) -> tuple[Any, Any, Any, Any]:
    """(dV/dt, dn/dt, dm/dt, dh/dt) of states ``y = (V, n, m, h)`` at current ``i_app``."""
    v, n, m, h = y[0], y[1], y[2], y[3]
    cm, g_na, g_k, g_l, e_na, e_k, e_l = (p[k] for k in range(7))  # a fractional model adds alpha
    alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h = rate_values(v)
    i_ion = g_na * m**3 * h * (v - e_na) + g_k * n**4 * (v - e_k) + g_l * (v - e_l)
    return (
        (i_app - i_ion) / cm,
        alpha_n * (1.0 - n) - beta_n * n,
        alpha_m * (1.0 - m) - beta_m * m,
        alpha_h * (1.0 - h) - beta_h * h,
    )


def _gates_at_rest(p: NDArray[np.float64]) -> NDArray[np.float64]:
    alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h = rate_values(np.float64(REST_MV))
    gates = [a / (a + b) for a, b in ((alpha_n, beta_n), (alpha_m, beta_m), (alpha_h, beta_h))]
    return np.array([REST_MV, *gates])


def _sodium(y: NDArray, p: NDArray) -> NDArray:
    return p[1] * y[2] ** 3 * y[3] * (y[0] - p[4])


def _potassium(y: NDArray, p: NDArray) -> NDArray:
    return p[2] * y[1] ** 4 * (y[0] - p[5])


def _leak(y: NDArray, p: NDArray) -> NDArray:
    return p[3] * (y[0] - p[6])


def model() -> IonicModel:
    return IonicModel(
        name="hh_modern",
        title="Hodgkin-Huxley, modern convention (rest near -65 mV)",
        state_names=("V", "n", "m", "h"),
        state_units=("mV", "1", "1", "1"),
        parameters=PARAMETERS,
        kernels="ionops.datasets.ionic.hh_modern_kernels",
        initial_states={"rest": _gates_at_rest},
        current_unit="uA/cm^2",
        vector_field=vector_field,
        gates=("n", "m", "h"),
        observables=("V",),
        currents={"I_Na": _sodium, "I_K": _potassium, "I_L": _leak},
        notes={"convention": "V is the membrane potential (rest near -65 mV)"},
    )
