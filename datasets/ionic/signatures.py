"""The compiled signatures of an ionic model's kernels: right-hand side, Jacobian, events.

A model's kernels module declares its functions without them (``@njit(cache=True)``), so
that importing the model compiles nothing; the solver compiles them with these on first
use and takes them by address, so one cached solver serves every model.
"""

from numba import types

RHS_SIGNATURE = types.void(
    types.float64, types.float64[::1], types.float64[::1], types.float64, types.float64[::1]
)
JACOBIAN_SIGNATURE = types.void(
    types.float64, types.float64[::1], types.float64[::1], types.float64, types.float64[:, ::1]
)
# a model with resets: the event function, whose crossing from negative to non-negative is
# the event (e.g. V - V_th), and the reset that maps the state in place at the crossing
EVENT_SIGNATURE = types.float64(types.float64, types.float64[::1], types.float64[::1])
RESET_SIGNATURE = types.void(types.float64, types.float64[::1], types.float64[::1])
