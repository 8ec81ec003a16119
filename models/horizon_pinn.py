"""The splitting PINN's baselines: one physics-informed network over the whole horizon.

``pinn`` is the vanilla PINN (Raissi et al.): z(t) = z0 + (t / T) * scale * N(t / T), a tanh
MLP of time alone that meets the initial state exactly, trained by Adam on the mean squared
residual (dz/dt - f(z, I(t))) * (1 ms) / scale at collocation points drawn anew each epoch.
``fpinn`` is the fractional PINN (Pang, Lu and Karniadakis): the same network on a fixed
uniform grid, the Caputo derivative of each fractional state by the L1 sum over the grid's
nodes, the ordinary states' derivatives by automatic differentiation. Neither knows about
resets: an integrate-and-fire or Izhikevich neuron's spikes are what such a network misses.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ionops.models.collocation import l1_weights
from ionops.models.splitting import Problem


def state_scales(start: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each state's size for the network's output and the residual: |z0|, at least 0.1."""
    return np.maximum(np.abs(start), 0.1)


class HorizonNetwork(nn.Module):
    """z(t) over [0, t_end] with z(0) = start exactly (states in physical units)."""

    start: torch.Tensor
    scale: torch.Tensor

    def __init__(self, widths: Sequence[int], start: Sequence[float], t_end: float) -> None:
        super().__init__()
        sizes = [1, *widths, len(start)]
        layers: list[nn.Module] = []
        for k, (into, out) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(into, out))
            if k < len(sizes) - 2:
                layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        start_array = np.asarray(start, dtype=np.float64)
        self.register_buffer("start", torch.tensor(start_array, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(state_scales(start_array), dtype=torch.float32))
        self.t_end = float(t_end)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """States (n, S) at times ``t`` (n,) in ms."""
        tau = (t / self.t_end)[:, None]
        return self.start + tau * self.scale * self.net(tau)


class HorizonResidual:
    """The physics loss of a :class:`HorizonNetwork` for one :class:`Problem`: ``pinn`` at
    random collocation points, ``fpinn`` on a uniform grid of ``points`` nodes (L1 for the
    Caputo states)."""

    def __init__(self, problem: Problem, method: str, points: int) -> None:
        model = problem.model
        assert model.vector_field is not None
        self.problem, self.method, self.points = problem, method, points
        self.parameters = problem.parameters.tolist()
        self.scale = torch.tensor(state_scales(problem.start), dtype=torch.float32)
        names = model.state_names
        self.caputo = sorted(names.index(s) for s in model.caputo) if method == "fpinn" else []
        self.grid = torch.linspace(0.0, problem.t_end, points + 1)[1:]
        self.lower: dict[int, torch.Tensor] = {}
        h = problem.t_end / points
        orders = model.derivative_orders(problem.parameters)
        for k in self.caputo:
            alpha = float(orders[k])
            w = l1_weights(alpha, points)
            gap = np.arange(points)[:, None] - np.arange(points)[None, :]
            matrix = np.where(gap >= 0, w[np.abs(gap)], 0.0) * h**-alpha / math.gamma(2 - alpha)
            self.lower[k] = torch.tensor(matrix, dtype=torch.float32)

    def currents(self, t: torch.Tensor) -> torch.Tensor:
        pieces = torch.tensor(self.problem.pieces, dtype=t.dtype)
        row = torch.searchsorted(pieces[:, 1].contiguous(), t.contiguous(), right=True)
        return pieces[row.clamp(max=len(pieces) - 1), 2]

    def collocation(self, generator: torch.Generator) -> torch.Tensor:
        if self.method == "fpinn":
            return self.grid
        return torch.rand(self.points, generator=generator) * self.problem.t_end

    def loss(self, network: HorizonNetwork, t: torch.Tensor) -> torch.Tensor:
        t = t.detach().requires_grad_(True)
        z = network(t)
        field = self.problem.model.vector_field
        assert field is not None
        values = field([z[:, k] for k in range(z.shape[1])], self.currents(t.detach()),
                       self.parameters)  # fmt: skip
        terms = []
        for k in range(z.shape[1]):
            if k in self.lower:
                increments = torch.diff(z[:, k], prepend=network.start[k : k + 1])
                derivative = self.lower[k] @ increments
            else:
                derivative = torch.autograd.grad(z[:, k].sum(), t, create_graph=True)[0]
            terms.append(((derivative - values[k]) / self.scale[k]) ** 2)
        return torch.stack(terms).mean()


def train_horizon(problem: Problem, method: str, widths: Sequence[int], points: int,
                  iterations: int, learning_rate: float, seed: int) -> HorizonNetwork:  # fmt: skip
    """A baseline trained by Adam (the benchmark's path; the family trains the same loss
    through the training loop)."""
    torch.manual_seed(seed)
    network = HorizonNetwork(widths, problem.start.tolist(), problem.t_end)
    residual = HorizonResidual(problem, method, points)
    optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(iterations):
        optimiser.zero_grad(set_to_none=True)
        loss = residual.loss(network, residual.collocation(generator))
        loss.backward()
        optimiser.step()
    return network
