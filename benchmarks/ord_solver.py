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
from pathlib import Path

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


def time_it(run, repeats: int) -> float:  # type: ignore[no-untyped-def]
    run()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    reference = np.load(REFERENCE / "ord_endo_reference.npz")
    y0, grid_1ms = reference["y0"], reference["t_ms"]
    grid = np.linspace(0.0, 1000.0, 10080)
    ord_model = get_ionic_model("ord")
    rtol, atol = ord_model.tolerances
    settings = SolverSettings(rtol=rtol, atol=atol)

    print(f"{'case':<22}{'solver':<26}{'ms 10080':>9}{'ms 1001':>9}{'max|dV| mV':>12}"
          f"{'state/range':>13}")  # fmt: skip
    ratios: list[float] = []
    ratios_1ms: list[float] = []
    for key, amplitude, t_stim in CASES:
        expected = reference[key]
        ours = solve(ord_model, grid_1ms, amplitude, t_stim, settings, y0=y0).states.T
        ours_time, ours_time_1ms = (
            time_it(lambda a=amplitude, s=t_stim, g=g: solve(ord_model, g, a, s, settings, y0=y0),
                    args.repeats)
            for g in (grid, grid_1ms)
        )  # fmt: skip
        ranges = np.ptp(expected, axis=0)
        ours_state = (np.abs(ours - expected).max(axis=0) / np.where(ranges > 0, ranges, 1)).max()
        label = f"i={amplitude:g}, T={t_stim:g}"
        print(f"{label:<22}{'ionops BDF (rtol 1e-6)':<26}{ours_time * 1e3:>9.2f}"
              f"{ours_time_1ms * 1e3:>9.2f}"
              f"{np.abs(ours[:, 0] - expected[:, 0]).max():>12.1e}{ours_state:>13.1e}")  # fmt: skip
        simulation, _ = myokit_simulation(amplitude, t_stim, y0)
        for abs_tol, rel_tol in MYOKIT_TOLERANCES:
            simulation.set_tolerance(abs_tol, rel_tol)

            def run_myokit(sim=simulation, times=grid):  # type: ignore[no-untyped-def]
                sim.reset()
                return sim.run(1000.0 + 1e-9, log_times=times, log=["membrane.v"])

            theirs_time = time_it(run_myokit, args.repeats)
            theirs_time_1ms = time_it(lambda r=run_myokit: r(times=grid_1ms), args.repeats)
            simulation.reset()
            logged = simulation.run(1000.0 + 1e-9, log_times=grid_1ms, log=["membrane.v"])
            theirs_v = np.asarray(logged["membrane.v"])
            name = f"CVODES a{abs_tol:g} r{rel_tol:g}"
            print(f"{'':<22}{name:<26}{theirs_time * 1e3:>9.2f}{theirs_time_1ms * 1e3:>9.2f}"
                  f"{np.abs(theirs_v - expected[:, 0]).max():>12.1e}")  # fmt: skip
            if (abs_tol, rel_tol) == MYOKIT_TOLERANCES[0]:
                ratios.append(ours_time / theirs_time)
                ratios_1ms.append(ours_time_1ms / theirs_time_1ms)
    for name, values in (("10080-point grid", ratios), ("1 ms grid", ratios_1ms)):
        print(f"ionops / CVODES (Myokit defaults), {name}: "
              f"{', '.join(f'{r:.2f}' for r in values)} (median {statistics.median(values):.2f};"
              " target <= 0.33)")  # fmt: skip


if __name__ == "__main__":
    main()
