"""The BDF step's interpolant: the solution between steps and the crossings of an event.

The backward differences ``d`` of the last accepted step define a polynomial through
its last ``order + 1`` points; the integrator writes the output grid from it and locates
a model's events on it (:func:`_locate_event`), to the solver's tolerance.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ionops.datasets._numerics import EPS


@njit(cache=True, error_model="numpy")
def _interpolate(
    d: np.ndarray, order: int, t: float, h: float, t_eval: float, out: np.ndarray, row: int
) -> None:
    """The BDF interpolant of the last ``order + 1`` points at ``t_eval``, into ``out[row]``."""
    x = (t_eval - t) / h
    w1 = x
    w2 = w1 * (x + 1.0) / 2.0
    w3 = w2 * (x + 2.0) / 3.0
    w4 = w3 * (x + 3.0) / 4.0
    w5 = w4 * (x + 4.0) / 5.0
    for c in range(d.shape[1]):
        acc = d[0, c] + d[1, c] * w1
        if order >= 2:
            acc += d[2, c] * w2
        if order >= 3:
            acc += d[3, c] * w3
        if order >= 4:
            acc += d[4, c] * w4
        if order >= 5:
            acc += d[5, c] * w5
        out[c, row] = acc


@njit(cache=True, error_model="numpy")
def _interpolate_state(d, order, t, h, t_eval, y):
    """The BDF interpolant at ``t_eval``, into the state vector ``y``."""
    column = np.empty((y.size, 1))
    _interpolate(d, order, t, h, t_eval, column, 0)
    for c in range(y.size):
        y[c] = column[c, 0]


@njit(cache=True, error_model="numpy")
def _locate_event(event, p, d, order, t, h, a, b, g_a, g_b, y):
    """The first time in (a, b] where ``event`` on the step's interpolant is non-negative.

    Illinois (modified regula falsi) from g(a) < 0 <= g(b), to the resolution of t: the
    interpolant holds the solver's local accuracy, so the crossing is located to the
    solver's tolerance, not to the output grid. ``y`` is work space.
    """
    for _ in range(200):
        if b - a <= 4.0 * EPS * max(abs(a), abs(b), 1.0):
            break
        m = b - g_b * (b - a) / (g_b - g_a)
        if not (a < m < b):
            m = 0.5 * (a + b)
        _interpolate_state(d, order, t, h, m, y)
        g_m = event(m, y, p)
        if g_m >= 0.0:
            b, g_b = m, g_m
            g_a *= 0.5  # Illinois: the end that stays halves its weight
        else:
            a, g_a = m, g_m
            g_b *= 0.5
    return b
