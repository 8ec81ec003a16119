"""Paced steady states: the state after many identical beats, computed once and cached.

A beat is a stimulus of ``amplitude`` (the model's current unit, positive
depolarising) for ``duration`` ms at the start of every ``period`` ms. All
beats are solved in one compiled call (one segment per stimulus phase), at
tolerances a hundred times tighter than the model's dataset tolerances. The
result is cached under ``$IONOPS_CACHE_DIR`` (default ``~/.cache/ionops``),
keyed by everything that determines it.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ionops.caches import cache_dir
from ionops.errors import IonopsError

if TYPE_CHECKING:
    from ionops.datasets.ionic.base import IonicModel

CACHE_VERSION = "1"


def paced_steady_state(
    model: IonicModel,
    p: NDArray[np.float64],
    y0: NDArray[np.float64],
    n_beats: int = 1000,
    period: float = 1000.0,
    amplitude: float = 80.0,
    duration: float = 0.5,
) -> NDArray[np.float64]:
    """The state after ``n_beats`` paced beats from ``y0`` (cached on disk)."""
    from ionops.datasets import _bdf
    from ionops.datasets.solver import SolverSettings, integrate_protocol

    rtol, atol = model.tolerances
    rtol = rtol / 100.0
    atol_vector = np.broadcast_to(np.asarray(atol, dtype=np.float64), y0.shape) / 100.0
    key = hashlib.sha256()
    for part in (model.name, CACHE_VERSION, repr((n_beats, period, amplitude, duration, rtol))):
        key.update(part.encode())
    for array in (p, y0, atol_vector):
        key.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    path = cache_dir() / f"{model.name}-paced-{key.hexdigest()[:20]}.npy"
    if path.exists():
        return np.load(path)

    starts = np.repeat(np.arange(n_beats) * period, 2) + np.tile([0.0, duration], n_beats)
    ends = np.append(starts[1:], n_beats * period)
    currents = np.tile([amplitude, 0.0], n_beats)
    settings = SolverSettings(rtol=rtol, atol=tuple(atol_vector), max_steps=10_000_000)
    status, y_out, _, _ = integrate_protocol(
        model,
        p,
        y0,
        np.stack([starts, ends, currents], axis=1),
        np.array([n_beats * period]),
        settings,
    )
    if status != _bdf.SUCCESS or not np.isfinite(y_out).all():
        raise IonopsError(
            f"pacing {model.name} to steady state failed: {_bdf.STATUS_TEXT.get(int(status))}"
        )
    state = y_out[:, 0].copy()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        with temporary.open("wb") as handle:
            np.save(handle, state)
        temporary.replace(path)
    except OSError:
        pass  # an unwritable cache only costs recomputation next time
    return state
