"""FNO training throughput: ionops against neuraloperator at equal size, side by side.

For the paper's constrained and unconstrained FHN configurations (1260 grid
points, batch 32, AdamW), each library's FNO runs training steps (forward,
relative-L2 loss, backward, optimiser step) in a fresh process; the script
prints samples per second (median of alternating rounds), the process's peak
resident memory, the achieved FLOP/s and, measured in the same run, this
machine's dense float32 matmul rate.

neuraloperator is a benchmark-only dependency (``pip install -e ".[bench]"``).
Its FNO is configured to the same width, depth, retained modes, padding and
128-channel lifting and projection; its own defaults differ in details (soft
gating on the channel-MLP skip) that cost little.

    python benchmarks/fno_training.py [--steps 6]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from typing import Any

N_T, BATCH = 1260, 32
CONFIGS = {  # the paper's FHN configurations (DESIGN.md)
    "FHN constrained": {"d_v": 64, "n_layers": 5, "k_max": 12, "n_pad": 5, "layer": "mlp"},
    "FHN unconstrained": {"d_v": 224, "n_layers": 4, "k_max": 20, "n_pad": 15, "layer": "mlp"},
}


def _ionops_model(config: dict[str, Any]) -> Any:
    from ionops.models import FNO, FNOArchitecture

    return FNO(FNOArchitecture(activation="gelu", n_states=2, **config))


def _neuralop_model(config: dict[str, Any]) -> Any:
    import torch
    from neuralop.models import FNO as NeuralopFNO

    class Wrapped(torch.nn.Module):
        """(batch, n_t) stimulus in, like ionops' FNO; the grid channel is neuralop's own."""

        def __init__(self) -> None:
            super().__init__()
            d_v = config["d_v"]
            self.fno = NeuralopFNO(
                n_modes=(2 * (config["k_max"] - 1),),  # keeps k_max rfft modes
                in_channels=1, out_channels=2, hidden_channels=d_v,
                n_layers=config["n_layers"], lifting_channel_ratio=128 / d_v,
                projection_channel_ratio=128 / d_v, positional_embedding="grid",
                use_channel_mlp=config["layer"] == "mlp", channel_mlp_expansion=1.0,
                domain_padding=config["n_pad"] / N_T,
            )  # fmt: skip

        def forward(self, stimulus: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.fno(stimulus[:, None, :])
            return out

    return Wrapped()


def _measure(library: str, name: str, steps: int) -> dict[str, float]:
    import torch

    from ionops.models import FNOArchitecture
    from ionops.models.fno import flops_per_sample
    from ionops.models.operator.metrics import loss

    torch.manual_seed(0)
    config = CONFIGS[name]
    model = _ionops_model(config) if library == "ionops" else _neuralop_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    inputs, targets = torch.randn(BATCH, N_T), torch.randn(BATCH, 2, N_T)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss(model(inputs), targets).backward()
        optimizer.step()

    step()
    step()
    began = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - began) / steps
    arch = FNOArchitecture(activation="gelu", n_states=2, **config)
    return {
        "samples_per_s": BATCH / seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "extra_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024,
        "gflops": 3 * flops_per_sample(arch, N_T) * BATCH / seconds / 1e9,
        "parameters": sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters()),
    }


def _matmul_gflops() -> float:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    began, repeats = time.perf_counter(), 20
    for _ in range(repeats):
        a @ b
    return 2 * 1024**3 * repeats / (time.perf_counter() - began) / 1e9


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    import statistics

    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per library")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1, maxtasksperchild=1) as pool:
        peak_rate = pool.apply(_matmul_gflops)
    print(f"dense float32 matmul (1024^3) on this machine: {peak_rate:.1f} GFLOP/s")
    print(f"{'config':<19}{'library':<16}{'params':>11}{'samples/s':>11}{'peak MiB':>10}"
          f"{'GFLOP/s':>9}{'of matmul':>10}")  # fmt: skip
    for name in CONFIGS:
        rounds: dict[str, list[dict[str, float]]] = {"ionops": [], "neuraloperator": []}
        for _ in range(args.rounds):  # alternate, so drifts of a noisy machine hit both
            for library, runs in rounds.items():
                with spawn.Pool(1, maxtasksperchild=1) as pool:
                    runs.append(pool.apply(_measure, (library, name, args.steps)))
        results = {library: _median(runs) for library, runs in rounds.items()}
        for library, r in results.items():
            share = r["gflops"] / peak_rate
            print(f"{name:<19}{library:<16}{r['parameters']:>11,}{r['samples_per_s']:>11.1f}"
                  f"{r['peak_mib']:>10.0f}{r['gflops']:>9.1f}{share:>10.0%}")  # fmt: skip
        ratio = results["ionops"]["samples_per_s"] / results["neuraloperator"]["samples_per_s"]
        print(f"{'':<19}ionops / neuraloperator throughput: {ratio:.2f} (target >= 1)")


if __name__ == "__main__":
    main()
