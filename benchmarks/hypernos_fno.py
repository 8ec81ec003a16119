"""The FNO of the paper's own library (HyperNOs, ``neural_operators/FNO/FNO.py``), restated.

HyperNOs' wheel on PyPI (0.1.3, Python >= 3.12) does not ship its FNO module,
so the speed benchmark keeps this re-statement of its 1D forward pass, written
here from the published source; tests/test_hypernos_anchor.py checks its
parameter counts against the paper's and its output against ionops' FNO.

What it computes, as HyperNOs does:

- the input is channels-last (batch, n_t, 1); the grid linspace(0, 1) goes
  before the stimulus; lifting and projection are ``nn.Linear`` maps on
  channels-last tensors (2 -> 128 -> d_v, d_v -> 128 -> n_states), permuted
  to channels-first around the Fourier layers;
- n_pad zeros on the right, cropped after the last layer;
- each Fourier layer transforms the whole (padded) length with ``rfft``,
  fills a zero spectrum of n // 2 + 1 modes, mixes the first k_max modes with
  one complex weight set and the last k_max with another (``einsum``), and
  transforms back with ``irfft``; its W and MLP are kernel-1 ``Conv1d``;
- "Zongyi" (the paper's MLP layer): x = MLP(K x) + W x; "Classic": x = K x + W x;
  the activation after every layer but the last;
- parameters counted as PyTorch's ``numel`` counts them, a complex weight as one.

Left out: the runtime type checks (jaxtyping, beartype) on every call, which
cost microseconds against the milliseconds of the layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

LIFT_HIDDEN = 128


def _act(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "gelu":
        return F.gelu(x)
    if name == "leaky_relu":
        return F.leaky_relu(x)
    if name == "relu":
        return F.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    raise ValueError(f"activation {name!r} is not one of HyperNOs' (relu, gelu, tanh, leaky_relu)")


class _Spectral(nn.Module):
    def __init__(self, channels: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (channels * channels)
        shape = (channels, channels, modes)
        self.low = nn.Parameter(scale * torch.rand(*shape, dtype=torch.cfloat))
        self.high = nn.Parameter(scale * torch.rand(*shape, dtype=torch.cfloat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft(x)
        out = torch.zeros(x.shape[0], self.low.shape[1], x.shape[-1] // 2 + 1,
                          dtype=torch.cfloat, device=x.device)  # fmt: skip
        k = self.modes
        out[:, :, :k] = torch.einsum("bim,iom->bom", spectrum[:, :, :k], self.low)
        out[:, :, -k:] = torch.einsum("bim,iom->bom", spectrum[:, :, -k:], self.high)
        return torch.fft.irfft(out, n=x.shape[-1])


class HyperNOsFNO(nn.Module):
    """(batch, n_t, 1) stimulus -> (batch, n_t, n_states), as HyperNOs' ``FNO(problem_dim=1)``."""

    def __init__(self, d_v: int, n_layers: int, k_max: int, activation: str, n_pad: int,
                 layer: str, n_states: int) -> None:  # fmt: skip
        super().__init__()
        self.act, self.n_pad, self.layer = activation, n_pad, layer
        self.lift = nn.ModuleList([nn.Linear(2, LIFT_HIDDEN), nn.Linear(LIFT_HIDDEN, d_v)])
        self.integrals = nn.ModuleList(_Spectral(d_v, k_max) for _ in range(n_layers))
        self.ws = nn.ModuleList(nn.Conv1d(d_v, d_v, 1) for _ in range(n_layers))
        self.mlps = nn.ModuleList(
            nn.ModuleList([nn.Conv1d(d_v, d_v, 1), nn.Conv1d(d_v, d_v, 1)])
            for _ in range(n_layers if layer == "mlp" else 0)
        )
        self.project = nn.ModuleList(
            [nn.Linear(d_v, LIFT_HIDDEN), nn.Linear(LIFT_HIDDEN, n_states)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, n_t, _ = x.shape
        grid = torch.linspace(0.0, 1.0, n_t, dtype=x.dtype).reshape(1, n_t, 1).repeat(batch, 1, 1)
        v = torch.cat((grid.to(x.device), x), dim=-1)
        v = self.lift[1](_act(self.act, self.lift[0](v))).permute(0, 2, 1)
        if self.n_pad:
            v = F.pad(v, [0, self.n_pad])
        last = len(self.integrals) - 1
        for i, (spectral, w) in enumerate(zip(self.integrals, self.ws, strict=True)):
            kv = spectral(v)
            if self.layer == "mlp":
                first, second = self.mlps[i]  # type: ignore[misc]
                kv = second(_act(self.act, first(kv)))
            v = kv + w(v)
            if i < last:
                v = _act(self.act, v)
        if self.n_pad:
            v = v[..., : -self.n_pad]
        v = v.permute(0, 2, 1)
        out: torch.Tensor = self.project[1](_act(self.act, self.project[0](v)))
        return out

    def parameter_count(self) -> int:
        """As HyperNOs reports it: ``numel`` summed, a complex weight counted once."""
        return sum(p.numel() for p in self.parameters())


def from_ionops(model: Any) -> HyperNOsFNO:
    """The anchor with ionops' weights: the same function (the high modes' weights zero)."""
    arch = model.arch
    anchor = HyperNOsFNO(arch.d_v, arch.n_layers, arch.k_max, arch.activation, arch.n_pad,
                         arch.layer, arch.n_states)  # fmt: skip
    with torch.no_grad():
        first, second = model.lift[0], model.lift[2]
        anchor.lift[0].weight.copy_(first.weight[:, [1, 0]])  # ionops: (stimulus, grid)
        anchor.lift[0].bias.copy_(first.bias)
        anchor.lift[1].weight.copy_(second.weight)
        anchor.lift[1].bias.copy_(second.bias)
        for i, layer in enumerate(model.layers):
            weight = torch.view_as_complex(layer.spectral.weight.detach().contiguous())
            anchor.integrals[i].low.copy_(weight.permute(1, 2, 0))
            anchor.integrals[i].high.zero_()
            anchor.ws[i].weight.copy_(layer.linear.weight[:, :, None])
            anchor.ws[i].bias.copy_(layer.linear.bias)
            if layer.mlp is not None:
                for conv, linear in zip(anchor.mlps[i], (layer.mlp[0], layer.mlp[2]), strict=True):
                    conv.weight.copy_(linear.weight[:, :, None])
                    conv.bias.copy_(linear.bias)
        for mine, theirs in zip((model.project[0], model.project[2]), anchor.project, strict=True):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    return anchor
