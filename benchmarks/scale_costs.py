"""What `ionops generate` costs per task and per rank here, and what that implies at 128 ranks.

Measured on this machine, side by side in one run:

- the master/worker protocol (:mod:`ionops.datasets.parallel`, the real
  ``run_tasks`` under this environment's ``mpiexec -n 2``) on many tasks of a
  fixed busy-wait: the protocol's cost per task is the ranks' time beyond the
  work, (ranks x wall - tasks x work) / tasks; rank 0 handles every worker's
  completion, so that cost is serial at rank 0;
- a rank's start-up (interpreter, ionops, numba's cached ORd solver) until its
  first ORd trajectory is solved;
- one ORd trajectory on the dataset grid (10,080 points) at the default tolerances;
- the whole `ionops generate ord` of a small dataset on one rank (plan, solves,
  journal, assembly of the final file), per trajectory.

From these it prints the projection for 128 ranks (127 workers and rank 0,
which works too): trajectories per second, rank 0's load, the time and
efficiency of the paper's ORd dataset (3,750 trajectories), and the first
bottleneck.

    python benchmarks/scale_costs.py [--tasks 4000] [--work-ms 1] [--ranks 128]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PAPER_TRAJECTORIES = 3750


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def protocol_probe(tasks: int, work_ms: float) -> None:
    """Under mpiexec: the real run_tasks over ``tasks`` busy-waits; rank 0 prints the figures."""
    from ionops.datasets.parallel import run_tasks, world

    comm = world()
    done_here = 0

    def work(task: int) -> None:
        nonlocal done_here
        busy(work_ms / 1e3)
        done_here += 1

    comm.Barrier()
    start = time.perf_counter()
    run_tasks(comm, list(range(tasks)), work, lambda n: None)
    wall = time.perf_counter() - start
    counts = comm.gather(done_here, root=0)
    if comm.Get_rank() == 0:
        print(f"wall {wall:.6f} ranks {comm.Get_size()} rank0 {counts[0]} others {sum(counts[1:])}")


def startup_seconds() -> float:
    """Wall time of a fresh interpreter that imports ionops and solves one ORd trajectory."""
    code = (
        "import numpy as np\n"
        "from ionops.datasets.ionic import get_ionic_model\n"
        "from ionops.datasets.solver import SolverSettings, solve\n"
        "m = get_ionic_model('ord')\n"
        "solve(m, np.linspace(0, 1000, 10080), 10.0, 3.0, SolverSettings(*m.tolerances),\n"
        "      y0=m.initial_state(kind='original'))\n"
    )
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def trajectory_seconds() -> float:
    import numpy as np

    from ionops.datasets.ionic import get_ionic_model
    from ionops.datasets.solver import SolverSettings, solve

    model = get_ionic_model("ord")
    settings, y0 = SolverSettings(*model.tolerances), model.initial_state(kind="original")
    grid = np.linspace(0.0, 1000.0, 10080)
    rng = np.random.default_rng(0)
    stimuli = [(rng.uniform(0, 20), rng.uniform(2, 5)) for _ in range(20)]
    solve(model, grid, *stimuli[0], settings, y0=y0)
    start = time.perf_counter()
    for amplitude, t_stim in stimuli:
        solve(model, grid, amplitude, t_stim, settings, y0=y0)
    return (time.perf_counter() - start) / len(stimuli)


def generation_seconds_per_trajectory(samples: int) -> float:
    """`ionops generate ord` on one rank, per trajectory, from the command's own report."""
    fraction = samples / PAPER_TRAJECTORIES
    with tempfile.TemporaryDirectory(prefix="ionops-scale-") as scratch:
        out = Path(scratch) / "ord.h5"
        result = subprocess.run(
            [str(BIN / "ionops"), "generate", "ord", "--fraction", f"{fraction:.6f}",
             "--output", str(out), "--no-progress"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    found = re.search(r"(\d+) trajectories.* in ([0-9.]+) s", result.stdout)
    if found is None:
        raise RuntimeError(f"no timing in the output of ionops generate:\n{result.stdout}")
    return float(found.group(2)) / int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=4000)
    parser.add_argument("--work-ms", type=float, default=1.0)
    parser.add_argument("--ranks", type=int, default=128, help="the scale to project to")
    parser.add_argument("--samples", type=int, default=120, help="trajectories generated")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        protocol_probe(args.tasks, args.work_ms)
        return

    probe = subprocess.run(
        [str(BIN / "mpiexec"), "-n", "2", sys.executable, __file__, "--probe",
         "--tasks", str(args.tasks), "--work-ms", str(args.work_ms)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"wall ([0-9.]+) ranks (\d+) rank0 (\d+) others (\d+)", probe.stdout)
    if found is None:
        raise RuntimeError(f"the MPI probe printed nothing usable:\n{probe.stdout}{probe.stderr}")
    wall, ranks = float(found.group(1)), int(found.group(2))
    own, others = int(found.group(3)), int(found.group(4))
    protocol = (ranks * wall - args.tasks * args.work_ms / 1e3) / args.tasks
    startup = startup_seconds()
    trajectory = trajectory_seconds()
    per_generated = generation_seconds_per_trajectory(args.samples)

    print(f"measured here (2 cores): MPI protocol {protocol * 1e6:.0f} us per task "
          f"({args.tasks} tasks of {args.work_ms:g} ms on {ranks} ranks in {wall:.2f} s; "
          f"rank 0 did {own}, the worker {others})")  # fmt: skip
    print(f"  rank start-up until its first ORd trajectory: {startup:.2f} s")
    print(f"  one ORd trajectory, dataset grid, default tolerances: {trajectory * 1e3:.1f} ms")
    print(f"  `ionops generate ord` on one rank ({args.samples} trajectories): "
          f"{per_generated * 1e3:.1f} ms per trajectory (solve, journal, assembly)")  # fmt: skip

    n = args.ranks
    serial = max(0.0, per_generated - trajectory)  # plan, journals, assembly: rank 0 alone
    load = (n - 1) / trajectory * protocol  # rank 0's share of time spent on messages
    rate = (n - min(load, 1.0)) / trajectory
    one_rank = PAPER_TRAJECTORIES * per_generated
    at_scale = startup + PAPER_TRAJECTORIES / rate + PAPER_TRAJECTORIES * serial
    print(f"  of which not solving (plan, journal, assembly; serial on rank 0): "
          f"{serial * 1e3:.2f} ms per trajectory")  # fmt: skip
    print(f"projected at {n} ranks ({n - 1} workers and rank 0, which works too):")
    saturation = trajectory / protocol
    print(f"  {rate:,.0f} trajectories/s; rank 0 spends {min(load, 1.0):.0%} of its time on the "
          f"workers' messages (they would saturate it at {saturation:,.0f} ranks)")  # fmt: skip
    print(f"  the paper's ORd dataset ({PAPER_TRAJECTORIES} trajectories): {one_rank:.0f} s on "
          f"one rank, about {at_scale:.1f} s on {n}: {startup:.1f} s start-up, "
          f"{PAPER_TRAJECTORIES / rate:.2f} s solving, {PAPER_TRAJECTORIES * serial:.1f} s "
          f"assembling; efficiency {one_rank / (n * at_scale):.0%}")  # fmt: skip
    parts = {"the ranks' start-up": startup, "the solves": PAPER_TRAJECTORIES / rate,
             "rank 0's assembly": PAPER_TRAJECTORIES * serial}  # fmt: skip
    print(f"  first bottleneck: {max(parts, key=parts.__getitem__)}")


if __name__ == "__main__":
    main()
