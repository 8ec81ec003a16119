"""Surrogate against solver: trajectories per second on the same inputs and cores, one run.

For FHN, HH and ORd, the paper's constrained and unconstrained FNOs (random
weights: speed does not depend on them) predict stimuli drawn from the paper's
training subsets through the path ``ionops predict`` takes (stimulus on the
grid, normalisation, network, decoding; :class:`ionops.serving.Surrogate`),
and the project's BDF solves the same stimuli with the dataset's tolerances
from the dataset's initial state. Each on the dataset grid and on a 1 ms grid
(the FNO is resolution-independent), the surrogate at batch 1 and 256, float32
and bfloat16 (on a GPU, and on a CPU with AMX: there the network is held in
bfloat16), with 1 thread and all; the solver on 1 core and on all (one
process per core). Prints trajectories per second and the surrogate/solver
ratio per row, each precision's deviation from the same network in float64
(relative L2 over the normalised outputs), and the break-even: where the
solver is faster, it says so.

Targets (issue 12): ORd on CPU, the constrained FNO at least 2x the solver's
throughput on the 1 ms grid with batching; on a GPU at least 100x.

    python benchmarks/surrogate_speed.py [--models fhn,hh,ord] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

CONFIGS = {  # the paper's best configurations (DESIGN.md): constrained, unconstrained
    "fhn": {"constrained": (64, 5, 12, "gelu", 5, "mlp"),
            "unconstrained": (224, 4, 20, "leaky_relu", 15, "mlp")},
    "hh": {"constrained": (96, 5, 5, "gelu", 7, "mlp"),
           "unconstrained": (256, 4, 24, "leaky_relu", 15, "mlp")},
    "ord": {"constrained": (32, 5, 48, "gelu", 15, "classic"),
            "unconstrained": (192, 5, 32, "gelu", 14, "mlp")},
}  # fmt: skip
DATASET_GRID = {"fhn": (1260, 100.0), "hh": (1260, 100.0), "ord": (10080, 1000.0)}
SOLVED = {"fhn": 64, "hh": 64, "ord": 32}  # trajectories the solver times per grid


def stimuli(model: str, n: int, seed: int = 0) -> np.ndarray:
    """(n, 2) amplitude, t_stim drawn from the paper's training subsets."""
    from ionops.datasets.protocols import draw_samples, paper_counts, scale_counts

    tables = paper_counts(model)
    total = sum(c for _, c in tables["train"])
    scaled = scale_counts(tables, min(1.0, 2 * n / total))
    names = [s.name for s, _ in tables["train"]]
    names += [s.name for s, _ in tables["test"] if s.name not in names]
    drawn = draw_samples(scaled, names, seed)["train"]
    order = np.random.default_rng(seed).permutation(len(drawn))[:n]
    return np.stack([drawn.amplitude[order], drawn.t_stim[order]], axis=1)


def surrogate(model: str, config: tuple[Any, ...], time_grid: np.ndarray) -> Any:
    """An untrained FNO of the paper's configuration as a servable surrogate."""
    import torch

    from ionops.datasets.ionic import get_ionic_model
    from ionops.datasets.loading import Normalizer
    from ionops.datasets.store import attributes_json
    from ionops.models.fno_arch import FNOArchitecture
    from ionops.serving.surrogate import Surrogate

    ionic = get_ionic_model(model)
    d_v, layers, k_max, activation, n_pad, layer = config
    arch = FNOArchitecture(d_v, layers, k_max, activation, n_pad, layer, ionic.n_states)
    torch.manual_seed(0)
    network = __import__("ionops.models.fno", fromlist=["FNO"]).FNO(arch)
    n_t, s = time_grid.size, ionic.n_states
    normalizers = {
        "input": Normalizer(torch.zeros(1, n_t), torch.ones(1, n_t)).state_dict(),
        "target": Normalizer(torch.randn(s, n_t), torch.rand(s, n_t) + 0.5).state_dict(),
    }
    attributes = {"model": model, "state_names": list(ionic.state_names),
                  "state_units": list(ionic.state_units)}  # fmt: skip
    state = {"family": "fno", "arguments": arch.as_dict(), "model": network.state_dict(),
             "surrogate": {"kind": "operator", "attributes": attributes_json(attributes),
                           "time": torch.tensor(time_grid), "ranges": {},
                           "normalizers": normalizers}}  # fmt: skip
    return Surrogate(state, f"{model} benchmark")


_SOLVER: dict[str, Any] = {}


def _prepare(model_name: str) -> None:
    """A worker's model, parameters, initial state and settings, compiled by one solve."""
    from ionops.datasets.ionic import get_ionic_model
    from ionops.datasets.solver import SolverSettings, solve

    model = get_ionic_model(model_name)
    p = model.parameter_vector()
    rtol, atol = model.tolerances
    _SOLVER.update(model=model, p=p, y0=model.initial_state(p), solve=solve,
                   settings=SolverSettings(rtol=rtol, atol=atol))  # fmt: skip
    _solve_one((np.linspace(0.0, 10.0, 11), 1.0, 1.0))


def _solve_one(job: tuple[np.ndarray, float, float]) -> None:
    """One stimulus on ``grid`` as the dataset generation solves it."""
    grid, amplitude, t_stim = job
    s = _SOLVER
    s["solve"](s["model"], grid, amplitude, t_stim, s["settings"], p=s["p"], y0=s["y0"])


def solver_rate(model: str, grid: np.ndarray, rows: np.ndarray, cores: int,
                seconds: float) -> float:  # fmt: skip
    """Trajectories per second of the BDF over ``seconds`` at least: in this process on one
    core, else one process per core taking the next stimulus as it finishes one (warmed up
    before the clock starts)."""
    jobs = [(grid, float(a), float(t)) for a, t in rows]
    if cores == 1:
        _prepare(model)
        solved, began = 0, time.perf_counter()
        while solved == 0 or time.perf_counter() - began < seconds:
            for job in jobs:
                _solve_one(job)
            solved += len(jobs)
        return solved / (time.perf_counter() - began)
    with ProcessPoolExecutor(cores, initializer=_prepare, initargs=(model,)) as pool:
        list(pool.map(_solve_one, jobs[:cores], chunksize=1))  # every worker started
        solved, began = 0, time.perf_counter()
        while solved == 0 or time.perf_counter() - began < seconds:
            list(pool.map(_solve_one, jobs, chunksize=max(1, len(jobs) // (4 * cores))))
            solved += len(jobs)
        return solved / (time.perf_counter() - began)


def surrogate_rate(net: Any, rows: np.ndarray, batch: int, precision: str, device: str,
                   seconds: float) -> float:  # fmt: skip
    """Trajectories per second of ``net.predict`` handed ``batch`` stimuli at once (the
    surrogate splits them into calls of its own size): the best of calls over ``seconds``."""
    chunk = np.resize(rows, (batch, 2))
    net.predict(chunk[:8], device=device, precision=precision)  # warm-up
    best, spent = float("inf"), 0.0
    while spent < seconds or best == float("inf"):
        began = time.perf_counter()
        net.predict(chunk, device=device, precision=precision)
        took = time.perf_counter() - began
        best, spent = min(best, took), spent + took
    return batch / best


def deviation(net: Any, rows: np.ndarray, precision: str, device: str) -> float:
    """Relative L2 of ``precision``'s prediction of ``rows`` against float64's, normalised
    units (the training loss's), over all trajectories and states."""
    import torch

    from ionops.datasets.loading import Normalizer

    normalizer = Normalizer.from_state_dict(net.described["normalizers"]["target"])
    low, high = (torch.from_numpy(net.predict(rows, device=device, precision=p).states).double()
                 for p in (precision, "float64"))  # fmt: skip
    low, high = normalizer.encode_(low), normalizer.encode_(high)
    return float(torch.linalg.vector_norm(low - high) / torch.linalg.vector_norm(high))


def measure_grid(model: str, grid_name: str, grid: np.ndarray, args: Any,
                 rows: list[tuple[Any, ...]], device: str) -> list[dict[str, Any]]:  # fmt: skip
    """One model on one grid: the solver on 1 core and all, then every surrogate row
    (configuration, batch, precision, threads), in ``args.rounds`` interleaved rounds."""
    import torch

    inputs = stimuli(model, SOLVED[model])
    nets = {name: surrogate(model, CONFIGS[model][name], grid) for name in {r[0] for r in rows}}
    solver: dict[int, list[float]] = {t: [] for t in sorted({r[3] for r in rows})}
    rates: dict[tuple[Any, ...], list[float]] = {row: [] for row in rows}
    ratios: dict[tuple[Any, ...], list[float]] = {row: [] for row in rows}
    for _ in range(args.rounds):  # the machine drifts: each row right after the solver
        for row in rows:
            config_name, batch, precision, threads = row
            solved = solver_rate(model, grid, inputs, threads, args.seconds)
            torch.set_num_threads(threads)
            rate = surrogate_rate(nets[config_name], inputs, batch, precision, device,
                                  args.seconds)  # fmt: skip
            solver[threads].append(solved)
            rates[row].append(rate)
            ratios[row].append(rate / solved)
    deviations = {(c, p): deviation(nets[c], inputs, p, device)
                  for c, _, p, _ in rows}  # fmt: skip
    best = ", ".join(f"{max(r):,.1f} traj/s on {c} core(s)" for c, r in solver.items())
    print(f"\n{model}, {grid_name} grid ({grid.size} points): BDF {best}")
    print("| configuration | batch | precision | threads | traj/s | x solver (same cores) "
          "| deviation from float64 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    out = []
    for row in rows:
        config_name, batch, precision, threads = row
        rate = max(rates[row])
        ratio = float(np.median(ratios[row]))
        off = deviations[config_name, precision]
        print(f"| {config_name} | {batch} | {precision} | {threads} | {rate:,.1f} | "
              f"{ratio:.2f} | {off:.1e} |", flush=True)  # fmt: skip
        out.append({"model": model, "grid": grid_name, "n_t": grid.size, "config": config_name,
                    "batch": batch, "precision": precision, "threads": threads,
                    "surrogate": rate, "solver": max(solver[threads]), "ratio": ratio,
                    "deviation": off})  # fmt: skip
    return out


def summarise(rows_out: list[dict[str, Any]], batch: int, cuda: bool) -> None:
    """The break-even of every model, grid and configuration, and the issue's target; on a
    GPU also the bandwidth to the host that the target's throughput takes."""
    from ionops.datasets.ionic import get_ionic_model

    print("\nbreak-even (best surrogate row against the solver on the same cores):")
    for key in dict.fromkeys((r["model"], r["grid"], r["config"]) for r in rows_out):
        best = max((r for r in rows_out if (r["model"], r["grid"], r["config"]) == key),
                   key=lambda r: r["ratio"])  # fmt: skip
        verdict = "surrogate faster" if best["ratio"] > 1 else "SOLVER faster"
        how = f"batch {best['batch']}, {best['precision']}, {best['threads']} thread(s)"
        print(f"  {key[0]} {key[2]}, {key[1]} grid: {best['ratio']:.2f}x ({how}): {verdict}")
    target = [r for r in rows_out if (r["model"], r["grid"], r["config"], r["batch"])
              == ("ord", "1 ms", "constrained", batch)]  # fmt: skip
    if target:  # on one core and on all, each against the solver on as many
        need = 100 if cuda else 2
        where = "cuda" if cuda else "cpu"
        print(f"\ntarget: ORd constrained FNO on the 1 ms grid, batch {batch}, {where} "
              f"(need >= {need}x the solver on each core count):")  # fmt: skip
        for precision in dict.fromkeys(r["precision"] for r in target):
            ratios = {r["threads"]: r["ratio"] for r in target if r["precision"] == precision}
            verdict = "MET" if min(ratios.values()) >= need else "NOT MET"
            shown = ", ".join(f"{ratio:.2f}x on {c} core(s)" for c, ratio in ratios.items())
            off = next(r["deviation"] for r in target if r["precision"] == precision)
            print(f"  {precision}: {shown} (deviation from float64 {off:.1e}): {verdict}")
        if cuda:  # the float32 states must reach the host: a floor under the time per trajectory
            size = 4 * target[0]["n_t"] * get_ionic_model("ord").n_states  # bytes per trajectory
            for cores in sorted({r["threads"] for r in target}):
                solver = max(r["solver"] for r in target if r["threads"] == cores)
                print(f"  {need}x the solver on {cores} core(s) returns {need * solver:,.0f} "
                      f"traj/s of {size / 1e3:.0f} kB: {need * solver * size / 1e9:.1f} GB/s "
                      "from the GPU to the host")  # fmt: skip


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="fhn,hh,ord")
    parser.add_argument("--configs", default="constrained,unconstrained")
    parser.add_argument("--grids", default="1 ms,dataset")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per surrogate row")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of solver and surrogate rows, interleaved (a noisy machine)",
    )
    parser.add_argument("--batches", default="1,256")
    parser.add_argument("--precisions", help="default: float32, and bfloat16 on a GPU or on a "
                        "CPU with AMX (bfloat16 matrix tiles)")  # fmt: skip
    parser.add_argument("--json", help="write every row to this file too")
    args = parser.parse_args()
    from ionops.serving.surrogate import keep_freed_memory

    keep_freed_memory()  # as `ionops predict` does
    cores = len(os.sched_getaffinity(0))
    batches = [int(b) for b in args.batches.split(",")]
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    precisions = (args.precisions or ("float32,bfloat16" if cuda or amx else "float32")).split(",")
    rows = [(c, b, p, t) for c in args.configs.split(",") for b in batches for p in precisions
            for t in sorted({1, cores})]  # fmt: skip
    print(f"{cores} cores{' with AMX' if amx else ''}; torch {torch.__version__}; surrogate on "
          f"{device}; {args.rounds} "
          "rounds: traj/s the best round's; each row's ratio the median over rounds of its rate "
          "over the solver's just before it, on as many cores")  # fmt: skip
    rows_out = []
    for model in args.models.split(","):
        n_t, t_end = DATASET_GRID[model]
        grids = {"1 ms": np.arange(0.0, t_end + 0.5), "dataset": np.linspace(0.0, t_end, n_t)}
        for grid_name in args.grids.split(","):
            rows_out += measure_grid(model, grid_name, grids[grid_name], args, rows, device)
    summarise(rows_out, max(batches), cuda)
    if args.json:
        Path(args.json).write_text(json.dumps(rows_out, indent=1))


if __name__ == "__main__":
    main()
