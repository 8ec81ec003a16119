"""The compiled right-hand side of :mod:`ionops.datasets.ionic.hh` and its rate functions.

alpha_n and alpha_m are of the form a x / (exp(x / s) - 1), which is 0/0 at
V = 10 and V = 25 mV; :func:`_linear_rate` evaluates them through expm1 and
a series at the removable point, exact to double precision everywhere.
"""

from __future__ import annotations

import math

from numba import njit
from numpy.typing import NDArray


@njit(cache=True, error_model="numpy")
def _linear_rate(x: float, s: float) -> float:
    """x / (exp(x / s) - 1), continuous at x = 0 where it equals s."""
    u = x / s
    if abs(u) < 1e-6:
        return s * (1.0 - 0.5 * u + u * u / 12.0)
    return x / math.expm1(u)


@njit(cache=True, error_model="numpy")
def rates(v: float) -> tuple[float, float, float, float, float, float]:
    """(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n) in 1/ms at depolarisation v (mV)."""
    alpha_m = 0.1 * _linear_rate(25.0 - v, 10.0)
    beta_m = 4.0 * math.exp(-v / 18.0)
    alpha_h = 0.07 * math.exp(-v / 20.0)
    beta_h = 1.0 / (math.exp((30.0 - v) / 10.0) + 1.0)
    alpha_n = 0.01 * _linear_rate(10.0 - v, 10.0)
    beta_n = 0.125 * math.exp(-v / 80.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


@njit(cache=True, error_model="numpy")
def rhs(t: float, y: NDArray, p: NDArray, i_app: float, dydt: NDArray) -> None:
    v, m, h, n = y[0], y[1], y[2], y[3]
    cm, g_na, g_k, g_l, v_na, v_k, v_l = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = rates(v)
    i_na = g_na * m * m * m * h * (v - v_na)
    i_k = g_k * n * n * n * n * (v - v_k)
    i_l = g_l * (v - v_l)
    dydt[0] = (i_app - i_na - i_k - i_l) / cm
    dydt[1] = alpha_m * (1.0 - m) - beta_m * m
    dydt[2] = alpha_h * (1.0 - h) - beta_h * h
    dydt[3] = alpha_n * (1.0 - n) - beta_n * n
