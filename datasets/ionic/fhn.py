"""FitzHugh-Nagumo in the FNO paper's form (2 states, V and w, dimensionless).

    dV/dt = b V (V - beta)(delta - V) - c w + I_app
    dw/dt = e (V - gamma w)

Parameters b = 5, beta = 0.1, c = 1, delta = 1, gamma = 0.25, V0 = w0 = 0.

The recovery rate ``e`` defaults to 0.1, the value in the authors' published
solver that produced the paper's data; the paper's Table 5 prints e = 1. With
e = 1 recovery is as fast as excitation and the action potential is a brief
blip; with e = 0.1 it has the plateau and recovery the paper's figures show.
Pass ``e=1.0`` to use the printed value; the value used is stored in every
dataset's metadata.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic.base import IonicModel

PARAMETERS = {"b": 5.0, "beta": 0.1, "c": 1.0, "delta": 1.0, "gamma": 0.25, "e": 0.1}


def _resting(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.zeros(2)


def model() -> IonicModel:
    return IonicModel(
        name="fhn",
        title="FitzHugh-Nagumo (FNO paper form)",
        state_names=("V", "w"),
        state_units=("1", "1"),
        parameters=PARAMETERS,
        kernels="ionops.datasets.ionic.fhn_kernels",
        initial_states={"rest": _resting},
        time_unit="ms",
        current_unit="1",
        notes={
            "e": "0.1 as in the authors' published solver (the paper's Table 5 prints 1)",
        },
        observables=("V",),
    )
