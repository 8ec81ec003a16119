"""Single building blocks of the surrogates: activations, the spectral convolution, MLPs.

The FNO's blocks work on channels-first tensors (batch, channels, n_t); the
dense MLP on feature rows (batch, features).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": lambda: nn.GELU(approximate="none"),
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
}
ACTIVATIONS = tuple(_ACTIVATIONS)


def activation(name: str) -> nn.Module:
    """tanh, relu, gelu (exact erf form), leaky_relu (slope 0.01), elu, sigmoid or silu."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation = {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def activate_in_place(act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``act(x)`` written over ``x``, a fresh tensor that nothing else holds, without gradients.

    One activation-sized allocation less: for the FNO's 128-channel lifting and projection
    of ORd at batch 256 (10,080 points) that is 1.3 GB of the prediction's peak.
    """
    if isinstance(act, nn.Identity):
        return x
    if isinstance(act, nn.GELU):
        out: torch.Tensor = torch.ops.aten.gelu_(x, approximate=act.approximate)
        return out
    if isinstance(act, nn.LeakyReLU):
        return nn.functional.leaky_relu_(x, act.negative_slope)
    if isinstance(act, nn.ELU):
        return nn.functional.elu_(x, act.alpha)
    in_place: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
        nn.ReLU: torch.relu_,
        nn.Tanh: torch.tanh_,
        nn.Sigmoid: torch.sigmoid_,
        nn.SiLU: lambda t: nn.functional.silu(t, inplace=True),
    }
    return in_place[type(act)](x) if type(act) in in_place else act(x)


def _product(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``weight`` (c_out, c_in) at every point of ``x`` (b, c_in, n): one matrix product per
    sample with the weight broadcast (stride 0), channels-first in and out, no copies
    (torch.matmul would transpose the input into rows and return a transposed view)."""
    return torch.bmm(weight.expand(x.shape[0], -1, -1), x)


def _product_gradients(x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor,
                       input_grad: bool) -> tuple[torch.Tensor | None, ...]:  # fmt: skip
    """The gradients of ``weight x + bias`` (see :func:`_product`) by x, weight and bias."""
    grad_x = _product(weight.T, grad) if input_grad else None
    return grad_x, torch.bmm(grad, x.transpose(1, 2)).sum(0), grad.sum((0, 2))


class _PointwiseProduct(torch.autograd.Function):
    """weight x + bias at every point, forward and backward by batched matrix products.

    oneDNN's kernel-1 convolution, the obvious way, took twice as long for forward and
    backward together (its backward is slow) at the FNO's training shapes, batch 32:
    64 channels on 1272 points 45 against 22 ms, 224 on 1280 294 against 146 (two cores).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
                ) -> torch.Tensor:  # fmt: skip
        ctx.save_for_backward(x, weight)
        return _product(weight, x).add_(bias[:, None])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        return _product_gradients(x, weight, grad, ctx.needs_input_grad[0])


class Pointwise(nn.Linear):
    """A linear map of the channels at every time point: (b, c_in, n) -> (b, c_out, n), as
    batched matrix products (:func:`_product`; with gradients :class:`_PointwiseProduct`)."""

    FEW = 8  # inputs of so few channels are not worth recomputing an activation for

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            out: torch.Tensor = _PointwiseProduct.apply(x, self.weight, self.bias)
            return out
        return _product(self.weight, x).add_(self.bias[:, None])


class _ActivationThenPointwise(torch.autograd.Function):
    """pointwise(act(h)) that keeps only h for the backward pass and recomputes act(h) there.

    Autograd would keep both h (for the activation's derivative) and act(h)
    (for the weight's gradient); recomputing the activation, an elementwise
    pass, saves one hidden-sized tensor per MLP (the largest of the FNO's
    lifting and projection) at the cost of that pass.
    """

    @staticmethod
    def forward(
        ctx: Any, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, act: nn.Module
    ) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.act = act
        return _product(weight, act(h)).add_(bias[:, None])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, weight = ctx.saved_tensors
        with torch.enable_grad():
            h = h.detach().requires_grad_(True)
            g = ctx.act(h)
        grad_g, grad_weight, grad_bias = _product_gradients(g.detach(), weight, grad, True)
        (grad_h,) = torch.autograd.grad(g, h, grad_g)
        return grad_h, grad_weight, grad_bias, None


class PointwiseMLP(nn.Sequential):
    """Two pointwise linear maps with the activation between: c_in -> hidden -> c_out.

    Training keeps the hidden activation's input only (:class:`_ActivationThenPointwise`).
    """

    def __init__(self, c_in: int, hidden: int, c_out: int, act: str) -> None:
        super().__init__(Pointwise(c_in, hidden), activation(act), Pointwise(hidden, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and x.device.type == "cpu" and not torch.is_grad_enabled():
            return self._as_rows(x)
        return self.finish(self[0](x))

    def _as_rows(self, x: torch.Tensor) -> torch.Tensor:
        """The points as rows (b n, c_in), each map one oneDNN product with its bias fused in;
        the result a channels-first view. For bfloat16 on the CPU: ORd's projection of 16
        samples took 2.8 instead of 3.7 ms (in float32 MKL's channels-first products win,
        3.8 against 4.9)."""
        first, act, second = self
        assert isinstance(first, Pointwise) and isinstance(second, Pointwise)
        b, c, n = x.shape
        rows = x.transpose(1, 2).reshape(b * n, c)
        h = activate_in_place(act, nn.functional.linear(rows, first.weight, first.bias))
        out = nn.functional.linear(h, second.weight, second.bias)
        return out.view(b, n, -1).transpose(1, 2)

    def finish(self, h: torch.Tensor) -> torch.Tensor:
        """The MLP after its first map: the activation and the second map of ``h``."""
        _, act, second = self
        assert isinstance(second, Pointwise)
        if torch.is_grad_enabled() and second.in_features > Pointwise.FEW:
            out: torch.Tensor = _ActivationThenPointwise.apply(h, second.weight, second.bias, act)
            return out
        result: torch.Tensor = second(
            act(h) if torch.is_grad_enabled() else activate_in_place(act, h)
        )
        return result


def largest_prime_factor(n: int) -> int:
    factor, largest = 2, 1
    while factor * factor <= n:
        while n % factor == 0:
            largest, n = factor, n // factor
        factor += 1
    return max(largest, n)


ALIGN = 8  # floats: the rows of the DFT path's activations are a multiple of 32 bytes long


def by_dft(n: int, device: torch.device) -> bool:
    """Whether a spectral convolution of ``n`` points runs as a truncated DFT (see
    :class:`SpectralConv1d`): on the CPU, where ``n`` has a prime factor above 7."""
    return device.type == "cpu" and largest_prime_factor(n) > 7


def spectral_width(n: int, device: torch.device) -> int:
    """How many points to carry the activations of an ``n``-point transform on: on the DFT
    path ``n`` rounded up to a multiple of :data:`ALIGN` (matrix products that write rows of
    an odd length ran 1.5x slower, 10095 points against 10096), the points past ``n``
    ignored by every transform; else ``n``."""
    return -(-n // ALIGN) * ALIGN if by_dft(n, device) else n


@functools.lru_cache(maxsize=32)
def _dft_bases(
    n: int, k_max: int, width: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """The real DFT of length ``n`` truncated to its first ``k_max`` modes as one matrix
    (width, 2 k_max): [cos | -sin], real parts then imaginary parts; and its inverse (2 k_max,
    width) with irfft's weights (1 for the mean and the Nyquist mode, 2 otherwise, over n):
    [cos; -sin] weighted. Rows and columns past ``n`` are zero: those points are ignored
    on the way in and come out zero."""
    t = torch.arange(n, dtype=torch.float64)
    k = torch.arange(k_max, dtype=torch.float64)
    angle = 2.0 * math.pi * torch.outer(t, k) / n  # (n, k)
    weight = torch.full((k_max,), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if n % 2 == 0 and k_max == n // 2 + 1:
        weight[-1] = 1.0
    cos, sin = torch.cos(angle), torch.sin(angle)
    forward = torch.cat([cos, -sin], dim=1)
    inverse = torch.cat([(cos * weight / n).T, -(sin * weight / n).T], dim=0)
    forward = nn.functional.pad(forward, (0, 0, 0, width - n))
    inverse = nn.functional.pad(inverse, (0, width - n))
    return tuple(b.to(device=device, dtype=dtype).contiguous() for b in (forward, inverse))  # type: ignore[return-value]


class SpectralConv1d(nn.Module):
    """K v: rfft along time, multiply the first ``k_max`` modes by complex weights, irfft.

    The weights (d_v, d_v, k_max) complex are stored as real pairs
    (k_max, d_v, d_v, 2), so a parameter count counts each complex weight as
    two real parameters. Modes above ``k_max`` are zero in the output.

    On the CPU, when the transform length has a prime factor above 7 (where
    FFTs are slow: 1265 points cost five times 1260), the retained modes are
    computed as a truncated DFT by real matrix products (one each way), the same
    transform at a cost that does not depend on the length's factors.

    ``bias`` (channels,), given, is added to every output point for free: n times it
    is added to the mean mode, which the inverse transform spreads evenly over the n points.
    ``length``, given, is the transform's length where the input carries more points
    (:func:`spectral_width`): those are ignored, and come out zero.
    ``then`` (c, channels), given, is a pointwise linear map applied to the result, W K v: a
    map of the channels commutes with the transform along time, so it is taken on the
    retained modes, k_max columns instead of n (``bias`` then has its c channels).
    """

    def __init__(self, channels: int, k_max: int) -> None:
        super().__init__()
        self.channels, self.k_max = channels, k_max
        scale = 1.0 / (channels * channels)
        self.weight = nn.Parameter(scale * torch.rand(k_max, channels, channels, 2))
        self._cached: tuple[tuple[int, int, torch.dtype], torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None,
                length: int | None = None, then: torch.Tensor | None = None
                ) -> torch.Tensor:  # fmt: skip
        n = length or x.shape[-1]
        autocast = torch.is_autocast_enabled(x.device.type)
        with torch.autocast(x.device.type, enabled=False):
            if x.dtype == torch.bfloat16 and not autocast and by_dft(n, x.device):
                # a network held in bfloat16 on the CPU: the DFT's two products in bfloat16
                # (oneDNN's AMX kernels, float32 accumulation), the modes mixed in float32
                return self._by_dft(x, bias, n, then)
            # FFTs never in half precision: cuFFT has no bfloat16 (and half only for powers
            # of two), and the retained modes are where precision matters. Under autocast the
            # result stays float32; a network held in half precision gets its own dtype back.
            half = x.dtype in (torch.float16, torch.bfloat16)
            out = self._spectral(x.float() if half else x, bias, n, then)
            return out if autocast or not half else out.to(x.dtype)

    def _spectral(self, x: torch.Tensor, bias: torch.Tensor | None, n: int,
                  then: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        if by_dft(n, x.device):
            return self._by_dft(x, bias, n, then)
        width = x.shape[-1]
        modes = torch.fft.rfft(x[..., :n], dim=-1)[..., : self.k_max]  # (b, c, k)
        weight = torch.view_as_complex(self.weight.to(x.dtype))  # (k, c_in, c_out)
        # one (b x c_in) @ (c_in x c_out) product per mode
        mixed = torch.matmul(modes.permute(2, 0, 1), weight).permute(1, 2, 0)  # (b, c_out, k)
        if then is not None:
            mixed = torch.matmul(then.to(mixed.dtype), mixed)
        if bias is not None:
            mixed = torch.cat([mixed[..., :1] + n * bias[:, None], mixed[..., 1:]], dim=-1)
        out = torch.fft.irfft(mixed, n=n, dim=-1)
        return out if width == n else nn.functional.pad(out, (0, width - n))

    def _by_dft(self, x: torch.Tensor, bias: torch.Tensor | None = None, n: int | None = None,
                then: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        b, c, width = x.shape
        n = n or width
        k = self.k_max
        forward, inverse = _dft_bases(n, k, width, x.device, x.dtype)
        block = self._block()  # float32 at least
        # the rfft's first k_max modes, real and imaginary
        modes = (x @ forward).to(block.dtype).view(b, c, 2, k)
        # per mode (re, im) @ [[W_re, W_im], [-W_im, W_re]] = (re W_re - im W_im, re W_im + im W_re)
        mixed = modes.permute(3, 0, 2, 1).reshape(k, b, 2 * c) @ block  # (k, b, 2 c_out)
        mixed = mixed.view(k, b, 2, -1).permute(1, 3, 2, 0).reshape(b, -1, 2 * k)
        if then is not None:
            mixed = _product(then.to(mixed.dtype), mixed)  # real and imaginary parts alike
        if bias is not None:
            mixed[..., 0] += n * bias
        # irfft of modes 0..k_max-1 (the imaginary parts of the mean and Nyquist drop out)
        return mixed.to(x.dtype) @ inverse

    def _block(self) -> torch.Tensor:
        """The weights as real blocks (k, 2 c_in, 2 c_out), in float32 at least (the modes are
        mixed in float32 when the network is held in half precision); kept between calls
        without gradients until the weights change."""
        key = (self.weight._version, self.weight.data_ptr(), self.weight.dtype)
        if not torch.is_grad_enabled() and self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        weight = self.weight.to(torch.promote_types(self.weight.dtype, torch.float32))
        w_real, w_imag = weight[..., 0], weight[..., 1]  # (k, c_in, c_out)
        block = torch.cat([torch.cat([w_real, w_imag], 2), torch.cat([-w_imag, w_real], 2)], 1)
        self._cached = (key, block) if not torch.is_grad_enabled() else None
        return block


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

    def forward(self, v: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """``v`` (b, d_v, width) -> the same; ``length``: the transform's (SpectralConv1d)."""
        predicting = not (torch.is_grad_enabled() or torch.is_autocast_enabled(v.device.type))
        if self.mlp is None and predicting:
            # Classic, predicting: K v + b (the bias through the mean mode), then W v added in
            # place by the product that computes it: two passes over the layer less
            out = self.spectral(v, self.linear.bias, length)
            out.baddbmm_(self.linear.weight.expand(v.shape[0], -1, -1), v)
            return activate_in_place(self.act, out)
        if self.mlp is None:
            kv = self.spectral(v, length=length)
        else:
            # the MLP's first map on the modes (SpectralConv1d's then): a third of the layer's
            # matrix products at every point saved, and one activation-sized tensor
            first, act, second = self.mlp
            assert isinstance(first, Pointwise) and isinstance(second, Pointwise)
            h = self.spectral(v, first.bias, length, then=first.weight)
            if predicting:  # W2 s(h) + W v + b2 + b, W v accumulated by its product
                out = _product(second.weight, activate_in_place(act, h))
                del h
                out.baddbmm_(self.linear.weight.expand(v.shape[0], -1, -1), v)
                out.add_((second.bias + self.linear.bias)[:, None])
                return activate_in_place(self.act, out)
            kv = self.mlp.finish(h)
        # W v + b is a new tensor that its backward does not need: add in place (one pass less)
        out = self.linear(v).add_(kv)
        return self.act(out) if torch.is_grad_enabled() else activate_in_place(self.act, out)


class DenseMLP(nn.Sequential):
    """A feed-forward network: (batch, n_in) -> (batch, n_out).

    One hidden layer per entry of ``widths``, each a linear map followed by
    its own activation (``activations``, one per hidden layer), then a linear
    output layer.
    """

    def __init__(self, n_in: int, widths: tuple[int, ...], activations: tuple[str, ...],
                 n_out: int) -> None:  # fmt: skip
        if len(widths) != len(activations):
            raise ValueError(f"{len(widths)} widths but {len(activations)} activations")
        layers: list[nn.Module] = []
        previous = n_in
        for width, name in zip(widths, activations, strict=True):
            layers += [nn.Linear(previous, width), activation(name)]
            previous = width
        layers.append(nn.Linear(previous, n_out))
        super().__init__(*layers)
