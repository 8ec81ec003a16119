"""ORd trajectory cost: ionops' compiled BDF against Myokit's CVODES, side by side.

Both solve the reference cases of ../shared/reference/ord (the original ORd
endocardial model, from its original initial state) on the dataset grid
(10,080 points on [0, 1000] ms); the accuracy of each is measured against the
reference trajectories (CVODES at rtol 1e-10) on the 1 ms grid.

Needs the dev extra (myokit) and Debian's libsundials-dev for Myokit's
simulator; neither is a runtime dependency of ionops.

    python benchmarks/ord_solver.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.solver import SolverSettings, solve

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ord"
# Myokit's defaults (the anchor), then tolerances giving accuracy comparable to ours.
MYOKIT_TOLERANCES = [(1e-6, 1e-4), (1e-8, 1e-6)]
CASES = [  # (reference key, i, T_stim): I_app = i for t <= T_stim
    ("states", 80.0, 0.5),
    ("states_i20_Tstim5", 20.0, 5.0),
    ("states_i1_Tstim500", 1.0, 500.0),
]


def myokit_simulation(amplitude: float, t_stim: float, y0: np.ndarray):  # type: ignore[no-untyped-def]
    """A Myokit CVODES simulation of the reference CellML with I_stim = -i for t <= T_stim."""
    import myokit
    import myokit.formats

    model = myokit.formats.importer("cellml").model(str(REFERENCE / "ohara_rudy_2011_endo.cellml"))
    pace = model.get("membrane").add_variable("pace_level")
    pace.set_rhs(0)
    pace.set_binding("pace")
    model.get("membrane.Istim").set_rhs(
        myokit.Multiply(myokit.Name(pace), myokit.Number(-amplitude))
    )
    protocol = myokit.Protocol()
    protocol.schedule(1.0, 0.0, t_stim)
    simulation = myokit.Simulation(model, protocol)
    suffixes = [state.qname().split(".")[-1] for state in model.states()]
    names = [str(n) for n in np.load(REFERENCE / "ord_endo_reference.npz")["state_names"]]
    state = np.empty(len(names))
    state[[suffixes.index(n) for n in names]] = y0
    simulation.set_default_state(list(state))
    return simulation, model


def time_interleaved(
    runs: dict[str, Callable[[], object]], repeats: int, block: int = 5
) -> dict[str, list[float]]:
    """Seconds per call of each run: the runs take turns in blocks of ``block`` calls.

    Taking turns lets a slow spell of the machine hit every run alike; the
    blocks keep each run's caches warm, as in a generation that solves one
    trajectory after another.
    """
    for run in runs.values():
        run()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(max(1, repeats // block)):
        for name, run in runs.items():
            for _ in range(block):
                start = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    reference = np.load(REFERENCE / "ord_endo_reference.npz")
    y0, grid_1ms = reference["y0"], reference["t_ms"]
    grids = {"10080": np.linspace(0.0, 1000.0, 10080), "1001": grid_1ms}
    ord_model = get_ionic_model("ord")
    rtol, atol = ord_model.tolerances
    settings = SolverSettings(rtol=rtol, atol=atol)

    print(f"{'case':<22}{'solver':<26}{'ms 10080':>9}{'ms 1001':>9}{'max|dV| mV':>12}"
          f"{'state/range':>13}")  # fmt: skip
    ratios: dict[str, list[float]] = {"10080": [], "1001": []}
    fastest: dict[str, list[float]] = {"10080": [], "1001": []}
    for key, amplitude, t_stim in CASES:
        expected = reference[key]
        ranges = np.ptp(expected, axis=0)
        ours = solve(ord_model, grid_1ms, amplitude, t_stim, settings, y0=y0).states.T
        ours_dv = np.abs(ours[:, 0] - expected[:, 0]).max()
        ours_state = (np.abs(ours - expected).max(axis=0) / np.where(ranges > 0, ranges, 1)).max()
        simulation, _ = myokit_simulation(amplitude, t_stim, y0)
        runs: dict[str, Callable[[], object]] = {}
        theirs_dv = {}
        for tolerances in MYOKIT_TOLERANCES:
            logged: Any = run_myokit(simulation, tolerances, grid_1ms)
            theirs_dv[tolerances] = np.abs(np.asarray(logged["membrane.v"]) - expected[:, 0]).max()
        for label, grid in grids.items():
            runs[f"ours {label}"] = partial(solve, ord_model, grid, amplitude, t_stim, settings,
                                            y0=y0)  # fmt: skip
            for tolerances in MYOKIT_TOLERANCES:
                runs[f"{tolerances} {label}"] = partial(run_myokit, simulation, tolerances, grid)
        seconds = time_interleaved(runs, args.repeats)
        ms = {name: 1e3 * statistics.median(values) for name, values in seconds.items()}
        case = f"i={amplitude:g}, T={t_stim:g}"
        print(f"{case:<22}{'ionops BDF (rtol 1e-6)':<26}{ms['ours 10080']:>9.2f}"
              f"{ms['ours 1001']:>9.2f}{ours_dv:>12.1e}{ours_state:>13.1e}")  # fmt: skip
        for tolerances in MYOKIT_TOLERANCES:
            name = f"CVODES a{tolerances[0]:g} r{tolerances[1]:g}"
            print(f"{'':<22}{name:<26}{ms[f'{tolerances} 10080']:>9.2f}"
                  f"{ms[f'{tolerances} 1001']:>9.2f}{theirs_dv[tolerances]:>12.1e}")  # fmt: skip
        anchor = MYOKIT_TOLERANCES[0]
        for label in grids:
            ours_s, theirs_s = seconds[f"ours {label}"], seconds[f"{anchor} {label}"]
            ratios[label].append(statistics.median(ours_s) / statistics.median(theirs_s))
            fastest[label].append(min(ours_s) / min(theirs_s))
    # This VM's speed drifts by up to 2x within minutes; the fastest calls of each show
    # the machine at its best for both, the medians include its slow spells.
    for label, name in (("10080", "10080-point grid"), ("1001", "1 ms grid")):
        for estimate, values in (("median", ratios[label]), ("fastest", fastest[label])):
            print(f"ionops / CVODES (Myokit defaults), {name}, {estimate} calls: "
                  f"{', '.join(f'{r:.2f}' for r in values)} "
                  f"(median {statistics.median(values):.2f}; target <= 0.33)")  # fmt: skip


def run_myokit(simulation: Any, tolerances: tuple[float, float], times: np.ndarray) -> object:
    simulation.set_tolerance(*tolerances)
    simulation.reset()
    return simulation.run(1000.0 + 1e-9, log_times=times, log=["membrane.v"])


if __name__ == "__main__":
    main()
