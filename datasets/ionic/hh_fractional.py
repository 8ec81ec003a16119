"""Fractional-order Hodgkin-Huxley: a Caputo derivative of order alpha on the membrane.

    Cm D^alpha V = I(t) - gNa m^3 h (V - ENa) - gK n^4 (V - EK) - gL (V - EL)
    dx/dt = alpha_x(V) (1 - x) - beta_x(V) x,   x in {n, m, h}   (ordinary, order 1)

The modern-convention model of :mod:`ionops.datasets.ionic.hh_modern` (the same constants,
rates and compiled right-hand side) with ``alpha`` in (0, 1] as a parameter (default 0.8;
1 is the integer-order model). The splitting-PINN paper's setting (paper 003) starts from
the resting state at I = 0, the initial state ``rest`` here: the V at which the ionic
current of the gates' steady states vanishes, found by bisection to machine precision.

Solved by the L1 scheme (:mod:`ionops.datasets._l1`) on a uniform step: the solver's
``max_step``, at most the output grid's.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic import hh_modern
from ionops.datasets.ionic.base import IonicModel

PARAMETERS = {**hh_modern.PARAMETERS, "alpha": 0.8}


def _steady_gates(v: float) -> NDArray[np.float64]:
    alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h = hh_modern.rate_values(np.float64(v))
    return np.array([a / (a + b) for a, b in ((alpha_n, beta_n), (alpha_m, beta_m),
                                               (alpha_h, beta_h))])  # fmt: skip


def _ionic_current(v: float, p: NDArray[np.float64]) -> float:
    n, m, h = _steady_gates(v)
    return float(-hh_modern.vector_field((v, n, m, h), 0.0, p.tolist())[0] * p[0])


def resting_state(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """(V, n, m, h) at rest with no applied current: I_ion(V, x_inf(V)) = 0 between -80 and
    -50 mV (one root there for the default constants), by bisection."""
    low, high = -80.0, -50.0
    if _ionic_current(low, p) * _ionic_current(high, p) > 0:
        raise ValueError("hh_fractional: no resting potential between -80 and -50 mV for "
                         "these parameters")  # fmt: skip
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if (_ionic_current(middle, p) < 0) == (_ionic_current(low, p) < 0):
            low = middle
        else:
            high = middle
    v = 0.5 * (low + high)
    return np.array([v, *_steady_gates(v)])


def model() -> IonicModel:
    base = hh_modern.model()
    return IonicModel(
        name="hh_fractional",
        title="Fractional-order Hodgkin-Huxley (Caputo D^alpha V, modern convention)",
        state_names=base.state_names,
        state_units=base.state_units,
        parameters=PARAMETERS,
        kernels=base.kernels,
        initial_states={"rest": resting_state, "rest_-65": base.initial_states["rest"]},
        current_unit=base.current_unit,
        vector_field=base.vector_field,
        gates=base.gates,
        observables=base.observables,
        currents=base.currents,
        caputo={"V": "alpha"},
        notes={"convention": "V is the membrane potential (rest near -65 mV)",
               "derivative": "C_m D^alpha V with the Caputo derivative; gates of order 1"},
    )  # fmt: skip
