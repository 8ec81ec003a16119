"""The neural-ODE family's networks (paper 002): a vector field f_theta(z, t) and a PINN z(t).

:class:`VectorField` is the paper's MLP: hidden layers of Linear, LayerNorm (optional) and
tanh; inputs (the states and t) and outputs (dz/dt) scaled by the training window's
statistics, held as buffers so that a checkpoint carries them; its output layer is linear
(the paper's) or sinh (``output``, see :data:`OUTPUTS`). Its parameters are in the
order :mod:`ionops.models.node_kernels` reads a flat vector, so that training can integrate
it with the compiled Heun kernels (:func:`heun_rollout`) or with torch (:func:`heun`,
torchdiffeq's solvers), which give the same numbers.

:class:`TimeNetwork` is the vanilla PINN of the paper's baselines: the states as a function
of t alone, scaled the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

# the field's output layer g, f = g(network) * out_std + out_mean: the identity (the paper's)
# or sinh, whose output spans rates orders of magnitude apart in a few units (with
# out_std the rate where it turns from linear to exponential)
OUTPUTS = ("linear", "sinh")


def _scaling(module: nn.Module, n_states: int, scaling: dict[str, Any] | None) -> None:
    zeros, ones = np.zeros(n_states), np.ones(n_states)
    defaults = {"in_mean": zeros, "in_std": ones, "t_mean": 0.0, "t_std": 1.0,
                "out_mean": zeros, "out_std": ones}  # fmt: skip
    for name, default in defaults.items():
        value = (scaling or {}).get(name, default)
        module.register_buffer(name, torch.as_tensor(np.asarray(value, dtype=np.float64)))


class _Hidden(nn.Module):
    """Linear layers, each followed by LayerNorm (optional) and tanh."""

    def __init__(self, n_in: int, widths: Sequence[int], n_out: int, layer_norm: bool) -> None:
        super().__init__()
        self.layer_norm = bool(layer_norm)
        self.widths = [int(w) for w in widths]
        layers: list[nn.Module] = []
        fan_in = n_in
        for width in self.widths:
            layers.append(nn.Linear(fan_in, width))
            if self.layer_norm:
                layers.append(nn.LayerNorm(width))
            layers.append(nn.Tanh())
            fan_in = width
        layers.append(nn.Linear(fan_in, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x.to(self.dtype))
        return out

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype


class _Scaled(nn.Module):
    """A network holding the window's scalings as buffers (see :func:`_scaling`)."""

    in_mean: torch.Tensor
    in_std: torch.Tensor
    t_mean: torch.Tensor
    t_std: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor


class VectorField(_Scaled):
    """dz/dt = f_theta(z, t) in physical units; ``z`` (..., S), ``t`` (...) or a number."""

    def __init__(self, n_states: int, widths: Sequence[int], layer_norm: bool = True,
                 scaling: dict[str, Any] | None = None,
                 output: str = "linear") -> None:  # fmt: skip
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output = {output!r}: use one of {', '.join(OUTPUTS)}")
        self.n_states = n_states
        self.output = output
        self.hidden = _Hidden(n_states + 1, widths, n_states, layer_norm)
        _scaling(self, n_states, scaling)

    @property
    def sinh(self) -> bool:
        return self.output == "sinh"

    def forward(self, z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return scaled_field(self, self.sinh, self.hidden, z, t)

    def flat(self) -> np.ndarray:
        """The parameters as one float64 vector, in the kernels' order (on the CPU, where the
        kernels run, whatever the network's device)."""
        parameters = [p.detach().reshape(-1) for p in self.parameters()]
        return torch.cat(parameters).double().cpu().numpy()

    def scaling_arrays(self) -> tuple[Any, ...]:
        """(in_mean, in_std, t_mean, t_std, out_mean, out_std, sinh) as the kernels take
        them."""
        values: list[Any] = [getattr(self, n).double().cpu().numpy() for n in
                             ("in_mean", "in_std", "t_mean", "t_std", "out_mean",
                              "out_std")]  # fmt: skip
        values[2], values[3] = float(values[2]), float(values[3])
        return (*values, self.sinh)


def scaled_field(scaled: _Scaled, sinh: bool, network: Callable[[torch.Tensor], torch.Tensor],
                 z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:  # fmt: skip
    """A :class:`VectorField`'s f(z, t) with ``network`` as its hidden layers and
    ``scaled``'s scalings (the benchmark's seeds side by side reuse it with theirs)."""
    t = torch.as_tensor(t, dtype=z.dtype, device=z.device).expand(z.shape[:-1])
    x = torch.cat([(z - scaled.in_mean) / scaled.in_std,
                   ((t - scaled.t_mean) / scaled.t_std).unsqueeze(-1)], dim=-1)  # fmt: skip
    # computed in the network's precision, answered in the request's
    raw = network(x.to(scaled.in_mean.dtype))
    out = (torch.sinh(raw) if sinh else raw) * scaled.out_std + scaled.out_mean
    return out.to(z.dtype)


class TimeNetwork(_Scaled):
    """The vanilla PINN's z(t) in physical units, ``t`` (N,) -> (N, S)."""

    def __init__(self, n_states: int, widths: Sequence[int], layer_norm: bool = True,
                 scaling: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.n_states = n_states
        self.hidden = _Hidden(1, widths, n_states, layer_norm)
        _scaling(self, n_states, scaling)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = ((t - self.t_mean) / self.t_std).unsqueeze(-1)
        out = self.hidden(x.to(self.t_mean.dtype)) * self.in_std + self.in_mean
        return out.to(t.dtype)

    def with_rate(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z(t), dz/dt), each (N, S): the states as :meth:`forward` gives them and their
        rate by forward-mode differentiation through the layers, written out (one pass where
        reverse mode takes one per state; about 2x faster a PINN iteration). Both are
        differentiable in the parameters by autograd."""
        x = ((t - self.t_mean) / self.t_std).unsqueeze(-1).to(self.t_mean.dtype)
        x = x.to(self.hidden.dtype)
        dx = (1.0 / self.t_std).to(x.dtype).expand_as(x)  # d(input)/dt
        for module in self.hidden.net:
            if isinstance(module, nn.Linear):
                x, dx = module(x), dx @ module.weight.T
            elif isinstance(module, nn.LayerNorm):
                centred = x - x.mean(dim=-1, keepdim=True)
                inverse = torch.rsqrt(centred.pow(2).mean(dim=-1, keepdim=True) + module.eps)
                normed = centred * inverse
                d_centred = dx - dx.mean(dim=-1, keepdim=True)
                d_normed = inverse * (d_centred - normed * (normed * d_centred).mean(
                    dim=-1, keepdim=True))  # fmt: skip
                x, dx = module(x), d_normed * module.weight
            else:  # tanh
                x = module(x)
                dx = dx * (1.0 - x * x)
        states = x * self.in_std + self.in_mean
        return states.to(t.dtype), (dx * self.in_std).to(t.dtype)


def heun(field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z0: torch.Tensor,
         time: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Heun's method on the grid ``time`` (N,) from ``z0`` (..., S): (..., S, N), in torch."""
    out = [z0]
    z = z0
    for i in range(time.numel() - 1):
        dt = time[i + 1] - time[i]
        k1 = field(z, time[i])
        k2 = field(z + dt * k1, time[i + 1])
        z = z + 0.5 * dt * (k1 + k2)
        out.append(z)
    return torch.stack(out, dim=-1)


class _HeunRollout(torch.autograd.Function):
    """The compiled Heun rollout and its data loss, with the kernels' exact gradient."""

    @staticmethod
    def forward(ctx: Any, field: VectorField, z0: np.ndarray, time: np.ndarray,
                targets: np.ndarray, scale: np.ndarray,
                *parameters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        from ionops.models.node_kernels import heun_loss

        widths = np.array(field.hidden.widths, dtype=np.int64)
        kernel: Any = heun_loss  # a numba dispatcher: its signature is the kernel's
        loss, trajectory, grad = kernel(
            field.flat(), widths, field.hidden.layer_norm, z0, time, targets, scale,
            *field.scaling_arrays(), any(ctx.needs_input_grad[5:]),
        )  # fmt: skip
        first = parameters[0]
        ctx.pieces = [torch.as_tensor(piece, dtype=p.dtype, device=p.device).reshape(p.shape)
                      for piece, p in zip(np.split(grad, np.cumsum([p.numel() for p in
                                                                    parameters])[:-1]),
                                          parameters, strict=True)]  # fmt: skip
        return (torch.tensor(loss, dtype=first.dtype, device=first.device),
                torch.as_tensor(trajectory))  # fmt: skip

    @staticmethod
    def backward(ctx: Any, d_loss: torch.Tensor, d_trajectory: torch.Tensor) -> Any:
        return (None, None, None, None, None, *(d_loss * piece for piece in ctx.pieces))


def heun_rollout(field: VectorField, z0: np.ndarray, time: np.ndarray, targets: np.ndarray,
                 scale: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(data loss, trajectory (S, N)) of ``field`` integrated by Heun from ``z0`` over
    ``time`` by the compiled kernels; the loss is differentiable in the field's parameters
    (the trajectory is not). The loss is the kernels' data loss against ``targets`` (S, N),
    each state's error divided by ``scale``."""
    loss, trajectory = _HeunRollout.apply(field, z0, time, targets, scale, *field.parameters())
    return loss, trajectory
