"""Small compiled kernels of the stiff solver: weighted norms, finiteness, Jacobians.

All run under numba inside :mod:`ionops.datasets._bdf`; vectors have the
length of the model's state (41 for ORd), small enough for plain loops.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

EPS = float(np.finfo(np.float64).eps)
# Counters in the solver's stats vector.
STAT_STEPS, STAT_RHS, STAT_JAC, STAT_LU, STAT_REJECTED, STAT_NEWTON_FAILED = range(6)


@njit(cache=True, error_model="numpy")
def _rms(x: np.ndarray, scale: np.ndarray) -> float:
    total = 0.0
    for i in range(x.size):
        r = x[i] / scale[i]
        total += r * r
    return math.sqrt(total / x.size)


@njit(cache=True, error_model="numpy")
def _all_finite(x: np.ndarray) -> bool:
    for i in range(x.size):
        if not math.isfinite(x[i]):
            return False
    return True


@njit(cache=True, error_model="numpy")
def _finite_difference_jacobian(rhs, p, i_app, t, y, f0, jac, work_y, work_f) -> None:
    sqrt_eps = math.sqrt(EPS)
    for j in range(y.size):
        work_y[:] = y
        delta = sqrt_eps * max(abs(y[j]), 1e-3)
        work_y[j] = y[j] + delta
        delta = work_y[j] - y[j]
        rhs(t, work_y, p, i_app, work_f)
        for i in range(y.size):
            jac[i, j] = (work_f[i] - f0[i]) / delta


@njit(cache=True, error_model="numpy")
def _jacobian(rhs, jacobian, has_jacobian, p, i_app, t, y, jac, stats, work_y, work_f0, work_f):
    stats[STAT_JAC] += 1
    if has_jacobian:
        jacobian(t, y, p, i_app, jac)
        return
    rhs(t, y, p, i_app, work_f0)
    stats[STAT_RHS] += 1 + y.size
    _finite_difference_jacobian(rhs, p, i_app, t, y, work_f0, jac, work_y, work_f)
