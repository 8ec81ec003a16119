"""The MLP paper's baseline: explicit Euler at Δt = 0.1 ms, as fast as it runs here.

One kernel serves the benchmark (``benchmarks/mlp_surrogates.py``) and the
report's Pareto figure, so the figure's baseline is the benchmark's: the same
code, step and cores. For ``fhn_werneck`` (the paper's model) it is
:func:`fhn_werneck_kernel`, the right-hand side inlined and blocks of samples
advanced together (SIMD within a block, a block per core). Other ionic models
take the generic compiled Euler (:func:`ionops.datasets.euler.euler`, one
core, the right-hand side called through its address), and the figure says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

PER = 100_000  # trajectories the paper times
BASELINE_DT = 0.1  # ms: the paper's Euler baseline


def fhn_werneck_kernel() -> Any:
    """``run(u0, w0, k, p, dt, steps, every, out)``: explicit Euler of fhn_werneck with
    parameters ``p`` (c, a, gain, bias, b, d) from (u0, w0) under stimulus k, ``steps`` steps
    of ``dt``, the state kept every ``every`` steps in ``out`` (n, 2, steps // every + 1)."""
    from numba import njit, prange

    @njit(parallel=True, fastmath=True, cache=True)
    def run(u0, w0, k, p, dt, steps, every, out):  # type: ignore[no-untyped-def]
        c, a, gain, bias, b, d = p[0], p[1], p[2], p[3], p[4], p[5]
        n, block = u0.size, 1024
        for chunk in prange((n + block - 1) // block):
            lo, hi = chunk * block, min(n, (chunk + 1) * block)
            u, w = u0[lo:hi].copy(), w0[lo:hi].copy()
            drive = gain * k[lo:hi] + bias
            out[lo:hi, 0, 0], out[lo:hi, 1, 0] = u, w
            for step in range(1, steps + 1):
                for j in range(hi - lo):
                    uj, wj = u[j], w[j]
                    u[j] = uj + dt * c * (uj * (uj - a) * (1.0 - uj) - wj + drive[j])
                    w[j] = wj + dt * (b * uj - d * wj)
                if step % every == 0:
                    out[lo:hi, 0, step // every], out[lo:hi, 1, step // every] = u, w

    return run


@dataclass(frozen=True)
class Baseline:
    """Euler's time for 100,000 trajectories, its MAE against the data, and what ran."""

    seconds: float
    error: float
    what: str


def euler_baseline(data: Any, split: str = "validation", repeats: int = 3) -> Baseline:
    """Euler at Δt = 0.1 ms on ``split``'s trajectories: its MAE against them, and its time
    for 100,000 of them (the split's inputs repeated), best of ``repeats``."""
    import numba

    from ionops.datasets.euler import euler
    from ionops.datasets.ionic import get_ionic_model

    model = get_ionic_model(str(data.attributes["model"]))
    p = model.parameter_vector(data.attributes["parameters"])
    part = data.splits[split]
    inputs = part.inputs.double().numpy()
    every = round(float(data.attributes["eval_dt_ms"]) / BASELINE_DT)
    n_t, n_states = part.time.size, model.n_states
    many = np.resize(inputs, (PER, inputs.shape[1]))
    if model.name == "fhn_werneck":
        kernel = fhn_werneck_kernel()
        steps = (n_t - 1) * every

        def run(rows: np.ndarray) -> np.ndarray:
            out = np.empty((len(rows), 2, n_t))
            kernel(np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1]),
                   np.ascontiguousarray(rows[:, 2]), p, BASELINE_DT, steps, every, out)  # fmt: skip
            return out

        threads = numba.get_num_threads()
        what = (f"Euler Δt = {BASELINE_DT:g} ms, the benchmark's compiled kernel, {threads} "
                f"core{'s' if threads > 1 else ''}")  # fmt: skip
    else:
        grid = np.tile(np.arange(n_t) * every, (1, 1))

        def run(rows: np.ndarray) -> np.ndarray:
            steps = np.repeat(grid, len(rows), axis=0)
            states = euler(model, p, rows[:, :n_states], rows[:, n_states], BASELINE_DT, steps)
            return states.transpose(0, 2, 1)

        what = (f"Euler Δt = {BASELINE_DT:g} ms, generic compiled kernel, 1 core (the "
                "benchmark's fast kernel is fhn_werneck's)")  # fmt: skip
    states = run(inputs)  # compiles, and gives the error
    error = float(np.abs(states - part.states.double().numpy()).mean())
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        run(many)
        seconds.append(time.perf_counter() - began)
    return Baseline(min(seconds), error, what)
