"""FitzHugh-Nagumo in the form of Werneck et al.'s published code (the MLP surrogates' paper).

    du/dt = c (u (u - a)(1 - u) - w + gain k + bias)
    dw/dt = b u - d w

c = 10, a = 0.4, gain = 0.04, bias = 0.08, b = 0.04, d = 0.16 (time in ms,
u and w dimensionless). k is the stimulus parameter, constant in time, in
[0, 1] in the paper's problem C; it enters where the FNO paper's models take
I_app, and is passed as the solver's applied current. With the bias the cell
oscillates (about one action potential every 20 ms at k = 0) and k changes
the frequency. The paper prints the form c (u - u^3/3 - w) + I,
(u + a - b w) / tau without values; the equations above are those of the
authors' published solver, and this form is what every dataset records.

``vector_field`` is the same right-hand side in arithmetic alone, so it takes
numpy arrays and torch tensors alike: the physics-informed losses
differentiate it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic.base import IonicModel

PARAMETERS = {"c": 10.0, "a": 0.4, "gain": 0.04, "bias": 0.08, "b": 0.04, "d": 0.16}
FORM = "du/dt = c (u (u - a)(1 - u) - w + gain k + bias), dw/dt = b u - d w"


def vector_field(y: Sequence[Any], k: Any, p: Sequence[float]) -> tuple[Any, Any]:
    """(du/dt, dw/dt) of states ``y = (u, w)`` and stimulus ``k``: arrays or tensors alike."""
    u, w = y[0], y[1]
    c, a, gain, bias, b, d = p
    return c * (u * (u - a) * (1.0 - u) - w + gain * k + bias), b * u - d * w


def _problem_a(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([0.5, 0.0])


def model() -> IonicModel:
    return IonicModel(
        name="fhn_werneck",
        title="FitzHugh-Nagumo (Werneck et al.'s published form)",
        state_names=("u", "w"),
        state_units=("1", "1"),
        parameters=PARAMETERS,
        kernels="ionops.datasets.ionic.fhn_werneck_kernels",
        vector_field=vector_field,
        initial_states={"problem_a": _problem_a},
        time_unit="ms",
        current_unit="1",
        stimulus_name="k",
        notes={"form": FORM},
        observables=("u",),
    )
