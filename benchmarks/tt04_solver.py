"""ten Tusscher 2004: ionops' compiled BDF against Myokit's CVODES on the same paced beats.

Both solve 5 beats at a cycle length of 1000 ms (-52 pA/pF for 1 ms, 10 ms into each cycle)
from the published initial state, logged every 1 ms, M and endocardial cells. Accuracy
against CVODES at rtol 1e-10 / atol 1e-12 (V everywhere, the upstroke included; every state
over its range); speed side by side, the solvers taking turns in blocks of calls: ionops at
its datasets' tolerances (rtol 1e-7) against CVODES at the reference's (rtol 1e-8, atol
1e-10, what ../shared/reference/tt04 was made with) and at Myokit's defaults (1e-4 / 1e-6).
The issue's target: at least as fast as CVODES at V within 0.5 mV.

Needs the dev extra (myokit), Debian's libsundials-dev and ../shared/reference/tt04 (the
CellML files Myokit reads).

    python benchmarks/tt04_solver.py [--repeats 20] [--beats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.solver import SolverSettings, solve_stimulus
from ionops.datasets.stimuli import Pacing

TT04 = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tt04"
CELLS = {"M": "ten_tusscher_model_2004_M.cellml", "endo": "ten_tusscher_model_2004_endo.cellml"}


def cvodes(cell: str) -> tuple[Any, list[str], list[str]]:
    """A Myokit simulation of the cell's CellML paced by -level (ionops' sign), and the
    states as ionops orders them."""
    import myokit
    import myokit.formats

    model = myokit.formats.importer("cellml").model(str(TT04 / CELLS[cell]))
    pace = model.get("membrane").add_variable("pace_level")
    pace.set_rhs(0)
    pace.set_binding("pace")
    model.get("membrane.i_Stim").set_rhs(myokit.PrefixMinus(myokit.Name(pace)))
    by_suffix = {s.qname().split(".")[-1]: s.qname() for s in model.states()}
    names = [by_suffix[n] for n in get_ionic_model("tt04").state_names]
    return myokit.Simulation(model), names, [s.qname() for s in model.states()]


def run_cvodes(simulation: Any, names: list[str], times: np.ndarray, beats: int,
               tolerances: tuple[float, float]) -> np.ndarray:  # fmt: skip
    import myokit

    protocol = myokit.Protocol()
    for beat in range(beats):
        protocol.schedule(52.0, 1000.0 * beat + 10.0, 1.0)
    simulation.set_protocol(protocol)
    simulation.set_tolerance(*tolerances)  # (absolute, relative)
    simulation.reset()
    log = simulation.run(float(times[-1]) + 1e-9, log_times=times, log=names)
    return np.vstack([np.asarray(log[n]) for n in names])


def interleaved(runs: dict[str, Callable[[], object]], repeats: int,
                block: int = 5) -> dict[str, float]:  # fmt: skip
    """Median seconds per call, the runs taking turns in blocks of calls."""
    for run in runs.values():
        run()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(max(1, repeats // block)):
        for name, run in runs.items():
            started = time.perf_counter()
            for _ in range(block):
                run()
            seconds[name].append((time.perf_counter() - started) / block)
    return {name: statistics.median(values) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--beats", type=int, default=5)
    args = parser.parse_args()
    model = get_ionic_model("tt04")
    times = np.arange(0.0, 1000.0 * args.beats + 1e-9, 1.0)
    pacing = Pacing(52.0, 1.0, 10.0, 1000.0)
    rtol, atol = model.tolerances
    print(f"tt04, {args.beats} beats at 1000 ms on a 1 ms grid; ionops rtol {rtol:g}")
    print(
        "| cell | solver | max |dV| (mV) | worst state / range | ms per run | ionops time / its |"
    )
    print("|---|---|---|---|---|---|")
    for cell in CELLS:
        p = model.parameter_vector(model.parameter_set(cell))
        simulation, names, _ = cvodes(cell)
        truth = run_cvodes(simulation, names, times, args.beats, (1e-12, 1e-10))
        spread = np.ptp(truth, axis=1)
        spread[spread == 0] = 1.0
        settings = SolverSettings(rtol=rtol, atol=atol, max_steps=10_000_000)
        runs: dict[str, Callable[[], np.ndarray]] = {
            "ionops BDF": lambda p=p, s=settings: solve_stimulus(model, times, pacing, s, p).states,
            "CVODES 1e-8/1e-10": lambda sim=simulation, n=names: run_cvodes(
                sim, n, times, args.beats, (1e-10, 1e-8)
            ),
            "CVODES 1e-4/1e-6 (Myokit's defaults)": lambda sim=simulation, n=names: run_cvodes(
                sim, n, times, args.beats, (1e-6, 1e-4)
            ),
        }
        seconds = interleaved(runs, args.repeats)
        for name, run in runs.items():
            states = run()
            dv = float(np.abs(states[0] - truth[0]).max())
            worst = float((np.abs(states - truth).max(axis=1) / spread).max())
            ratio = seconds[name] / seconds["ionops BDF"]
            print(f"| {cell} | {name} | {dv:.2e} | {worst:.1e} | {1e3 * seconds[name]:.1f} | "
                  f"{1 / ratio:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
