"""The compiled right-hand side and Jacobian of :mod:`ionops.datasets.ionic.fhn_werneck`."""

from __future__ import annotations

from numba import njit
from numpy.typing import NDArray


@njit(cache=True, error_model="numpy")
def rhs(t: float, y: NDArray, p: NDArray, i_app: float, dydt: NDArray) -> None:
    u, w = y[0], y[1]
    c, a, gain, bias, b, d = p[0], p[1], p[2], p[3], p[4], p[5]
    dydt[0] = c * (u * (u - a) * (1.0 - u) - w + gain * i_app + bias)
    dydt[1] = b * u - d * w


@njit(cache=True, error_model="numpy")
def jacobian(t: float, y: NDArray, p: NDArray, i_app: float, jac: NDArray) -> None:
    u = y[0]
    c, a, b, d = p[0], p[1], p[4], p[5]
    # d/du of u (u - a)(1 - u) = -3 u^2 + 2 (1 + a) u - a
    jac[0, 0] = c * (-3.0 * u * u + 2.0 * (1.0 + a) * u - a)
    jac[0, 1] = -c
    jac[1, 0] = b
    jac[1, 1] = -d
