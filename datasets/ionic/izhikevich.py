"""Izhikevich's simple neuron (2003): v in mV, the recovery u, a reset at the spike peak.

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I,   du/dt = a (b v - u);
    when v reaches 30 mV: v <- c, u <- u + d

The defaults are the regular-spiking set; :data:`PARAMETER_SETS` holds the paper's
regular spiking (RS), intrinsically bursting (IB), chattering (CH) and fast spiking (FS)
(a, b, c, d), e.g. ``--set data.parameters.c=-55 --set data.parameters.d=4`` for IB.
From v(0) = -65 mV and u(0) = b v(0). I is dimensionless (10 fires RS tonically).
Kernels in :mod:`ionops.datasets.ionic.izhikevich_kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic.base import IonicModel
from ionops.errors import UserError

PARAMETER_SETS = {
    "RS": {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0},
    "IB": {"a": 0.02, "b": 0.2, "c": -55.0, "d": 4.0},
    "CH": {"a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0},
    "FS": {"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0},
}
PEAK = 30.0  # mV, where a spike is cut and v reset


def vector_field(y: Sequence[Any], i_app: Any, p: Sequence[float]) -> tuple[Any, Any]:
    """(dv/dt, du/dt) in arithmetic alone (numpy arrays or torch tensors); the reset at the
    peak is an event."""
    v, u = y[0], y[1]
    return 0.04 * v * v + 5.0 * v + 140.0 - u + i_app, p[0] * (p[1] * v - u)


def _start(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([-65.0, p[1] * -65.0])


def _check(values: dict[str, float]) -> None:
    if values["c"] >= PEAK:
        raise UserError(f"izhikevich parameter c = {values['c']:g} mV is not below the spike "
                        f"peak ({PEAK:g} mV): the reset must be below it")  # fmt: skip


def model() -> IonicModel:
    return IonicModel(
        name="izhikevich",
        title="Izhikevich 2003 simple neuron",
        state_names=("v", "u"),
        state_units=("mV", "1"),
        parameters=PARAMETER_SETS["RS"],
        kernels="ionops.datasets.ionic.izhikevich_kernels",
        initial_states={"rest": _start},
        current_unit="1",
        tolerances=(1e-8, 1e-8),
        parameter_check=_check,
        stimulus_name="I",
        observables=("v",),
        vector_field=vector_field,
        parameter_sets=PARAMETER_SETS,
        notes={"a, b, c, d": "regular spiking (RS); the parameter sets IB, CH and FS"},
    )
