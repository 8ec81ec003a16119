"""ORd trajectory cost and accuracy: ionops' compiled BDF against Myokit's CVODES, side by side.

Accuracy: ionops at its ORd defaults (rtol 2e-7, analytic Jacobian) and
CVODES at Myokit's defaults against CVODES at 1e-12 / 1e-10, from the
original initial state, on the 1 ms grid, for stimuli drawn from every one of
the paper's ORd subsets (tests/cvodes.py); targets: V within 1e-2 mV and
every state within 1e-3 of its range. Stimuli within about 1 % of the
excitation threshold are ill-conditioned (a 1e-7 relative change of i moves
V by about 2e-2 mV there); one is shown with that sensitivity.

Speed: the reference cases of ../shared/reference/ord, each solver in turn in
blocks of calls, on the 1 ms grid (the target: ionops <= 1/3 of CVODES at
Myokit's defaults) and the dataset grid (10,080 points), with ionops' finite-
difference Jacobian as well to show what the analytic one is worth.

Needs the dev extra (myokit) and Debian's libsundials-dev for Myokit's
simulator; neither is a runtime dependency of ionops.

    python benchmarks/ord_solver.py [--repeats 20] [--per-subset 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import cvodes  # tests/cvodes.py: the CVODES reference, shared with the tests

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.ionic.ord import ORIGINAL_INITIAL_STATE
from ionops.datasets.solver import SolverSettings, solve

CASES = [  # (reference key, i, T_stim): I_app = i for t <= T_stim
    ("states", 80.0, 0.5),
    ("states_i20_Tstim5", 20.0, 5.0),
    ("states_i1_Tstim500", 1.0, 500.0),
]
NEAR_THRESHOLD = (11.5, 2.5)


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


def errors(states: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(max |V - V_ref| in mV, max over states of max |error| / the state's range)."""
    ranges = np.ptp(expected, axis=0)
    relative = np.abs(states - expected).max(axis=0) / np.where(ranges > 0, ranges, 1.0)
    return float(np.abs(states[:, 0] - expected[:, 0]).max()), float(relative.max())


def accuracy(per_subset: int) -> None:
    model = get_ionic_model("ord")
    settings = SolverSettings(*model.tolerances)
    y0, grid = np.array(ORIGINAL_INITIAL_STATE), np.linspace(0.0, 1000.0, 1001)
    stimuli = [(12.0, 2.5), *cvodes.paper_subset_stimuli(per_subset)]
    worst = {"ionops": [0.0, 0.0], "CVODES": [0.0, 0.0]}
    for amplitude, t_stim in stimuli:
        expected = cvodes.solve(amplitude, t_stim, grid, y0)
        ours = solve(model, grid, amplitude, t_stim, settings, y0=y0).states.T
        theirs = cvodes.solve(amplitude, t_stim, grid, y0, cvodes.MYOKIT_DEFAULTS)
        for name, states in (("ionops", ours), ("CVODES", theirs)):
            found = errors(states, expected)
            worst[name] = [max(worst[name][0], found[0]), max(worst[name][1], found[1])]
    print(f"accuracy against CVODES at 1e-12 / 1e-10, {len(stimuli)} stimuli "
          f"(i=12, T=2.5 and {per_subset} drawn per subset), 1 ms grid:")  # fmt: skip
    for name, label in (("ionops", f"ionops BDF (rtol {model.tolerances[0]:g})"),
                        ("CVODES", "CVODES at Myokit's defaults")):  # fmt: skip
        v, state = worst[name]
        print(f"  {label:<34} max |dV| {v:.1e} mV (target 1e-2), max state error / range "
              f"{state:.1e} (target 1e-3)")  # fmt: skip
    amplitude, t_stim = NEAR_THRESHOLD
    expected = cvodes.solve(amplitude, t_stim, grid, y0)
    nudged = cvodes.solve(amplitude * (1 + 1e-7), t_stim, grid, y0)
    ours = solve(model, grid, amplitude, t_stim, settings, y0=y0).states.T
    sensitivity, ours_v = errors(nudged, expected)[0], errors(ours, expected)[0]
    print(f"  near the threshold (i={amplitude:g}, T={t_stim:g}): i x (1 + 1e-7) moves CVODES's "
          f"own V by {sensitivity:.1e} mV; ionops is {ours_v:.1e} mV from it")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--per-subset", type=int, default=8, help="stimuli drawn per subset")
    args = parser.parse_args()
    why_not = cvodes.unavailable()
    if why_not:
        raise SystemExit(why_not)
    accuracy(args.per_subset)

    reference = np.load(cvodes.TRAJECTORIES)
    y0, grid_1ms = reference["y0"], reference["t_ms"]
    grids = {"10080": np.linspace(0.0, 1000.0, 10080), "1001": grid_1ms}
    ord_model = get_ionic_model("ord")
    finite_differences = dataclasses.replace(
        ord_model,
        kernels=SimpleNamespace(rhs=ord_model.rhs),  # no Jacobian: differences
    )
    settings = SolverSettings(*ord_model.tolerances)
    anchor = cvodes.MYOKIT_DEFAULTS

    print(f"\n{'case':<18}{'solver':<34}{'ms 10080':>9}{'ms 1001':>9}")
    ratios: dict[str, list[float]] = {"10080": [], "1001": []}
    fastest: dict[str, list[float]] = {"10080": [], "1001": []}
    for _, amplitude, t_stim in CASES:
        runs: dict[str, Callable[[], object]] = {}
        for label, grid in grids.items():
            runs[f"ours {label}"] = partial(solve, ord_model, grid, amplitude, t_stim, settings,
                                            y0=y0)  # fmt: skip
            runs[f"fd {label}"] = partial(solve, finite_differences, grid, amplitude, t_stim,
                                          settings, y0=y0)  # fmt: skip
            runs[f"cvodes {label}"] = partial(cvodes.solve, amplitude, t_stim, grid, y0, anchor,
                                              states=False)  # fmt: skip
        seconds = time_interleaved(runs, args.repeats)
        ms = {name: 1e3 * statistics.median(values) for name, values in seconds.items()}
        case = f"i={amplitude:g}, T={t_stim:g}"
        for key, label in (("ours", "ionops BDF, analytic Jacobian"),
                           ("fd", "ionops BDF, finite differences"),
                           ("cvodes", "CVODES at Myokit's defaults")):  # fmt: skip
            print(f"{case:<18}{label:<34}{ms[f'{key} 10080']:>9.2f}{ms[f'{key} 1001']:>9.2f}")
            case = ""
        for label in grids:
            ours_s, theirs_s = seconds[f"ours {label}"], seconds[f"cvodes {label}"]
            ratios[label].append(statistics.median(ours_s) / statistics.median(theirs_s))
            fastest[label].append(min(ours_s) / min(theirs_s))
    # This VM's speed drifts by up to 2x within minutes; the fastest calls of each show
    # the machine at its best for both, the medians include its slow spells.
    for label, name in (("1001", "1 ms grid"), ("10080", "10080-point grid")):
        for estimate, values in (("median", ratios[label]), ("fastest", fastest[label])):
            print(f"ionops / CVODES (Myokit defaults), {name}, {estimate} calls: "
                  f"{', '.join(f'{r:.2f}' for r in values)} "
                  f"(median {statistics.median(values):.2f}; target <= 0.33)")  # fmt: skip


if __name__ == "__main__":
    main()
