"""The compiled right-hand side, Jacobian, event and reset of :mod:`ionops.datasets.ionic.lif`."""

from __future__ import annotations

from numba import njit
from numpy.typing import NDArray


@njit(cache=True, error_model="numpy")
def rhs(t: float, y: NDArray, p: NDArray, i_app: float, dydt: NDArray) -> None:
    dydt[0] = (-(y[0] - p[1]) + i_app) / p[0]


@njit(cache=True, error_model="numpy")
def jacobian(t: float, y: NDArray, p: NDArray, i_app: float, jac: NDArray) -> None:
    jac[0, 0] = -1.0 / p[0]


@njit(cache=True, error_model="numpy")
def event(t: float, y: NDArray, p: NDArray) -> float:
    return y[0] - p[2]


@njit(cache=True, error_model="numpy")
def reset(t: float, y: NDArray, p: NDArray) -> None:
    y[0] = p[3]
