"""One evaluation of the neural ODE's MLP field, forward and reverse, compiled: the pieces
:mod:`ionops.models.node_kernels` integrates.

The network (``theta`` flat, in :class:`ionops.models.node.VectorField`'s parameter order)::

    x0 = [(z - in_mean) / in_std, (t - t_mean) / t_std]
    per hidden layer: a = W x + b; y = LayerNorm(a) (gamma, beta; eps 1e-5) or a; x = tanh(y)
    f = g(W_out x + b_out) * out_std + out_mean,  g the identity or (``sinh``) sinh
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

EPS = 1e-5  # torch.nn.LayerNorm's
# tanh at every 1/32 from 0 to past 19.06, beyond which tanh is 1 in float64: with the
# addition formula and a short series (:func:`_tanh`) about three times faster than libm's
# tanh, which was a third of an evaluation, and within 3 ulp of it
TANH_STEP = 1.0 / 32
TANH_TABLE = np.tanh(np.arange(0.0, 20.0 + TANH_STEP, TANH_STEP))
TANH_LAST = (TANH_TABLE.size - 1) * TANH_STEP
# fastmath without its no-NaN and no-inf assumptions: the loops still vectorise
# (reassociation), and a NaN stays a NaN that the callers can see (and cannot turn into an
# index out of :data:`TANH_TABLE`)
FAST = {"reassoc", "contract", "nsz", "arcp", "afn"}


@njit(cache=True)
def _layout(widths: NDArray, n_in: int, n_out: int, layer_norm: bool) -> NDArray:
    """Offsets of each layer's W, b, gamma, beta in theta: (layers + 1, 4)."""
    layers = widths.size
    out = np.zeros((layers + 1, 4), dtype=np.int64)
    offset = 0
    fan_in = n_in
    for layer in range(layers + 1):
        width = widths[layer] if layer < layers else n_out
        out[layer, 0] = offset
        offset += width * fan_in
        out[layer, 1] = offset
        offset += width
        if layer < layers and layer_norm:
            out[layer, 2] = offset
            offset += width
            out[layer, 3] = offset
            offset += width
        fan_in = width
    return out


@njit(cache=True, fastmath=FAST, inline="always")
def _tanh(x):
    """tanh(x) = tanh(a + b) for a on the table's grid and |b| <= 1/64: (tanh a + tanh b) /
    (1 + tanh a tanh b), tanh b by its odd series to b^11 (truncation under 1e-25). NaN
    gives NaN, and the table's index is clamped as an integer: a NaN's index is whatever
    the conversion makes of it, never outside the table."""
    a = abs(x)
    if a > TANH_LAST:  # noqa: PLR1730 (min() need not keep a NaN)
        a = TANH_LAST
    j = min(max(math.floor(a / TANH_STEP + 0.5), 0), TANH_TABLE.size - 1)
    b = a - j * TANH_STEP
    b2 = b * b
    tb = b * (1.0 + b2 * (-1.0 / 3 + b2 * (2.0 / 15 + b2 * (-17.0 / 315 + b2 * (
        62.0 / 2835 - b2 * 1382.0 / 155925)))))  # fmt: skip
    ta = TANH_TABLE[j]
    return math.copysign((ta + tb) / (1.0 + ta * tb), x)


@njit(cache=True)
def _output(raw, sinh):
    """The output layer's g: sinh, or the identity."""
    return math.sinh(raw) if sinh else raw


@njit(cache=True)
def _slope(raw, sinh):
    """g' at ``raw``."""
    return math.cosh(raw) if sinh else 1.0


@njit(cache=True)
def _weights(theta, layout, layer, width, fan_in):
    """Layer ``layer``'s W as a (width, fan_in) view of theta: indexed in two dimensions, the
    loops over it vectorise (flat indexing into theta ran them about 4x slower)."""
    w0 = layout[layer, 0]
    return theta[w0 : w0 + width * fan_in].reshape((width, fan_in))


@njit(cache=True)
def _transposed(theta, widths, layout, n_in, n_out):
    """theta with each layer's W stored transposed, (fan_in, width), at the same offset."""
    out = theta.copy()
    fan_in = n_in
    for layer in range(widths.size + 1):
        width = widths[layer] if layer < widths.size else n_out
        w0 = layout[layer, 0]
        out[w0 : w0 + width * fan_in] = (
            _weights(theta, layout, layer, width, fan_in).T.copy().ravel()
        )
        fan_in = width
    return out


@njit(cache=True, fastmath=FAST)
def _forward(theta, widths, layout, layer_norm, x0, xhat, rstd, hidden, out):
    """One evaluation from the input x0; keeps each layer's xhat, 1/std and tanh output."""
    layers = widths.size
    fan_in = x0.size
    below = x0
    for layer in range(layers + 1):
        width = widths[layer] if layer < layers else out.size
        weights = _weights(theta, layout, layer, width, fan_in)
        bias = theta[layout[layer, 1] : layout[layer, 1] + width]
        pre = xhat[layer] if layer < layers else out
        for r in range(width):
            acc = bias[r]
            for c in range(fan_in):
                acc += weights[r, c] * below[c]
            pre[r] = acc
        if layer == layers:
            break
        if layer_norm:
            mean = 0.0
            for r in range(width):
                mean += pre[r]
            mean /= width
            var = 0.0
            for r in range(width):
                d = pre[r] - mean
                var += d * d
            inv = 1.0 / math.sqrt(var / width + EPS)
            rstd[layer] = inv
            gamma = theta[layout[layer, 2] : layout[layer, 2] + width]
            beta = theta[layout[layer, 3] : layout[layer, 3] + width]
            for r in range(width):
                pre[r] = (pre[r] - mean) * inv
                hidden[layer, r] = _tanh(gamma[r] * pre[r] + beta[r])
        else:
            for r in range(width):
                hidden[layer, r] = _tanh(pre[r])
        below = hidden[layer]
        fan_in = width


@njit(cache=True, fastmath=FAST)
def _backward(theta, theta_t, widths, layout, layer_norm, xhat, rstd, hidden, d_out, grad,
              d_x0, work, d_pre):  # fmt: skip
    """Back through one evaluation from ``d_out``, the cotangent of the network's raw output:
    return in ``d_x0`` the input's cotangent, keep in ``d_pre`` (layers + 1, widest) each
    layer's cotangent of W x + b (:func:`heun_loss` forms the weights' and biases'
    gradients from them afterwards, all steps at once), and accumulate LayerNorm's gamma and
    beta into ``grad``. ``work`` is (2, widest): a layer's output cotangent and its input's,
    in turn. ``theta_t`` is theta with each W transposed (:func:`_transposed`): W^T g as dot
    products along its rows vectorises where the layer is wide (a short dot product does
    not, and a narrow layer goes along W's rows instead)."""
    layers = widths.size
    side = 0
    current = work[side]
    width = d_out.size
    for r in range(width):
        current[r] = d_out[r]
    for layer in range(layers, -1, -1):
        fan_in = widths[layer - 1] if layer > 0 else d_x0.size
        below = work[1 - side]
        for r in range(width):
            d_pre[layer, r] = current[r]
        if width >= 16:
            transposed = _weights(theta_t, layout, layer, fan_in, width)
            for c in range(fan_in):
                acc = 0.0
                for r in range(width):
                    acc += transposed[c, r] * current[r]
                below[c] = acc
        else:
            weights = _weights(theta, layout, layer, width, fan_in)
            for c in range(fan_in):
                below[c] = 0.0
            for r in range(width):
                g = current[r]
                for c in range(fan_in):
                    below[c] += weights[r, c] * g
        if layer == 0:
            for c in range(fan_in):
                d_x0[c] = below[c]
            return
        # through tanh and the LayerNorm of the layer below
        hidden_layer = layer - 1
        for c in range(fan_in):
            h = hidden[hidden_layer, c]
            below[c] *= 1.0 - h * h
        if layer_norm:
            g0, e0 = layout[hidden_layer, 2], layout[hidden_layer, 3]
            gamma, d_gamma = theta[g0 : g0 + fan_in], grad[g0 : g0 + fan_in]
            d_beta = grad[e0 : e0 + fan_in]
            mean_d = 0.0
            mean_dx = 0.0
            for c in range(fan_in):
                dy = below[c]
                d_gamma[c] += dy * xhat[hidden_layer, c]
                d_beta[c] += dy
                dxh = dy * gamma[c]
                below[c] = dxh
                mean_d += dxh
                mean_dx += dxh * xhat[hidden_layer, c]
            mean_d /= fan_in
            mean_dx /= fan_in
            inv = rstd[hidden_layer]
            for c in range(fan_in):
                below[c] = inv * (below[c] - mean_d - xhat[hidden_layer, c] * mean_dx)
        side = 1 - side
        current = below
        width = fan_in
