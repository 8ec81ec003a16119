"""Small compiled kernels of the stiff solver: weighted norms, finiteness, Jacobians, and the
rescaling of the backward differences when the step size changes.

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


@njit(cache=True, error_model="numpy")
def _step_ratio_matrix(order: int, factor: float, r: np.ndarray) -> None:
    """R[i, j] = prod_{m=1..i} (m - 1 - factor j) / m, into ``r``: rescales differences."""
    for j in range(order + 1):
        r[0, j] = 1.0
        for i in range(1, order + 1):
            value = 0.0 if j == 0 else (i - 1 - factor * j) / i
            r[i, j] = r[i - 1, j] * value


@njit(cache=True, error_model="numpy")
def _rescale_differences(d: np.ndarray, order: int, factor: float, work: np.ndarray) -> None:
    """Turn differences for step h into differences for step ``factor * h``: D <- (RU)^T D.

    ``work`` (3, m, m) with m > ``order`` is scratch, so a step change allocates nothing; ``d``
    has at least six rows (the solver's differences array).
    """
    size = order + 1
    r, u, ru = work[0], work[1], work[2]
    _step_ratio_matrix(order, factor, r)
    _step_ratio_matrix(order, 1.0, u)
    for i in range(size):
        for j in range(size):
            acc = 0.0
            for k in range(size):
                acc += r[i, k] * u[k, j]
            ru[i, j] = acc
    for c in range(d.shape[1]):
        d0, d1, d2, d3, d4, d5 = d[0, c], d[1, c], d[2, c], d[3, c], d[4, c], d[5, c]
        for j in range(size):
            acc = ru[0, j] * d0 + ru[1, j] * d1
            if size > 2:
                acc += ru[2, j] * d2
            if size > 3:
                acc += ru[3, j] * d3
            if size > 4:
                acc += ru[4, j] * d4
            if size > 5:
                acc += ru[5, j] * d5
            d[j, c] = acc
