"""Single building blocks of the FNO: activations, the spectral convolution, pointwise MLPs.

Tensors are channels-first: (batch, channels, n_t).
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = ("tanh", "relu", "gelu", "leaky_relu")


def activation(name: str) -> nn.Module:
    """tanh, relu, gelu (exact erf form) or leaky_relu (slope 0.01)."""
    if name == "tanh":
        return nn.Tanh()
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU(approximate="none")
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    raise ValueError(f"activation = {name!r}; choose one of {', '.join(ACTIVATIONS)}")


class Pointwise(nn.Linear):
    """A linear map of the channels at every time point: (b, c_in, n) -> (b, c_out, n).

    Computed as a kernel-1 convolution, which works on channels-first data in
    place (a matmul would first copy the activations into another layout).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv1d(x, self.weight[:, :, None], self.bias)


class PointwiseMLP(nn.Sequential):
    """Two pointwise linear maps with the activation between: c_in -> hidden -> c_out."""

    def __init__(self, c_in: int, hidden: int, c_out: int, act: str) -> None:
        super().__init__(Pointwise(c_in, hidden), activation(act), Pointwise(hidden, c_out))


class SpectralConv1d(nn.Module):
    """K v: rfft along time, multiply the first ``k_max`` modes by complex weights, irfft.

    The weights (d_v, d_v, k_max) complex are stored as real pairs
    (d_v, d_v, k_max, 2), so a parameter count counts each complex weight as
    two real parameters. Modes above ``k_max`` are zero in the output.
    """

    def __init__(self, channels: int, k_max: int) -> None:
        super().__init__()
        self.channels, self.k_max = channels, k_max
        scale = 1.0 / (channels * channels)
        self.weight = nn.Parameter(scale * torch.rand(k_max, channels, channels, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        modes = torch.fft.rfft(x, dim=-1)[..., : self.k_max]  # (b, c, k)
        weight = torch.view_as_complex(self.weight)  # (k, c_in, c_out)
        # one (b x c_in) @ (c_in x c_out) product per mode
        mixed = torch.matmul(modes.permute(2, 0, 1), weight).permute(1, 2, 0)  # (b, c_out, k)
        return torch.fft.irfft(mixed, n=n, dim=-1)


class FourierLayer(nn.Module):
    """One Fourier layer: Classic v' = s(W v + b + K v); MLP v' = s(W v + b + MLP(K v)).

    ``last`` omits the activation (none after the final Fourier layer).
    """

    def __init__(self, d_v: int, k_max: int, kind: str, act: str, last: bool) -> None:
        super().__init__()
        self.spectral = SpectralConv1d(d_v, k_max)
        self.linear = Pointwise(d_v, d_v)
        self.mlp = PointwiseMLP(d_v, d_v, d_v, act) if kind == "mlp" else None
        self.act = nn.Identity() if last else activation(act)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        kv = self.spectral(v)
        if self.mlp is not None:
            kv = self.mlp(kv)
        return self.act(self.linear(v) + kv)
