"""Solve one stimulus protocol of an ionic model onto a time grid, robustly.

The protocol is any of :mod:`ionops.datasets.stimuli` (:func:`solve_stimulus`);
:func:`solve` takes the operator datasets' pulse, I_app(t) = amplitude for
t <= t_stim and 0 afterwards. The solve is split at every discontinuity of
I_app (the right-hand side is discontinuous there) and each piece runs in the
compiled BDF integrator of :mod:`ionops.datasets._bdf`.
A failed attempt is retried with tighter settings; if every attempt fails,
:class:`SolveFailed` says which sample, with what stimulus, and what was tried.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numba import njit
from numba.core.types.function_type import WrapperAddressProtocol
from numba.experimental.function_type import _get_wrapper_address
from numpy.typing import NDArray

from ionops.datasets import _bdf, _l1
from ionops.datasets.ionic.base import IonicModel
from ionops.datasets.stimuli import Pulse, Stimulus
from ionops.errors import IonopsError, UserError

STAT_NAMES = _bdf.STAT_NAMES
STATUS_TEXT = {
    **_bdf.STATUS_TEXT,
    _l1.NEWTON_FAILED: "Newton's iteration did not converge within a step of the L1 scheme",
}


class SolveFailed(IonopsError):
    """No attempt produced a finite trajectory; the message lists each attempt."""


@dataclass(frozen=True)
class SolverSettings:
    """Tolerances of the BDF integrator.

    ``atol`` is one absolute tolerance or one per state (in the states' units);
    the error test is RMS(err / (atol + rtol |y|)) <= 1. ``max_steps`` bounds
    the steps of one trajectory; ``max_step`` (ms) bounds one step.
    """

    rtol: float = 1e-6
    atol: float | tuple[float, ...] = 1e-8
    max_steps: int = 200_000
    max_step: float = math.inf

    def atol_vector(self, n_states: int) -> NDArray[np.float64]:
        if isinstance(self.atol, int | float):
            return np.full(n_states, float(self.atol))
        if len(self.atol) != n_states:
            raise ValueError(f"atol has {len(self.atol)} entries for {n_states} states")
        return np.array(self.atol, dtype=np.float64)

    def tightened(self) -> SolverSettings:
        """The retry after a failure: ten times tighter, more steps, bounded steps."""
        atol = (
            self.atol / 10
            if isinstance(self.atol, int | float)
            else tuple(a / 10 for a in self.atol)
        )
        return replace(self, rtol=self.rtol / 10, atol=atol, max_steps=self.max_steps * 4)

    def describe(self) -> str:
        atol = f"{self.atol:g}" if isinstance(self.atol, int | float) else "per-state"
        return (
            f"rtol={self.rtol:g}, atol={atol}, max_steps={self.max_steps}, "
            f"max_step={self.max_step:g}"
        )


@dataclass(frozen=True)
class Solution:
    """A trajectory on the grid: ``states`` is (n_states, n_t); ``stats`` counts solver work;
    ``events`` holds the times (ms) of the model's events (spikes, each followed by its
    reset), located to the solver's tolerance; empty for a model without events."""

    states: NDArray[np.float64]
    stats: dict[str, int]
    settings: SolverSettings
    attempts: int
    events: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))


@njit(_bdf.JACOBIAN_SIGNATURE, cache=True)
def _no_jacobian(t, y, p, i_app, jac):
    """Placeholder for models without a closed-form Jacobian (never called)."""


@njit(_bdf.EVENT_SIGNATURE, cache=True)
def _no_event(t, y, p):
    """Placeholder for models without events (never called)."""
    return -1.0


@njit(_bdf.RESET_SIGNATURE, cache=True)
def _no_reset(t, y, p):
    """Placeholder for models without events (never called)."""


class _CompiledFunction(WrapperAddressProtocol):
    """A model's compiled function handed to the solver by its address."""

    def __init__(self, dispatcher: Any, signature: Any) -> None:
        self._dispatcher = dispatcher  # keeps the machine code alive
        self._signature = signature
        self._address = _get_wrapper_address(dispatcher, signature)

    def __wrapper_address__(self) -> int:
        return int(self._address)

    def signature(self) -> Any:
        return self._signature


@functools.cache
def compiled(dispatcher: Any, signature: Any) -> _CompiledFunction:
    """A model's kernel compiled for ``signature``, once per process."""
    return _CompiledFunction(dispatcher, signature)


def compiled_rhs(dispatcher: Any) -> _CompiledFunction:
    return compiled(dispatcher, _bdf.RHS_SIGNATURE)


@functools.cache
def _integrate_entry_point() -> Any:
    """The compiled integrator without numba's per-call argument typing.

    Typing a first-class function argument costs numba about 0.1 ms per call
    (3 % of an ORd trajectory); the arguments here always have the one
    signature :func:`_bdf.integrate` was compiled for.
    """
    (signature,) = _bdf.integrate.signatures
    return _bdf.integrate.overloads[signature].entry_point  # type: ignore[attr-defined]


def stimulus_segments(
    amplitude: float, t_stim: float, t_end: float
) -> list[tuple[float, float, float]]:
    """(start, end, current) pieces of I_app(t) = amplitude for t <= t_stim, else 0."""
    return Pulse(amplitude, t_stim).pieces(t_end)


def integrate_protocol(
    model: IonicModel,
    p: NDArray[np.float64],
    y0: NDArray[np.float64],
    segments: NDArray[np.float64],
    t_grid: NDArray[np.float64],
    settings: SolverSettings,
) -> tuple[int, NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """One compiled call over ``segments`` (k, 3) rows of (start, end, current).

    Returns (status, states (n_states, n_t) with NaN where not reached, stats, the times
    of the model's events, each followed by its reset). A model with a Caputo derivative
    is solved by the L1 scheme on a uniform step (:func:`caputo_step`).
    """
    if model.caputo:
        return _integrate_caputo(model, p, y0, segments, t_grid, settings)
    has_jacobian = model.jacobian is not None
    segments = np.asarray(segments, dtype=np.float64)
    jacobian = model.jacobian if has_jacobian else _no_jacobian
    event, reset = (model.event, model.reset) if model.has_events else (_no_event, _no_reset)
    status, y_out, stats, events = _integrate_entry_point()(
        compiled_rhs(model.rhs), compiled(jacobian, _bdf.JACOBIAN_SIGNATURE), has_jacobian,
        compiled(event, _bdf.EVENT_SIGNATURE), compiled(reset, _bdf.RESET_SIGNATURE),
        model.has_events,
        np.ascontiguousarray(p, dtype=np.float64), np.ascontiguousarray(y0, dtype=np.float64),
        np.ascontiguousarray(segments[:, 0]), np.ascontiguousarray(segments[:, 1]),
        np.ascontiguousarray(segments[:, 2]), np.ascontiguousarray(t_grid, dtype=np.float64),
        float(settings.rtol), settings.atol_vector(model.n_states), int(settings.max_steps),
        float(settings.max_step),
    )  # fmt: skip
    return int(status), y_out, stats, events


def caputo_step(t_grid: NDArray[np.float64], max_step: float) -> tuple[float, NDArray[np.int64]]:
    """The L1 scheme's uniform step, at most ``max_step`` and a whole fraction of the grid's
    first spacing, and the step number of every grid time; a grid off that lattice is refused."""
    if t_grid.size < 2:
        h = min(max_step, 1.0) if math.isfinite(max_step) else 1.0
        return h, np.zeros(t_grid.size, dtype=np.int64)
    spacing = float(t_grid[1] - t_grid[0])
    h = spacing / math.ceil(spacing / max_step) if math.isfinite(max_step) else spacing
    steps = np.rint(t_grid / h)
    if t_grid[0] != 0.0 or np.any(np.abs(steps * h - t_grid) > 1e-9 * max(1.0, t_grid[-1])):
        raise UserError(
            f"a model with a Caputo derivative is solved on a uniform step (here {h:g} ms) "
            f"and needs every output time on it, from t = 0: this grid ({t_grid[0]:g} to "
            f"{t_grid[-1]:g} ms, {t_grid.size} points) is not"
        )
    return h, steps.astype(np.int64)


def _integrate_caputo(
    model: IonicModel,
    p: NDArray[np.float64],
    y0: NDArray[np.float64],
    segments: NDArray[np.float64],
    t_grid: NDArray[np.float64],
    settings: SolverSettings,
) -> tuple[int, NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    if model.has_events:
        raise UserError(f"{model.name} has both resets and a Caputo derivative: the L1 scheme "
                        "does not locate events")  # fmt: skip
    h, out_steps = caputo_step(t_grid, settings.max_step)
    jacobian = model.jacobian
    p = np.ascontiguousarray(p, dtype=np.float64)
    status, y_out, stats = _l1.integrate(
        compiled_rhs(model.rhs), compiled(jacobian or _no_jacobian, _bdf.JACOBIAN_SIGNATURE),
        jacobian is not None, p, np.ascontiguousarray(y0, dtype=np.float64),
        model.derivative_orders(p), np.ascontiguousarray(segments[:, 0]),
        np.ascontiguousarray(segments[:, 1]), np.ascontiguousarray(segments[:, 2]), h,
        out_steps, float(settings.rtol), settings.atol_vector(model.n_states),
    )  # fmt: skip
    return int(status), y_out, stats, np.empty(0)


def _attempts(
    settings: SolverSettings,
    retries: Sequence[SolverSettings] | None,
    model: IonicModel,
    t_grid: NDArray[np.float64],
) -> Iterator[SolverSettings]:
    """The settings to try in turn; the default retry is made only when it is needed (for
    the L1 scheme of a Caputo model it also halves the step)."""
    yield settings
    if retries is not None:
        yield from retries
    elif model.caputo:
        h, _ = caputo_step(t_grid, settings.max_step)
        yield replace(settings.tightened(), max_step=h / 2)
    else:
        yield settings.tightened()


def solve(
    model: IonicModel,
    t_grid: NDArray[np.float64],
    amplitude: float,
    t_stim: float,
    settings: SolverSettings,
    p: NDArray[np.float64] | None = None,
    y0: NDArray[np.float64] | None = None,
    retries: Sequence[SolverSettings] | None = None,
    label: str = "trajectory",
) -> Solution:
    """Solve the pulse ``amplitude`` for t <= ``t_stim`` on ``t_grid``; see
    :func:`solve_stimulus`."""
    return solve_stimulus(model, t_grid, Pulse(amplitude, t_stim), settings, p, y0, retries,
                          label)  # fmt: skip


def solve_stimulus(
    model: IonicModel,
    t_grid: NDArray[np.float64],
    stimulus: Stimulus,
    settings: SolverSettings,
    p: NDArray[np.float64] | None = None,
    y0: NDArray[np.float64] | None = None,
    retries: Sequence[SolverSettings] | None = None,
    label: str = "trajectory",
) -> Solution:
    """Solve ``stimulus`` on ``t_grid`` (ms, ascending from 0), retrying with tighter settings.

    Returns states as (n_states, n_t). Raises :class:`SolveFailed` naming
    ``label``, the stimulus and every attempt if none gives a finite trajectory.
    """
    p = model.parameter_vector() if p is None else p
    y0 = model.initial_state(p) if y0 is None else y0
    t_grid = np.ascontiguousarray(t_grid, dtype=np.float64)
    segments = np.array(stimulus.pieces(float(t_grid[-1])))
    tried = []
    for number, attempt in enumerate(_attempts(settings, retries, model, t_grid), start=1):
        status, y_out, stats, events = integrate_protocol(model, p, y0, segments, t_grid,
                                                          attempt)  # fmt: skip
        if status == _bdf.SUCCESS and np.isfinite(y_out).all():
            counters = dict(zip(STAT_NAMES, (int(s) for s in stats), strict=True))
            return Solution(y_out, counters, attempt, number, events)
        reason = STATUS_TEXT.get(status, "non-finite values in the trajectory")
        if status == _bdf.SUCCESS:
            reason = "non-finite values in the trajectory"
        tried.append(f"  attempt {number} ({attempt.describe()}): {reason}")
    if isinstance(stimulus, Pulse):
        what = (f"stimulus i = {stimulus.amplitude:g} {model.current_unit} for t <= "
                f"{stimulus.duration:g} ms")  # fmt: skip
    else:
        what = f"stimulus {stimulus.describe()}, {model.current_unit} and ms"
    defaults = model.parameter_vector()
    changed = [f"{name} = {value:g} (default {default:g})" for name, value, default
               in zip(model.parameters, p, defaults, strict=True) if value != default]  # fmt: skip
    advice = "Try a smaller stimulus range for this model, or tighter solver tolerances."
    if changed:
        advice = (f"The model's parameters differ from its defaults: {', '.join(changed)}; "
                  "check them (data.parameters, --param), then the stimulus range and the "
                  "solver tolerances.")  # fmt: skip
    raise SolveFailed(f"{label} of {model.name} failed ({what}):\n" + "\n".join(tried)
                      + "\n" + advice)  # fmt: skip
