"""ionops' FNO against the paper's own (HyperNOs), at the paper's six configurations, side by side.

For each tuned configuration of the paper (FHN, HH, ORd; constrained and
unconstrained) on its model's dataset grid (1260, 1260, 10080 points), both
FNOs hold the same weights (benchmarks/hypernos_fno.py: the anchor restated,
its extra high-mode weights zero) and must give the same output; then, in this
one process, the two take turns (interleaved rounds, median):

- training: steps of forward, relative-L2 loss, backward and AdamW, batch 32;
- inference: forward without gradients, batch 32 and 256.

Peak memory (resident set size) is measured in fresh processes per library,
configuration and task, so one cannot inherit the other's allocations: the
median of three each, taken in turns.
Targets (issue 13): training >= 1.5x the anchor's samples/s at every
configuration, inference >= 1.5x at batch 32 and 256, peak memory <= the
anchor's everywhere.

    python benchmarks/fno_hypernos.py [--configs "FHN constrained,ORd constrained"] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
TASKS = ("train 32", "infer 32", "infer 256")


def _models(name: str) -> tuple[Any, Any, int]:
    import torch
    from hypernos_fno import from_ionops

    from ionops.models import FNO
    from ionops.models.fno_arch import PAPER_CONFIGURATIONS

    arch, _, n_t = PAPER_CONFIGURATIONS[name]
    torch.manual_seed(0)
    ours = FNO(arch)
    return ours, from_ionops(ours), n_t


def _task(library: str, model: Any, task: str, n_t: int) -> Callable[[], None]:
    """One call of ``task`` for ``model``; the inputs made once, outside the timing."""
    import torch

    batch = int(task.split()[1])
    torch.manual_seed(1)
    stimulus = torch.rand(batch, n_t) * 10.0
    x = stimulus if library == "ionops" else stimulus[:, :, None]
    if task.startswith("infer"):

        def infer() -> None:
            with torch.no_grad():
                model(x)

        return infer
    n_states = model.arch.n_states if library == "ionops" else model.project[1].out_features
    target = torch.rand(batch, n_states, n_t)
    if library != "ionops":
        target = target.permute(0, 2, 1).contiguous()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        out = model(x)
        difference = (out - target).flatten(1).norm(dim=1)
        loss = (difference / target.flatten(1).norm(dim=1)).mean()
        loss.backward()
        optimiser.step()

    return step


def _peak_memory(library: str, name: str, task: str, queue: Any) -> None:
    """In a fresh process: build, run ``task`` twice, report the peak RSS while it ran in MiB.

    The imports' own peak would hide a small model's: the kernel's high-water
    mark is reset (``/proc/self/clear_refs``) once the model and inputs exist.
    """
    import torch

    torch.set_num_threads(_THREADS)
    ours, anchor, n_t = _models(name)
    model = ours if library == "ionops" else anchor
    del ours, anchor  # each process holds one library's model only
    run = _task(library, model, task, n_t)
    Path("/proc/self/clear_refs").write_text("5")
    for _ in range(2):
        run()
    status = Path("/proc/self/status").read_text()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    queue.put(int(peak.split()[1]) / 1024)


_THREADS = 2


def peak_memory(library: str, name: str, task: str) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_peak_memory, args=(library, name, task, queue))
    process.start()
    value = float(queue.get())
    process.join()
    return value


def peak_memories(name: str, task: str, processes: int) -> tuple[float, float]:
    """ionops' and the anchor's peak RSS, each the median of ``processes`` fresh processes
    taken in turns (one process's peak varies by tens of MiB with the allocator's arenas)."""
    ours, theirs = [], []
    for _ in range(processes):
        ours.append(peak_memory("ionops", name, task))
        theirs.append(peak_memory("HyperNOs", name, task))
    return statistics.median(ours), statistics.median(theirs)


def same_outputs(name: str) -> float:
    """max |ionops - anchor| / max |ionops| on a batch of 4 at the configuration's grid."""
    import torch

    ours, anchor, n_t = _models(name)
    stimulus = torch.rand(4, n_t) * 10.0
    with torch.no_grad():
        expected = ours(stimulus)
        got = anchor(stimulus[:, :, None]).permute(0, 2, 1)
    return float((got - expected).abs().max() / expected.abs().max())


def speeds(name: str, rounds: int, calls: dict[str, int]) -> dict[str, dict[str, float]]:
    """Samples per second of each library and task: the libraries take turns each round."""
    ours, anchor, n_t = _models(name)
    runs = {
        (library, task): _task(library, model, task, n_t)
        for task in TASKS
        for library, model in (("ionops", ours), ("HyperNOs", anchor))
    }
    for run in runs.values():
        run()  # warm-up
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for (library, task), run in runs.items():
            start = time.perf_counter()
            for _ in range(calls[task]):
                run()
            seconds = (time.perf_counter() - start) / calls[task]
            samples[(library, task)].append(int(task.split()[1]) / seconds)
    result: dict[str, dict[str, float]] = {"ionops": {}, "HyperNOs": {}}
    for (library, task), values in samples.items():
        result[library][task] = statistics.median(values)
    return result


def main() -> None:
    import torch

    from ionops.models.fno_arch import PAPER_CONFIGURATIONS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(PAPER_CONFIGURATIONS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument(
        "--memory-processes",
        type=int,
        default=3,
        help="fresh processes per library and task; their median peak counts",
    )
    args = parser.parse_args()
    torch.set_num_threads(_THREADS)
    names = [n.strip() for n in args.configs.split(",")]
    print(f"{torch.get_num_threads()} threads; samples/s (median of {args.rounds} interleaved "
          "rounds) and peak RSS (MiB, fresh processes)")  # fmt: skip
    header = "".join(f"{task:>22}" for task in TASKS)
    print(f"{'configuration':<20}{'same output':>12}{header}")
    worst = {task: float("inf") for task in TASKS}
    memory_over = []
    for name in names:
        n_t = PAPER_CONFIGURATIONS[name][2]
        # fewer calls where one is long (ORd's 10,080 points)
        calls = {"train 32": 2, "infer 32": 3, "infer 256": 1} if n_t > 5000 else \
            {"train 32": 6, "infer 32": 10, "infer 256": 3}  # fmt: skip
        rates = speeds(name, args.rounds, calls)
        cells = []
        for task in TASKS:
            ratio = rates["ionops"][task] / rates["HyperNOs"][task]
            worst[task] = min(worst[task], ratio)
            cells.append(f"{rates['ionops'][task]:8.1f}/{rates['HyperNOs'][task]:<7.1f}"
                         f"{ratio:5.2f}x")  # fmt: skip
        print(f"{name:<20}{same_outputs(name):>12.1e}" + "".join(f"{c:>22}" for c in cells))
        if not args.no_memory:
            cells = []
            for task in TASKS:
                ours, theirs = peak_memories(name, task, args.memory_processes)
                if ours > theirs:
                    memory_over.append(f"{name} {task}")
                cells.append(f"{ours:8.0f}/{theirs:<7.0f}{ours / theirs:5.2f}x")
            print(f"{'  peak RSS':<32}" + "".join(f"{c:>22}" for c in cells))
    print("worst ratio (ionops / HyperNOs samples/s; target >= 1.5): "
          + ", ".join(f"{task} {value:.2f}x" for task, value in worst.items()))  # fmt: skip
    if not args.no_memory:
        print("peak memory above the anchor's: " + (", ".join(memory_over) or "none"))


if __name__ == "__main__":
    main()
