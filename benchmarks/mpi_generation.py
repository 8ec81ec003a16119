"""Parallel efficiency of `ionops generate` from 1 to K MPI ranks, measured side by side.

Generates the same ~200-trajectory dataset with 1 rank and with K ranks (the
real `mpiexec` of this environment), checks that the files are byte-identical,
and prints the generation time of each (from the command's own report: the
plan, the solves, and the assembly of the final file; not interpreter start-up)
and the efficiency T1 / (K * TK).

    python benchmarks/mpi_generation.py [--model ord] [--ranks 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ionops.datasets.protocols import PAPER_SPLIT_SIZES


def run(command: list[str]) -> float:
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    match = re.search(r"in ([0-9.]+) s", result.stdout)
    if match is None:
        raise RuntimeError(f"no timing in the output of {' '.join(command)}:\n{result.stdout}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ord", choices=["fhn", "hh", "ord"])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    fraction = args.samples / sum(PAPER_SPLIT_SIZES.values())
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    with tempfile.TemporaryDirectory() as folder:
        base = [sys.executable, "-m", "ionops.cli", "generate", args.model,
                "--fraction", f"{fraction:.6f}", "--no-progress", "--overwrite"]  # fmt: skip
        serial, parallel = Path(folder, "serial.h5"), Path(folder, "parallel.h5")
        run([*base, "--output", str(serial)])  # warm-up: compiled code and caches
        times: dict[int, list[float]] = {1: [], args.ranks: []}
        for _ in range(args.repeats):
            times[1].append(run([*base, "--output", str(serial)]))
            times[args.ranks].append(
                run([mpiexec, "-n", str(args.ranks), *base, "--output", str(parallel)])
            )
        identical = serial.read_bytes() == parallel.read_bytes()
    one, many = statistics.median(times[1]), statistics.median(times[args.ranks])
    print(f"{args.model}, {args.samples} trajectories (fraction {fraction:.4f})")
    print(f"  1 rank : {one:.2f} s (runs: {', '.join(f'{t:.2f}' for t in times[1])})")
    print(f"  {args.ranks} ranks: {many:.2f} s (runs: "
          f"{', '.join(f'{t:.2f}' for t in times[args.ranks])})")  # fmt: skip
    print(
        f"  parallel efficiency {one / (args.ranks * many):.1%} (target >= 90%); "
        f"files byte-identical: {identical}"
    )


if __name__ == "__main__":
    main()
