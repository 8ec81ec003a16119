"""The compiled right-hand side of :mod:`ionops.datasets.ionic.hh_modern` and its rates.

alpha_n and alpha_m are 0/0 at V = -55 and -40 mV; they go through the 1952 model's
:func:`~ionops.datasets.ionic.hh_kernels._linear_rate` (expm1, and a series at the
removable point), exact to double precision on either side of it.
"""

from __future__ import annotations

import math

from numba import njit
from numpy.typing import NDArray

from ionops.datasets.ionic.hh_kernels import _linear_rate


@njit(cache=True, error_model="numpy")
def rates(v: float) -> tuple[float, float, float, float, float, float]:
    """(alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h) in 1/ms at membrane potential v (mV)."""
    alpha_n = 0.01 * _linear_rate(-(v + 55.0), 10.0)
    beta_n = 0.125 * math.exp(-0.0125 * (v + 65.0))
    alpha_m = 0.1 * _linear_rate(-(v + 40.0), 10.0)
    beta_m = 4.0 * math.exp(-0.0556 * (v + 65.0))
    alpha_h = 0.07 * math.exp(-0.05 * (v + 65.0))
    beta_h = 1.0 / (1.0 + math.exp(-0.1 * (v + 35.0)))
    return alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h


@njit(cache=True, error_model="numpy")
def rhs(t: float, y: NDArray, p: NDArray, i_app: float, dydt: NDArray) -> None:
    v, n, m, h = y[0], y[1], y[2], y[3]
    cm, g_na, g_k, g_l, e_na, e_k, e_l = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h = rates(v)
    i_na = g_na * m * m * m * h * (v - e_na)
    i_k = g_k * n * n * n * n * (v - e_k)
    i_l = g_l * (v - e_l)
    dydt[0] = (i_app - i_na - i_k - i_l) / cm
    dydt[1] = alpha_n * (1.0 - n) - beta_n * n
    dydt[2] = alpha_m * (1.0 - m) - beta_m * m
    dydt[3] = alpha_h * (1.0 - h) - beta_h * h
