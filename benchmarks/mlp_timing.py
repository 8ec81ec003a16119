"""Timing the MLP surrogates' baselines and networks on the CPU (benchmarks/mlp_surrogates.py).

- :func:`euler_kernel`: explicit Euler of ``fhn_werneck`` vectorised over
  blocks of samples and compiled (numba), the paper's baseline, the package's
  kernel that the report's Pareto figure times too;
- :func:`bdf_seconds`: the project's BDF, estimated from a sample;
- :func:`time_network`: a network's time, eager PyTorch and ONNX Runtime.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np


def euler_kernel() -> Any:
    """The paper's baseline as the report's Pareto figure times it: explicit Euler of
    fhn_werneck with its default parameters (:mod:`ionops.models.families.mlp_baseline`),
    called as ``run(u0, w0, k, dt, steps, every, out)``."""
    from ionops.datasets.ionic import get_ionic_model
    from ionops.models.families.mlp_baseline import fhn_werneck_kernel

    kernel = fhn_werneck_kernel()
    p = get_ionic_model("fhn_werneck").parameter_vector()

    def run(u0, w0, k, dt, steps, every, out):  # type: ignore[no-untyped-def]
        kernel(u0, w0, k, p, dt, steps, every, out)

    return run


def best_of(function: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return min(times)


BDF_SAMPLE = 300  # trajectories the BDF's time is measured on


def bdf_seconds(u0: np.ndarray, w0: np.ndarray, k: np.ndarray, threads: int) -> float:
    """The project's BDF (rtol 1e-6) on all the trajectories of 50 ms, from BDF_SAMPLE of them
    on one core, split over ``threads`` cores."""
    from ionops.datasets.ionic import get_ionic_model
    from ionops.datasets.solver import SolverSettings, solve

    model = get_ionic_model("fhn_werneck")
    grid, settings = np.linspace(0.0, 50.0, 51), SolverSettings(rtol=1e-6, atol=1e-8)
    began = time.perf_counter()
    for i in range(BDF_SAMPLE):
        solve(model, grid, float(k[i]), np.inf, settings, y0=np.array([u0[i], w0[i]]))
    return (time.perf_counter() - began) * len(u0) / BDF_SAMPLE / threads


def time_network(net: Any, rows: Any, threads: int) -> tuple[float, float]:
    import onnxruntime
    import torch

    chunk = 16_384

    def eager() -> None:
        with torch.inference_mode():
            for begin in range(0, len(rows), chunk):
                net(rows[begin : begin + chunk])

    buffer = io.BytesIO()
    torch.onnx.export(net, (rows[:chunk],), buffer, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}}, dynamo=False)  # fmt: skip
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(buffer.getvalue(), options,
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    data = rows.numpy()

    def onnx() -> None:
        for begin in range(0, len(data), chunk):
            session.run(None, {"x": data[begin : begin + chunk]})

    eager()
    onnx()
    return best_of(eager, 3), best_of(onnx, 3)
