"""A compiled integrator for ionic models with Caputo derivatives: the L1 scheme.

A model may declare that some states obey a Caputo derivative of order alpha in (0, 1)
(``IonicModel.caputo``: the fractional Hodgkin-Huxley membrane, C_m D^alpha V = I - I_ion);
the others are ordinary. On a uniform step h, the Caputo derivative at t_n is the L1 sum
over every earlier step,

    D^alpha y(t_n) ~ h^-alpha / Gamma(2 - alpha) * sum_{k=0}^{n-1} b_k (y_{n-k} - y_{n-k-1}),
    b_k = (k + 1)^(1 - alpha) - k^(1 - alpha),

of order 2 - alpha on smooth solutions, set equal to f(t_n, y_n). Ordinary states take the
trapezoidal rule (order 2), so the scheme as a whole keeps the L1 term's order (a state of
order exactly 1 is ordinary: alpha = 1 is the integer-order model, solved to second order).

Each step solves its implicit system, ``y - a - w f(t_n, y) = 0`` with ``w`` the step's
weight per state and ``a`` what the past contributes, by a simplified Newton iteration on
``I - diag(w) J`` that keeps one Jacobian and factorisation while they converge. The memory
sum of a Caputo state is a contiguous dot product of its increments with the weights stored
in reverse: O(n) work and no allocation per step, O(n^2) over n steps, in machine code.
The applied current of a step is the stimulus at the step's midpoint: put the stimulus's
discontinuities on the step lattice (t = 10 ms on a 1e-3 ms step is) to keep the order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from ionops.datasets import _sparse_lu
from ionops.datasets._bdf import _JACOBIAN, NOT_FINITE, RHS_TYPE, STAT_NAMES, SUCCESS
from ionops.datasets._numerics import (
    STAT_LU,
    STAT_NEWTON_FAILED,
    STAT_RHS,
    STAT_STEPS,
    _all_finite,
    _jacobian,
    _rms,
)

NEWTON_FAILED = 5
NEWTON_MAXITER = 5
# converged once the correction is this fraction of the tolerance (atol + rtol |y|)
NEWTON_TOL = 0.1


@njit(cache=True, error_model="numpy")
def _reversed_weights(alpha: float, n_steps: int) -> np.ndarray:
    """b_{n_steps - m} at index m, so that step n's memory sum reads both arrays forwards.

    b_k = (k + 1)^beta - k^beta with beta = 1 - alpha, written k^beta expm1(beta log1p(1/k))
    so that it keeps full precision where the two powers nearly cancel (large k).
    """
    beta = 1.0 - alpha
    weights = np.empty(n_steps + 1)
    weights[n_steps] = 1.0  # b_0
    for k in range(1, n_steps + 1):
        weights[n_steps - k] = k**beta * math.expm1(beta * math.log1p(1.0 / k))
    return weights


@njit(cache=True, fastmath=True, error_model="numpy")
def _memory(weights: np.ndarray, offset: int, increments: np.ndarray, count: int) -> float:
    """sum_j weights[offset + j] * increments[j] for j < count (reassociated: vectorised)."""
    total = 0.0
    for j in range(count):
        total += weights[offset + j] * increments[j]
    return total


@njit(cache=True, error_model="numpy")
def _piece(ends, piece, t) -> int:
    """The index of the stimulus piece holding t, searching forwards from ``piece``."""
    while piece < ends.size - 1 and t > ends[piece]:
        piece += 1
    return piece


@njit(cache=True, error_model="numpy")
def _correct(rhs, p, i_app, t, a, w, factors, rtol, atol, y, f, g, scale, stats) -> int:
    """Simplified Newton on y - a - w f(t, y) = 0 from the prediction in ``y``: SUCCESS,
    NOT_FINITE, or NEWTON_FAILED when it diverges or has not converged in NEWTON_MAXITER."""
    norm_old = -1.0
    for _ in range(NEWTON_MAXITER):
        rhs(t, y, p, i_app, f)
        stats[STAT_RHS] += 1
        if not _all_finite(f):
            return NOT_FINITE
        for i in range(y.size):
            g[i] = a[i] + w[i] * f[i] - y[i]
        _sparse_lu.solve(factors, g)
        for i in range(y.size):
            y[i] += g[i]
            scale[i] = atol[i] + rtol * abs(y[i])
        norm = _rms(g, scale)
        if norm <= NEWTON_TOL:
            return SUCCESS
        if norm_old >= 0.0 and norm >= norm_old:
            return NEWTON_FAILED
        norm_old = norm
    return NEWTON_FAILED


@njit(cache=True, error_model="numpy")
def _step(
    rhs, jacobian, has_jacobian, p, i_app, t, a, w, y, y_previous, y_old, first, has_factors,
    jac, factors, rtol, atol, work, stats,
):  # fmt: skip
    """One step's implicit system from a linear extrapolation of the last two states;
    once more with a fresh Jacobian if Newton fails. Returns (status, has_factors)."""
    f, g, scale, work_y, work_f0, work_f = work[0], work[1], work[2], work[3], work[4], work[5]
    n = y.size
    for attempt in range(2):
        for i in range(n):
            y[i] = y_previous[i] if first else 2.0 * y_previous[i] - y_old[i]
        if attempt == 1 or not has_factors:
            _jacobian(rhs, jacobian, has_jacobian, p, i_app, t, y, jac, stats, work_y, work_f0,
                      work_f)  # fmt: skip
            for i in range(n):
                for j in range(n):
                    jac[i, j] *= w[i]
            if not has_factors:
                _sparse_lu.choose_order(jac, factors.order)
            if not _sparse_lu.factor(jac, 1.0, factors):
                return NEWTON_FAILED, has_factors
            stats[STAT_LU] += 1
            has_factors = True
        status = _correct(rhs, p, i_app, t, a, w, factors, rtol, atol, y, f, g, scale, stats)
        if status != NEWTON_FAILED:
            return status, has_factors
        stats[STAT_NEWTON_FAILED] += 1
    if not _all_finite(y):
        return NOT_FINITE, has_factors
    return NEWTON_FAILED, has_factors


@njit(
    types.Tuple((types.int64, types.float64[:, ::1], types.int64[::1]))(
        RHS_TYPE, _JACOBIAN, types.boolean, types.float64[::1], types.float64[::1],
        types.float64[::1], types.float64[::1], types.float64[::1], types.float64[::1],
        types.float64, types.int64[::1], types.float64, types.float64[::1],
    ),
    cache=True,
    error_model="numpy",
)  # fmt: skip
def integrate(
    rhs, jacobian, has_jacobian, p, y0, orders, starts, ends, currents, h, out_steps, rtol,
    atol,
):  # fmt: skip
    """Step h from t = 0 to ``out_steps[-1] * h``; write the state at every step in
    ``out_steps`` (ascending) into y_out (n_states, len(out_steps)).

    ``orders[i]`` is state i's derivative order, in (0, 1]; the stimulus is the pieces
    ``currents[k]`` on ``[starts[k], ends[k]]``. Returns (status, y_out with NaN where not
    reached, stats as :data:`ionops.datasets._bdf.STAT_NAMES`).
    """
    n = y0.size
    n_out = out_steps.size
    y_out = np.full((n, n_out), np.nan)
    stats = np.zeros(len(STAT_NAMES), dtype=np.int64)
    n_steps = out_steps[n_out - 1] if n_out > 0 else 0

    # the Caputo states, their weights in reverse and their increments y_j - y_{j-1}
    caputo = np.array([i for i in range(n) if orders[i] < 1.0], dtype=np.int64)
    weights = np.empty((caputo.size, n_steps + 1))
    increments = np.zeros((caputo.size, n_steps + 1))
    w = np.empty(n)  # the step's weight on f per state: y - a - w f(y) = 0
    for i in range(n):
        w[i] = 0.5 * h
    for q in range(caputo.size):
        alpha = orders[caputo[q]]
        weights[q] = _reversed_weights(alpha, n_steps)
        w[caputo[q]] = h**alpha * math.gamma(2.0 - alpha)

    y = y0.copy()
    y_old = y0.copy()  # the state two steps back, for the predictor
    y_previous = y0.copy()
    a, f_old = np.empty(n), np.empty(n)
    jac = np.empty((n, n))
    work = np.empty((6, n))
    factors = _sparse_lu.new_sparse_lu(n)
    has_factors = False

    out = 0
    while out < n_out and out_steps[out] == 0:
        y_out[:, out] = y
        out += 1
    piece = 0
    for step in range(1, n_steps + 1):
        t = step * h
        piece = _piece(ends, piece, t - 0.5 * h)
        i_app = currents[piece]
        # what the past gives each state: a_i in y_i - a_i - w_i f_i(y) = 0
        rhs(t - h, y, p, i_app, f_old)
        stats[STAT_RHS] += 1
        for i in range(n):
            a[i] = y[i] + 0.5 * h * f_old[i]
        for q in range(caputo.size):
            i = caputo[q]
            a[i] = y[i] - _memory(weights[q], n_steps - step + 1, increments[q, 1:], step - 1)
        y_previous[:] = y
        status, has_factors = _step(
            rhs, jacobian, has_jacobian, p, i_app, t, a, w, y, y_previous, y_old, step == 1,
            has_factors, jac, factors, rtol, atol, work, stats,
        )  # fmt: skip
        if status != SUCCESS:
            return status, y_out, stats
        if not _all_finite(y):
            return NOT_FINITE, y_out, stats
        stats[STAT_STEPS] += 1
        for q in range(caputo.size):
            increments[q, step] = y[caputo[q]] - y_previous[caputo[q]]
        y_old[:] = y_previous
        while out < n_out and out_steps[out] == step:
            y_out[:, out] = y
            out += 1
    return SUCCESS, y_out, stats
