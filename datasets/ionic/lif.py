"""Leaky integrate-and-fire neuron (1 state, V in mV), with a reset at the threshold.

    tau_m dV/dt = -(V - V_rest) + R I(t);   when V reaches V_th: V <- V_reset

tau_m = 10 ms, V_rest = -65, V_th = -50, V_reset = -65 mV, no refractory period; the
applied input is R I in mV (20 mV fires every tau_m ln(20 / 5) = 13.86 ms from rest).
The solver locates each threshold crossing to its tolerance and resets there; the spike
times are known in closed form (``tests/test_events.py``). Kernels in
:mod:`ionops.datasets.ionic.lif_kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic.base import IonicModel
from ionops.errors import UserError

PARAMETERS = {"tau_m": 10.0, "v_rest": -65.0, "v_th": -50.0, "v_reset": -65.0}


def vector_field(y: Sequence[Any], i_app: Any, p: Sequence[float]) -> tuple[Any]:
    """(dV/dt,) in arithmetic alone (numpy arrays or torch tensors); the reset is an event."""
    return ((-(y[0] - p[1]) + i_app) / p[0],)


def _at_rest(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([p[1]])


def _check(values: dict[str, float]) -> None:
    if values["tau_m"] <= 0.0:
        raise UserError(f"lif parameter tau_m = {values['tau_m']:g}: must be > 0 ms")
    if values["v_reset"] >= values["v_th"]:
        raise UserError(
            f"lif parameter v_reset = {values['v_reset']:g} mV is not below the threshold "
            f"v_th = {values['v_th']:g} mV: the reset must be below it"
        )


def model() -> IonicModel:
    return IonicModel(
        name="lif",
        title="leaky integrate-and-fire",
        state_names=("V",),
        state_units=("mV",),
        parameters=PARAMETERS,
        kernels="ionops.datasets.ionic.lif_kernels",
        initial_states={"rest": _at_rest},
        current_unit="mV",
        tolerances=(1e-8, 1e-8),
        parameter_check=_check,
        stimulus_name="RI",
        observables=("V",),
        vector_field=vector_field,
        notes={"RI": "the applied input is R I, in mV"},
    )
