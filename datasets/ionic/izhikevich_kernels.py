"""The compiled right-hand side, Jacobian, event and reset of
:mod:`ionops.datasets.ionic.izhikevich`."""

from __future__ import annotations

from numba import njit
from numpy.typing import NDArray


@njit(cache=True, error_model="numpy")
def rhs(t: float, y: NDArray, p: NDArray, i_app: float, dydt: NDArray) -> None:
    v, u = y[0], y[1]
    dydt[0] = 0.04 * v * v + 5.0 * v + 140.0 - u + i_app
    dydt[1] = p[0] * (p[1] * v - u)


@njit(cache=True, error_model="numpy")
def jacobian(t: float, y: NDArray, p: NDArray, i_app: float, jac: NDArray) -> None:
    jac[0, 0] = 0.08 * y[0] + 5.0
    jac[0, 1] = -1.0
    jac[1, 0] = p[0] * p[1]
    jac[1, 1] = -p[0]


@njit(cache=True, error_model="numpy")
def event(t: float, y: NDArray, p: NDArray) -> float:
    return y[0] - 30.0


@njit(cache=True, error_model="numpy")
def reset(t: float, y: NDArray, p: NDArray) -> None:
    y[0] = p[2]
    y[1] += p[3]
