"""The compiled signatures of every ionic model's right-hand side and Jacobian.

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
