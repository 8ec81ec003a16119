"""Hodgkin-Huxley 1952 squid axon, original convention (V is the depolarisation, rest at 0 mV).

    Cm dV/dt = I_app - gNa m^3 h (V - VNa) - gK n^4 (V - VK) - gL (V - VL)
    dx/dt = alpha_x(V) (1 - x) - beta_x(V) x,   x in {m, h, n}

Cm = 1 uF/cm^2, gNa = 120, gK = 36, gL = 0.3 mS/cm^2, VNa = 115, VK = -12,
VL = 10.6 mV; initial state V0 = 2.757e-2 mV, m0 = 5.2934e-2, h0 = 5.9611e-1,
n0 = 3.1768e-1 (the FNO paper's values). The compiled equations are in
:mod:`ionops.datasets.ionic.hh_kernels`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic.base import IonicModel

PARAMETERS = {
    "Cm": 1.0,
    "gNa": 120.0,
    "gK": 36.0,
    "gL": 0.3,
    "VNa": 115.0,
    "VK": -12.0,
    "VL": 10.6,
}
INITIAL_STATE = (2.757e-2, 5.2934e-2, 5.9611e-1, 3.1768e-1)


def _sodium(y: NDArray, p: NDArray) -> NDArray:
    return p[1] * y[1] ** 3 * y[2] * (y[0] - p[4])


def _potassium(y: NDArray, p: NDArray) -> NDArray:
    return p[2] * y[3] ** 4 * (y[0] - p[5])


def _leak(y: NDArray, p: NDArray) -> NDArray:
    return p[3] * (y[0] - p[6])


def _paper_initial_state(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array(INITIAL_STATE)


def model() -> IonicModel:
    return IonicModel(
        name="hh",
        title="Hodgkin-Huxley 1952 (rest at 0 mV)",
        state_names=("V", "m", "h", "n"),
        state_units=("mV", "1", "1", "1"),
        parameters=PARAMETERS,
        kernels="ionops.datasets.ionic.hh_kernels",
        initial_states={"paper": _paper_initial_state},
        current_unit="uA/cm^2",
        gates=("m", "h", "n"),
        observables=("V",),
        currents={"I_Na": _sodium, "I_K": _potassium, "I_L": _leak},
    )
