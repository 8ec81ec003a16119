"""A compiled variable-order BDF integrator (the NDF variant of Shampine and Reichelt, 1997).

Everything here runs under numba: one call of :func:`integrate` solves a whole
piecewise-constant stimulus protocol and writes the solution onto the output
grid by the method's own interpolating polynomial. The right-hand side and the
Jacobian arrive as first-class compiled functions of fixed signature (see
:mod:`ionops.datasets.ionic.base`), so one cached machine-code solver serves
every ionic model and the solve never returns to Python.

Method: orders 1-5 with backward differences ``D`` scaled to the step size;
each step predicts from ``D``, corrects by a simplified Newton iteration on
``(I - c J) dy = c f - psi - d`` that reuses one LU factorisation for as long
as ``c = h / alpha_k`` is unchanged and one Jacobian until Newton fails with
it, and controls the local error ``error_const[k] * d`` in a weighted RMS
norm with weights ``atol + rtol |y|``. Order and step change together after
``k + 1`` steps of equal size, to the order with the largest admissible step.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from ionops.datasets import _sparse_lu
from ionops.datasets._interpolant import _interpolate, _interpolate_state, _locate_event
from ionops.datasets._numerics import (
    EPS,
    STAT_LU,
    STAT_NEWTON_FAILED,
    STAT_REJECTED,
    STAT_RHS,
    STAT_STEPS,
    _all_finite,
    _jacobian,
    _rescale_differences,
    _rms,
)
from ionops.datasets.ionic.signatures import (
    EVENT_SIGNATURE,
    JACOBIAN_SIGNATURE,
    RESET_SIGNATURE,
    RHS_SIGNATURE,
)

RHS_TYPE = types.FunctionType(RHS_SIGNATURE)  # a model's right-hand side, by its address
_JACOBIAN = types.FunctionType(JACOBIAN_SIGNATURE)
_EVENT = types.FunctionType(EVENT_SIGNATURE)
_RESET = types.FunctionType(RESET_SIGNATURE)

MAX_ORDER = 5
NEWTON_MAXITER = 4
MIN_FACTOR = 0.2
MAX_FACTOR = 10.0
LU_REUSE_DRIFT = 0.3
NEWTON_TOL = 0.03

# Status codes of one segment's integration.
SUCCESS = 0
TOO_MANY_STEPS = 1
STEP_TOO_SMALL = 2
NOT_FINITE = 3
EVENT = 4  # a segment stopped at an event (internal: integrate applies the reset and goes on)
STATUS_TEXT = {
    SUCCESS: "success",
    TOO_MANY_STEPS: "the step budget (max_steps) ran out",
    STEP_TOO_SMALL: "the step size fell below the floating-point resolution of t",
    NOT_FINITE: "the right-hand side returned a non-finite value at the initial state",
}


STAT_NAMES = (
    "steps",
    "rhs_evaluations",
    "jacobians",
    "lu_factorisations",
    "rejected",
    "newton_failures",
)

_KAPPA = np.array([0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0])
_GAMMA = np.concatenate((np.zeros(1), np.cumsum(1.0 / np.arange(1, MAX_ORDER + 1))))
_ALPHA = (1.0 - _KAPPA) * _GAMMA
_ERROR_CONST = _KAPPA * _GAMMA + 1.0 / np.arange(1, MAX_ORDER + 2)


@njit(cache=True, error_model="numpy")
def _initial_step(rhs, p, i_app, t0, y0, f0, interval, rtol, atol, stats) -> float:
    """Hairer-Norsett-Wanner's starting step for a first-order method."""
    scale = atol + np.abs(y0) * rtol
    d0 = _rms(y0, scale)
    d1 = _rms(f0, scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, interval)
    y1 = y0 + h0 * f0
    f1 = np.empty_like(y0)
    rhs(t0 + h0, y1, p, i_app, f1)
    stats[STAT_RHS] += 1
    d2 = _rms(f1 - f0, scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** 0.5
    return min(100.0 * h0, h1, interval)


@njit(cache=True, error_model="numpy")
def _newton(
    rhs, p, i_app, t_new, y_predict, c, psi, factors, scale, tol, y, d, f, dy, stats, damping, rate
):
    """Simplified Newton for the corrector; returns (converged, iterations, rate).

    ``damping`` scales each correction when the factorisation was made for an
    earlier c (CVODE's 2 / (1 + c / c_lu)); it is 1 when c is current.
    ``rate`` is the contraction rate remembered from earlier steps (1 when
    unknown): as in CVODE, it lets a step converge after one iteration when
    ``dy_norm * min(1, rate)`` is already below ``tol``.
    """
    d[:] = 0.0
    y[:] = y_predict
    dy_norm_old = -1.0
    for k in range(NEWTON_MAXITER):
        rhs(t_new, y, p, i_app, f)
        stats[STAT_RHS] += 1
        if not _all_finite(f):
            return False, k + 1, rate
        for i in range(y.size):
            dy[i] = c * f[i] - psi[i] - d[i]
        _sparse_lu.solve(factors, dy)
        if damping != 1.0:
            for i in range(y.size):
                dy[i] *= damping
        dy_norm = _rms(dy, scale)
        if dy_norm_old >= 0.0:
            observed = dy_norm / dy_norm_old
            if (
                observed >= 1.0
                or observed ** (NEWTON_MAXITER - k) / (1.0 - observed) * dy_norm > tol
            ):
                return False, k + 1, max(rate, observed)
            rate = max(0.3 * rate, observed)
        y += dy
        d += dy
        if dy_norm * min(1.0, rate) <= tol:
            return True, k + 1, rate
        dy_norm_old = dy_norm
    return False, NEWTON_MAXITER, rate


@njit(cache=True, error_model="numpy")
def _new_jacobian(
    rhs, jacobian, has_jacobian, p, i_app, t, y, jac, factors, stats, work_y, work_f0, work_f
):  # fmt: skip
    """The Jacobian at (t, y) into ``jac``, and the factorisation's elimination order for it."""
    _jacobian(rhs, jacobian, has_jacobian, p, i_app, t, y, jac, stats, work_y, work_f0, work_f)
    _sparse_lu.choose_order(jac, factors.order)


@njit(cache=True, error_model="numpy")
def integrate_segment(
    rhs, jacobian, has_jacobian, event, has_event, p, i_app, t0, t_end, y0,
    t_out, y_out, first_out, rtol, atol, max_steps, max_step, stats,
):  # fmt: skip
    """Integrate from (t0, y0) to t_end with a constant applied current.

    Fills ``y_out[k]`` (n_t, n_states) for every grid time ``t0 <= t_out[k] <= t_end``
    from index ``first_out`` on. Returns (status, next grid index, final state, its time).
    With ``has_event``, a step across which ``event(t, y, p)`` goes from negative to
    non-negative ends the segment early: the crossing is located on the step's
    interpolant (:func:`_locate_event`), the grid is filled up to it and the status is
    :data:`EVENT`, with the state and time just at the crossing.
    """
    n = y0.size
    y = y0.copy()
    out_index = first_out
    while out_index < t_out.size and t_out[out_index] <= t0:
        y_out[:, out_index] = y
        out_index += 1
    if t_end <= t0:
        return SUCCESS, out_index, y, t0

    f = np.empty(n)
    rhs(t0, y, p, i_app, f)
    stats[STAT_RHS] += 1
    if not _all_finite(f):
        return NOT_FINITE, out_index, y, t0
    g = event(t0, y, p) if has_event else 0.0

    jac = np.empty((n, n))
    factors = _sparse_lu.new_sparse_lu(n)
    work_y, work_f0, work_f = np.empty(n), np.empty(n), np.empty(n)
    y_predict, psi, scale = np.empty(n), np.empty(n), np.empty(n)
    y_new, d, dy = np.empty(n), np.empty(n), np.empty(n)
    diffs = np.zeros((MAX_ORDER + 3, n))
    rescale_work = np.empty((3, MAX_ORDER + 1, MAX_ORDER + 1))

    # The Newton error is measured in units of the error tolerance already.
    newton_tol = max(10.0 * EPS / rtol, NEWTON_TOL)
    h = _initial_step(rhs, p, i_app, t0, y, f, t_end - t0, rtol, atol, stats)
    h = min(h, max_step)
    diffs[0] = y
    diffs[1] = f * h
    order = 1
    equal_steps = 0
    _new_jacobian(rhs, jacobian, has_jacobian, p, i_app, t0, y, jac, factors, stats,
                  work_y, work_f0, work_f)  # fmt: skip
    jacobian_is_current = True
    lu_is_valid = False
    lu_c = 1.0
    newton_rate = 1.0
    t = t0

    while t < t_end:
        if stats[STAT_STEPS] >= max_steps:
            return TOO_MANY_STEPS, out_index, y, t
        min_step = 10.0 * EPS * max(abs(t), abs(t_end))
        if h > max_step:
            _rescale_differences(diffs, order, max_step / h, rescale_work)
            h, equal_steps = max_step, 0

        accepted = False
        n_iter = 0
        error_norm = 0.0
        t_new = t
        while not accepted:
            if h < min_step:
                return STEP_TOO_SMALL, out_index, y, t
            t_new = t + h
            if t_new >= t_end - min_step:
                t_new = t_end
                _rescale_differences(diffs, order, (t_end - t) / h, rescale_work)
                h, equal_steps = t_end - t, 0

            for i in range(n):
                predicted, weighted = diffs[0, i], 0.0
                for j in range(1, order + 1):
                    predicted += diffs[j, i]
                    weighted += _GAMMA[j] * diffs[j, i]
                y_predict[i] = predicted
                psi[i] = weighted / _ALPHA[order]
                scale[i] = atol[i] + rtol * abs(predicted)
            c = h / _ALPHA[order]

            converged = False
            while True:
                # Like CVODE, keep the factorisation while c drifts by less than 30 %.
                if lu_is_valid and abs(c / lu_c - 1.0) > LU_REUSE_DRIFT:
                    lu_is_valid = False
                if not lu_is_valid:
                    if has_jacobian and not jacobian_is_current:
                        # a closed-form Jacobian costs a few right-hand sides: refresh it
                        _new_jacobian(rhs, jacobian, has_jacobian, p, i_app, t_new, y_predict,
                                      jac, factors, stats, work_y, work_f0, work_f)  # fmt: skip
                        jacobian_is_current = True
                    stats[STAT_LU] += 1
                    lu_c = c
                    newton_rate = 1.0
                    lu_is_valid = _sparse_lu.factor(jac, c, factors)
                if lu_is_valid:
                    converged, n_iter, newton_rate = _newton(
                        rhs, p, i_app, t_new, y_predict, c, psi, factors, scale, newton_tol,
                        y_new, d, work_f, dy, stats, 2.0 / (1.0 + c / lu_c), newton_rate,
                    )  # fmt: skip
                if converged or jacobian_is_current:
                    break
                _new_jacobian(rhs, jacobian, has_jacobian, p, i_app, t_new, y_predict, jac,
                              factors, stats, work_y, work_f0, work_f)  # fmt: skip
                jacobian_is_current, lu_is_valid = True, False

            if not converged:
                stats[STAT_NEWTON_FAILED] += 1
                _rescale_differences(diffs, order, 0.5, rescale_work)
                h, equal_steps = 0.5 * h, 0
                continue

            safety = 0.9 * (2 * NEWTON_MAXITER + 1) / (2 * NEWTON_MAXITER + n_iter)
            for i in range(n):
                scale[i] = atol[i] + rtol * abs(y_new[i])
                dy[i] = _ERROR_CONST[order] * d[i]
            error_norm = _rms(dy, scale)
            if error_norm > 1.0 or not math.isfinite(error_norm):
                stats[STAT_REJECTED] += 1
                factor = MIN_FACTOR
                if math.isfinite(error_norm):
                    factor = max(MIN_FACTOR, safety * error_norm ** (-1.0 / (order + 1)))
                _rescale_differences(diffs, order, factor, rescale_work)
                h, equal_steps = h * factor, 0
            else:
                accepted = True

        stats[STAT_STEPS] += 1
        equal_steps += 1
        t_before = t
        t = t_new
        y[:] = y_new
        jacobian_is_current = False
        for i in range(n):
            diffs[order + 2, i] = d[i] - diffs[order + 1, i]
            diffs[order + 1, i] = d[i]
            for j in range(order, -1, -1):
                diffs[j, i] += diffs[j + 1, i]

        if has_event:
            g_new = event(t, y, p)
            if g < 0.0 <= g_new:
                t_event = _locate_event(event, p, diffs, order, t, h, t_before, t, g, g_new,
                                        work_y)  # fmt: skip
                while out_index < t_out.size and t_out[out_index] <= t_event:
                    _interpolate(diffs, order, t, h, t_out[out_index], y_out, out_index)
                    out_index += 1
                _interpolate_state(diffs, order, t, h, t_event, y)
                return EVENT, out_index, y, t_event
            g = g_new

        while out_index < t_out.size and t_out[out_index] <= t:
            _interpolate(diffs, order, t, h, t_out[out_index], y_out, out_index)
            out_index += 1

        if equal_steps < order + 1:
            continue
        # Change order and step together, to the order allowing the largest step.
        best_factor = error_norm ** (-1.0 / (order + 1)) if error_norm > 0.0 else MAX_FACTOR
        best_delta = 0
        if order > 1:
            for i in range(n):
                dy[i] = _ERROR_CONST[order - 1] * diffs[order, i]
            lower = _rms(dy, scale)
            factor = lower ** (-1.0 / order) if lower > 0.0 else MAX_FACTOR
            if factor > best_factor:
                best_factor, best_delta = factor, -1
        if order < MAX_ORDER:
            for i in range(n):
                dy[i] = _ERROR_CONST[order + 1] * diffs[order + 2, i]
            higher = _rms(dy, scale)
            factor = higher ** (-1.0 / (order + 2)) if higher > 0.0 else MAX_FACTOR
            if factor > best_factor:
                best_factor, best_delta = factor, 1
        order += best_delta
        factor = min(MAX_FACTOR, safety * best_factor)
        _rescale_differences(diffs, order, factor, rescale_work)
        h, equal_steps = h * factor, 0

    return SUCCESS, out_index, y, t


@njit(
    types.Tuple((types.int64, types.float64[:, ::1], types.int64[::1], types.float64[::1]))(
        RHS_TYPE, _JACOBIAN, types.boolean, _EVENT, _RESET, types.boolean, types.float64[::1],
        types.float64[::1], types.float64[::1], types.float64[::1], types.float64[::1],
        types.float64[::1], types.float64, types.float64[::1], types.int64, types.float64,
    ),
    cache=True,
    error_model="numpy",
)  # fmt: skip
def integrate(
    rhs, jacobian, has_jacobian, event, reset, has_event, p, y0, starts, ends, currents, t_out,
    rtol, atol, max_steps, max_step,
):  # fmt: skip
    """Solve the protocol ``currents[k]`` on ``[starts[k], ends[k]]``, restarting at each boundary.

    With ``has_event``, each crossing of ``event`` (see :func:`integrate_segment`) is
    recorded, ``reset(t, y, p)`` maps the state in place and the solve restarts there,
    as at a boundary. Returns (status, y_out (n_states, n_t) with NaN where not reached,
    stats, the event times).
    """
    y_out = np.full((y0.size, t_out.size), np.nan)
    stats = np.zeros(len(STAT_NAMES), dtype=np.int64)
    events = np.empty(16)
    n_events = 0
    y = y0.copy()
    next_out = 0
    for k in range(starts.size):
        t_start = starts[k]
        while True:
            status, next_out, y, t_start = integrate_segment(
                rhs, jacobian, has_jacobian, event, has_event, p, currents[k], t_start,
                ends[k], y, t_out, y_out, next_out, rtol, atol, max_steps, max_step, stats,
            )  # fmt: skip
            if status != EVENT:
                break
            if n_events == events.size:
                events = np.concatenate((events, np.empty(events.size)))
            events[n_events] = t_start
            n_events += 1
            reset(t_start, y, p)
        if status != SUCCESS:
            return status, y_out, stats, events[:n_events].copy()
    return SUCCESS, y_out, stats, events[:n_events].copy()
