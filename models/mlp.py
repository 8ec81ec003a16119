"""The MLP surrogate: physical inputs -> physical states, one activation per hidden layer.

    z = 2 (x - low) / (high - low) - 1          each input to [-1, 1]
    y = mean + std * DenseMLP(z)                 [+ x[:, :n_out] with ``residual``]

The scaling constants are constructor arguments (and buffers), so a
checkpoint rebuilds a network that takes and returns physical units.
"""

from __future__ import annotations

import torch
from torch import nn

from ionops.models.layers import DenseMLP
from ionops.models.mlp_arch import MLPArchitecture, parameter_count, shape_of

__all__ = ["MLP", "MLPArchitecture", "parameter_count", "shape_of"]


class MLP(nn.Module):
    """(batch, n_in) physical inputs -> (batch, n_out) physical outputs."""

    def __init__(self, arch: MLPArchitecture) -> None:
        super().__init__()
        if not arch.widths or len(arch.widths) != len(arch.activations):
            raise ValueError(
                f"{len(arch.widths)} widths and {len(arch.activations)} activations: give one "
                "activation per hidden layer, at least one layer"
            )
        self.arch = arch
        self.net = DenseMLP(arch.n_in, arch.widths, arch.activations, arch.n_out)
        low = torch.tensor(arch.in_low or [-1.0] * arch.n_in, dtype=torch.float32)
        high = torch.tensor(arch.in_high or [1.0] * arch.n_in, dtype=torch.float32)
        span = torch.where(high > low, high - low, torch.ones_like(high))
        self.register_buffer("in_center", (high + low) / 2)
        self.register_buffer("in_scale", 2.0 / span)
        self.register_buffer("out_mean", torch.tensor(arch.out_mean or [0.0] * arch.n_out))
        self.register_buffer("out_std", torch.tensor(arch.out_std or [1.0] * arch.n_out))

    in_center: torch.Tensor
    in_scale: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.in_center) * self.in_scale
        y = self.net(z) * self.out_std + self.out_mean
        if self.arch.residual:
            y = y + x[..., : self.arch.n_out]
        return y

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
