"""Explicit Euler for many initial-value problems at once: the MLP surrogates' data solver.

Each sample i starts from ``y0[i]`` under its own constant stimulus
``i_app[i]`` and is advanced by fixed steps ``dt``; its state is recorded
after each step count in ``save_steps[i]`` (ascending). One compiled kernel
serves every layout: points (one recorded step), transitions (two) and
trajectories (a regular grid of steps), and every model: the right-hand side
comes in by its address with the one signature every model's is compiled
with, so the kernel is compiled once and numba's cache holds one entry for it
(a compiled function passed as itself is typed by its identity, which
changes in every process: each one compiled the kernel again, about 7 s, and
added a file to the cache).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numpy.typing import NDArray

from ionops.datasets import _bdf
from ionops.datasets.ionic.base import IonicModel
from ionops.datasets.solver import compiled_rhs
from ionops.errors import UserError


@njit(
    types.void(_bdf.RHS_TYPE, types.float64[::1], types.float64[:, ::1], types.float64[::1],
               types.float64, types.int64[:, ::1], types.float64[:, :, ::1]),
    cache=True,
)  # fmt: skip
def _advance(rhs, p, y0, i_app, dt, save_steps, out):  # type: ignore[no-untyped-def]
    n, n_states = y0.shape
    m = save_steps.shape[1]
    y = np.empty(n_states)
    dydt = np.empty(n_states)
    for i in range(n):
        y[:] = y0[i]
        step = 0
        for j in range(m):
            target = save_steps[i, j]
            while step < target:
                rhs(step * dt, y, p, i_app[i], dydt)
                for s in range(n_states):
                    y[s] += dt * dydt[s]
                step += 1
            out[i, j, :] = y


def euler(
    model: IonicModel,
    p: NDArray[np.float64],
    y0: NDArray[np.float64],
    i_app: NDArray[np.float64],
    dt: float,
    save_steps: NDArray[np.int64],
) -> NDArray[np.float64]:
    """States (n, m, n_states) after ``save_steps`` (n, m) Euler steps of ``dt`` ms each."""
    if model.has_events:
        raise UserError(f"{model.name} has resets, which fixed-step Euler does not apply: "
                        'solve it with the BDF (solver = "bdf")')  # fmt: skip
    if model.caputo:
        raise UserError(f"{model.name} has a Caputo derivative ({', '.join(model.caputo)}), "
                        'which Euler steps do not discretise: solve it with solver = "bdf" '
                        "(the L1 scheme for such a model)")  # fmt: skip
    y0 = np.ascontiguousarray(y0, dtype=np.float64)
    steps = np.ascontiguousarray(save_steps, dtype=np.int64)
    if steps.ndim != 2 or steps.shape[0] != y0.shape[0]:
        raise ValueError(f"save_steps has shape {steps.shape} for {y0.shape[0]} samples")
    if np.any(np.diff(steps, axis=1) < 0) or np.any(steps < 0):
        raise ValueError("save_steps must be non-negative and ascending along each row")
    out = np.empty((y0.shape[0], steps.shape[1], y0.shape[1]))
    _advance(compiled_rhs(model.rhs), np.ascontiguousarray(p, dtype=np.float64), y0,
             np.ascontiguousarray(i_app, dtype=np.float64), float(dt), steps, out)  # fmt: skip
    return out
