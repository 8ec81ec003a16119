"""The compiled right-hand side and Jacobian of :mod:`ionops.datasets.ionic.fhn`."""

from __future__ import annotations

from numba import njit
from numpy.typing import NDArray


@njit(cache=True, error_model="numpy")
def rhs(t: float, y: NDArray, p: NDArray, i_app: float, dydt: NDArray) -> None:
    v, w = y[0], y[1]
    b, beta, c, delta, gamma, e = p[0], p[1], p[2], p[3], p[4], p[5]
    dydt[0] = b * v * (v - beta) * (delta - v) - c * w + i_app
    dydt[1] = e * (v - gamma * w)


@njit(cache=True, error_model="numpy")
def jacobian(t: float, y: NDArray, p: NDArray, i_app: float, jac: NDArray) -> None:
    v = y[0]
    b, beta, c, delta, gamma, e = p[0], p[1], p[2], p[3], p[4], p[5]
    # d/dV of b (V^2 - beta V)(delta - V)
    jac[0, 0] = b * ((2.0 * v - beta) * (delta - v) - (v * v - beta * v))
    jac[0, 1] = -c
    jac[1, 0] = e
    jac[1, 1] = -e * gamma
