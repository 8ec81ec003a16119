"""Small compiled kernels of the stiff solver: weighted norms, finiteness, dense LU, Jacobians.

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


# fastmath lets the LU and triangular-solve loops vectorise (reassociation, FMA);
# no finiteness test lives in them.
@njit(cache=True, fastmath=True, error_model="numpy")
def _lu_factor(a: np.ndarray, piv: np.ndarray) -> bool:
    """In-place LU with partial pivoting; False if the matrix is singular."""
    n = a.shape[0]
    for k in range(n):
        p = k
        biggest = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > biggest:
                biggest = abs(a[i, k])
                p = i
        piv[k] = p
        if biggest == 0.0:
            return False
        if p != k:
            for j in range(n):
                a[k, j], a[p, j] = a[p, j], a[k, j]
        inverse = 1.0 / a[k, k]
        for i in range(k + 1, n):
            a[i, k] *= inverse
            factor = a[i, k]
            if factor != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= factor * a[k, j]
    return True


@njit(cache=True, fastmath=True, error_model="numpy")
def _lu_solve(lu: np.ndarray, piv: np.ndarray, b: np.ndarray) -> None:
    """Solve in place with the factors of :func:`_lu_factor`."""
    n = lu.shape[0]
    for k in range(n):
        p = piv[k]
        if p != k:
            b[k], b[p] = b[p], b[k]
    for i in range(n):
        acc = b[i]
        for j in range(i):
            acc -= lu[i, j] * b[j]
        b[i] = acc
    for i in range(n - 1, -1, -1):
        acc = b[i]
        for j in range(i + 1, n):
            acc -= lu[i, j] * b[j]
        b[i] = acc / lu[i, i]


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
