"""The Fourier neural operator of the paper, its analytic parameter count and the parameter caps.

Input: the stimulus I_app on a uniform grid plus a grid channel linspace(0, 1,
n_t), (batch, 2, n_t). Output: every state variable, (batch, n_states, n_t).

    P: pointwise 2 -> 128 -> d_v (activation between)
    pad n_pad zeros on the right
    L Fourier layers (Classic or MLP; no activation after the last)
    crop the padding
    Q: pointwise d_v -> 128 -> n_states (activation between)
"""

from __future__ import annotations

import torch
from torch import nn

from ionops.models.fno_arch import (
    ACTIVATIONS,
    LAYER_KINDS,
    LIFT_HIDDEN,
    PROJECT_HIDDEN,
    SPECTRAL_BUDGET,
    FNOArchitecture,
    budget_k_max,
    flops_per_sample,
    parameter_count,
    total_cap_k_max,
    validate,
)
from ionops.models.layers import FourierLayer, PointwiseMLP, spectral_width

__all__ = [
    "ACTIVATIONS",
    "FNO",
    "LAYER_KINDS",
    "SPECTRAL_BUDGET",
    "FNOArchitecture",
    "budget_k_max",
    "flops_per_sample",
    "parameter_count",
    "total_cap_k_max",
    "validate",
]


class FNO(nn.Module):
    """The paper's FNO: (batch, 2, n_t) stimulus and grid -> (batch, n_states, n_t) states."""

    def __init__(self, arch: FNOArchitecture) -> None:
        super().__init__()
        validate(arch)
        self.arch = arch
        self.lift = PointwiseMLP(arch.in_channels, LIFT_HIDDEN, arch.d_v, arch.activation)
        self.layers = nn.ModuleList(
            FourierLayer(arch.d_v, arch.k_max, arch.layer, arch.activation,
                         last=index == arch.n_layers - 1)
            for index in range(arch.n_layers)
        )  # fmt: skip
        self.project = PointwiseMLP(arch.d_v, PROJECT_HIDDEN, arch.n_states, arch.activation)

    def forward(self, stimulus: torch.Tensor) -> torch.Tensor:
        """``stimulus`` (batch, n_t) -> states (batch, n_states, n_t).

        A network held in bfloat16 (predictions in bfloat16 on the CPU) computes in it
        throughout, autocast or not: the stimulus is cast to it.
        """
        if self.lift[0].weight.dtype == torch.bfloat16:
            with torch.autocast(stimulus.device.type, enabled=False):
                return self._forward(stimulus.to(torch.bfloat16))
        return self._forward(stimulus)

    def _forward(self, stimulus: torch.Tensor) -> torch.Tensor:
        n_t = stimulus.shape[-1]
        if self.arch.k_max > (n_t + self.arch.n_pad) // 2 + 1:
            validate(self.arch, n_t)
        grid = torch.linspace(0.0, 1.0, n_t, device=stimulus.device, dtype=stimulus.dtype)
        v = self._lift(stimulus, grid)
        n = n_t + self.arch.n_pad  # the transforms' length; the activations may be wider
        width = spectral_width(n, stimulus.device)
        if width > n_t:
            v = nn.functional.pad(v, (0, width - n_t))
        for layer in self.layers:
            v = layer(v, n)
        # projected on every point carried, then cropped: a product over a cropped view
        # (rows of n_t out of width) ran twice as long as over the whole rows
        out: torch.Tensor = self.project(v)
        return out[..., :n_t] if width > n_t else out

    def _lift(self, stimulus: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """P at every point: stimulus (b, n_t) and grid (n_t,) -> (b, d_v, n_t).

        P is pointwise: a point's lifted value depends on its stimulus and grid values
        only. So without gradients the points where a sample's stimulus has its column's
        most common value across the batch (a stimulus at rest, most of a beat) are lifted
        once per column, and only the others point by point: the same values (to rounding)
        for a fraction of the cost, which was a sixth of a prediction of ORd.
        """
        batch, n_t = stimulus.shape
        if torch.is_grad_enabled() or batch < 4:
            return self.lift(torch.stack((stimulus, grid.expand(batch, n_t)), dim=1))
        common = stimulus.mode(dim=0).values  # (n_t,)
        own = stimulus != common  # (b, n_t): the points lifted one by one
        count = int(own.sum())
        if 2 * count > batch * n_t:
            return self.lift(torch.stack((stimulus, grid.expand(batch, n_t)), dim=1))
        v = self.lift(torch.stack((common, grid))[None]).expand(batch, -1, -1).contiguous()
        if count:
            rows, columns = own.nonzero(as_tuple=True)
            points = torch.stack((stimulus[rows, columns], grid[columns]))[None]  # (1, 2, count)
            v[rows, :, columns] = self.lift(points)[0].T
        return v

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
