"""Seeds of a torch-integrated neural-ODE variant trained side by side, one process for all.

The variants that torchdiffeq integrates (dopri5, the backsolve adjoint) and the residual
alone spend their time in PyTorch's per-operation overhead: a window's 1,468 steps are
thousands of tiny operations, about 3 s an iteration of the adjoint on a CPU core whatever
the network's size. Ten seeds' networks stacked on a leading axis
(batched matrix products; the members' own arithmetic, in the same order and precisions)
do each operation once for all ten, for little more than one seed's cost.

The seeds stay independent: the loss is the sum of their losses (each seed's gradient is
its own), and Adam and the cosine schedule act elementwise, so each seed's steps are the
ones it takes alone, through the project's own training loop. Fixed-step solvers (Heun,
its adjoint) give each seed exactly its own trajectory. The adaptive dopri5 shares its
steps between the seeds; a step is accepted only if every seed's own error passes
torchdiffeq's test (the norm is the largest of the seeds' norms), so each seed is solved
at least as accurately as alone. Before training, each seed's loss here is checked
against :class:`NodeObjective`'s loss of the same network, so that the two definitions
cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ionops.models.family import Objective

# the variants this path trains; the others train one process a seed: the Heun variants in
# the compiled kernels, the PINNs (compute, not overhead, bound: ten side by side took as
# long as ten apart)
BATCHED = {"vanilla_dopri5", "adjoint", "physics_only_128"}


class Stacked(nn.Module):
    """``members`` (vector fields of one architecture and one set of scalings) as one network
    whose parameters have a leading seed axis; it computes what each member's ``forward``
    computes, in the same order and precisions, with batched matrix products.

    Every parameter lives in one flat tensor, each in the shape its operation takes (W^T
    (K, in, out), biases and LayerNorm's (K, 1, width)), cut by one ``split`` an evaluation.
    torchdiffeq's adjoint handles its parameters one by one at every step: one tensor
    instead of 14 took a tenth off the adjoint's iteration, and no per-step transposes or
    unsqueezes are left."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        first = members[0]
        self.count = len(members)
        self.sinh = bool(getattr(first, "sinh", False))
        self.names = [n for n, _ in first.named_parameters()]
        self.modules_of = [(type(m).__name__, getattr(m, "eps", 0.0)) for m in first.hidden.net]
        self.shapes = [tuple(p.shape) for _, p in first.named_parameters()]
        pieces = [self._stored(torch.stack([dict(m.named_parameters())[n].detach()
                                            for m in members]))
                  for n in self.names]  # fmt: skip
        self.stored_shapes = [tuple(p.shape) for p in pieces]
        self.sizes = [p.numel() for p in pieces]
        self.flat = nn.Parameter(torch.cat([p.reshape(-1) for p in pieces]))
        for name, buffer in first.named_buffers():
            self.register_buffer(name, buffer.detach().clone())

    @staticmethod
    def _stored(value: torch.Tensor) -> torch.Tensor:
        """A stacked parameter (K, ...) in the shape its operation takes."""
        if value.dim() == 3:  # W (K, out, in): stored W^T
            return value.transpose(1, 2).contiguous()
        return value.unsqueeze(1)  # (K, width) -> (K, 1, width)

    def parameters_of(self, flat: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each parameter in its stored shape: views of ``flat`` (by default the parameters;
        or their gradient), one ``split``."""
        pieces = torch.split(self.flat if flat is None else flat, self.sizes)
        return [p.view(shape) for p, shape in zip(pieces, self.stored_shapes, strict=True)]

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden network on x (K, M, inputs): (K, M, outputs)."""
        x = x.to(self.flat.dtype)
        parameters = iter(self.parameters_of())
        for kind, eps in self.modules_of:
            if kind == "Linear":
                transposed, bias = next(parameters), next(parameters)
                x = torch.baddbmm(bias, x, transposed)
            elif kind == "LayerNorm":
                gamma, beta = next(parameters), next(parameters)
                x = F.layer_norm(x, x.shape[-1:], eps=eps) * gamma + beta
            else:
                x = torch.tanh(x)
        return x

    def field(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Each seed's f(z, t): z (K, M, S), t (K, M) or a number; (K, M, S)."""
        from ionops.models.node import scaled_field

        return scaled_field(self, self.sinh, self._net, z, t)

    def _member_values(self, values: list[torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s slice of each stored-shape tensor, in the member's own shapes."""
        out = {}
        for name, shape, value in zip(self.names, self.shapes, values, strict=True):
            piece = value[k]
            out[name] = (piece.T if len(shape) == 2 else piece.reshape(shape)).detach().clone()
        return out

    def member(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s state dict."""
        state = self._member_values(self.parameters_of(), k)
        return {**state, **{n: b.clone() for n, b in self.named_buffers()}}

    def member_gradient(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s part of ``flat``'s gradient, by parameter name."""
        assert self.flat.grad is not None
        return self._member_values(self.parameters_of(self.flat.grad), k)


class StackedField(nn.Module):
    """A :class:`Stacked` vector field as torchdiffeq calls it: f(t, Z), Z (seeds, S)."""

    def __init__(self, stacked: Stacked) -> None:
        super().__init__()
        self.stacked = stacked

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.stacked.field(z.unsqueeze(1), t).squeeze(1)


def _max_norm(count: int) -> Any:
    """torchdiffeq's RMS norm of each seed's error, the largest of them."""

    def norm(error: torch.Tensor) -> torch.Tensor:
        return error.reshape(count, -1).pow(2).mean(dim=1).sqrt().max()

    return norm


class BatchedObjective(Objective):
    """The sum over seeds of :class:`NodeObjective`'s loss (its first phase: no rounds) for a
    :class:`Stacked` model; ``reference`` is one seed's NodeObjective (the same data and
    settings for every seed)."""

    def __init__(self, reference: Any) -> None:
        self.reference = reference
        self.state_names = reference.state_names

    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[Any]:
        return iter([None])

    def splits(self) -> tuple[str, ...]:
        return ()

    def evaluate(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError("each seed is evaluated by its own NodeObjective")

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return self.seed_losses(model).sum()

    def seed_losses(self, model: nn.Module) -> torch.Tensor:
        import torchdiffeq

        stacked = model if isinstance(model, Stacked) else None
        assert stacked is not None
        ref, learning = self.reference, self.reference.learning
        tensors = ref._tensors
        dtype = stacked.flat.dtype
        count = stacked.count
        observed, times = tensors["observed"].to(dtype), tensors["time"].to(dtype)
        if ref.method == "pinn":
            raise ValueError("batched seeds: the PINN trains one process a seed")
        data_weight = float(learning.get("data_weight", 1.0))
        total = torch.zeros(count, dtype=dtype)
        if data_weight:
            adjoint = learning["gradient"] == "adjoint"
            solve = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
            method = "heun2" if learning["integrator"] == "heun" else "dopri5"
            options: dict[str, Any] = {}
            if method == "dopri5":
                from ionops.models.families.node_field import DOPRI5

                if adjoint:
                    raise ValueError("batched seeds: dopri5's adjoint would share its steps "
                                     "by torchdiffeq's own norm; use --apart")  # fmt: skip
                options = {**DOPRI5, "options": {"norm": _max_norm(count)}}
            extra = {"adjoint_params": tuple(stacked.parameters())} if adjoint else {}
            z0 = observed[:, 0].expand(count, -1)
            path = solve(StackedField(stacked), z0, times, method=method, **options,
                         **extra)  # (N, K, S)  # fmt: skip
            scaled = (path - observed.T[:, None, :]) / tensors["data_scale"]
            total = total + data_weight * scaled.pow(2).sum(dim=2).mean(dim=0)
        if ref.weight:
            states = tensors["observed"].T.to(dtype)
            fitted = stacked.field(states.expand(count, -1, -1), times.expand(count, -1))
            residual = (fitted - tensors["derivative"].T.to(dtype)) / tensors["residual_scale"]
            total = total + ref.weight * residual.pow(2).sum(dim=2).mean(dim=1)
        return total


def run_seeds(variant: str, seeds: Sequence[int], path: str, threads: int, overrides_of: Any,
              score: Any) -> list[dict[str, Any]]:  # fmt: skip
    """Train ``seeds`` of ``variant`` side by side and score each as ``score(model, objective,
    data, row)`` fills its row; ``overrides_of(seed)`` gives a seed's hh-node overrides."""
    torch.set_num_threads(threads)
    from ionops.config import load_experiment
    from ionops.models.families.node_learning import NodeObjective
    from ionops.models.registry import get_family
    from ionops.training.loop import TrainSettings, train

    family = get_family("node")
    experiment = load_experiment("hh-node", overrides_of(seeds[0]))
    data = family.load_data(experiment, Path(path))
    members, objectives, trials = [], [], []
    for seed in seeds:
        trial = family.own_trial(load_experiment("hh-node", overrides_of(seed)), data)
        torch.manual_seed(seed)
        members.append(family.build(trial.arguments))
        objectives.append(NodeObjective(data, trial))
        trials.append(trial)
    if any(t.learning.get("collocation_rounds", 0) for t in trials):
        raise ValueError(f"{variant}: the batched path trains no collocation rounds")
    stacked = Stacked(members)
    objective = BatchedObjective(objectives[0])
    with torch.no_grad():
        ours = objective.seed_losses(stacked)
    for k, (member, single) in enumerate(zip(members, objectives, strict=True)):
        want = float(single.loss(member, None).detach())
        if not np.isclose(float(ours[k]), want, rtol=1e-4):
            raise AssertionError(f"{variant} seed {seeds[k]}: batched loss {float(ours[k])} "
                                 f"against NodeObjective's {want}")  # fmt: skip
    epochs = trials[0].training.epochs
    settings = TrainSettings.from_config(trials[0].training, eval_splits=(), final_splits=(),
                                         eval_every=epochs, device="cpu")  # fmt: skip
    began = time.perf_counter()
    train(stacked, objective, settings, family="node", arguments={})
    seconds = (time.perf_counter() - began) / len(seeds)
    rows = []
    for k, seed in enumerate(seeds):
        members[k].load_state_dict(stacked.member(k))
        row: dict[str, Any] = {"variant": variant, "seed": seed, "seconds": seconds,
                               "iterations": f"{epochs}", "batched": len(seeds)}  # fmt: skip
        score(members[k], objectives[k], data, row)
        rows.append(row)
    return rows
