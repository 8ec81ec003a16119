"""Heun's method over a small MLP vector field, forward and exact reverse mode, compiled.

Training a neural ODE on one window integrates ``f_theta`` over 1,468 steps, each two
network evaluations on one state: work that is tiny per call and sequential, where
autograd's per-operation overhead costs about 1 s an iteration on a CPU. These kernels do
the same arithmetic in compiled loops: :func:`heun_loss` integrates and returns the data
loss, the trajectory and the gradient of the loss by the loss's exact reverse mode through
every Heun step (discretise-then-differentiate: the gradient of the computed loss, as
autograd through the steps would give).

The network (``theta`` flat, in :class:`ionops.models.node.VectorField`'s parameter order)::

    x0 = [(z - in_mean) / in_std, (t - t_mean) / t_std]
    per hidden layer: a = W x + b; y = LayerNorm(a) (gamma, beta; eps 1e-5) or a; x = tanh(y)
    f = g(W_out x + b_out) * out_std + out_mean,  g the identity or (``sinh``) sinh

The data loss is mean over samples of sum over states of ((z_hat - y) / scale)^2.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch
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


_SCRATCH = threading.local()


def _workspace(n_t: int, layers: int, widest: int, n_states: int) -> tuple[NDArray, ...]:
    """:func:`_heun`'s per-evaluation arrays (a few MB), kept between calls of the same
    shape: allocated afresh each call, their pages' first touch cost about a third of the
    forward pass. One set per thread, the latest shape's."""
    key = (n_t, layers, widest, n_states)
    cached = getattr(_SCRATCH, "arrays", None)
    if cached is None or cached[0] != key:
        shapes = [
            (n_t, 2, n_states + 1),
            (n_t, 2, layers, widest),
            (n_t, 2, max(layers, 1)),
            (n_t, 2, layers, widest),
            (n_t, 2, n_states),
            (n_t, 2, layers + 1, widest),
        ]
        _SCRATCH.arrays = (key, tuple(np.empty(shape) for shape in shapes))
    arrays: tuple[NDArray, ...] = _SCRATCH.arrays[1]
    return arrays


def heun_loss(theta, widths, layer_norm, z0, time, targets, scale, in_mean, in_std, t_mean,
              t_std, out_mean, out_std, sinh, want_gradient):  # fmt: skip
    """Integrate from ``z0`` over ``time`` (N,) by Heun's method; return (loss, trajectory
    (S, N), gradient of the loss with respect to ``theta``; zeros unless ``want_gradient``).
    The loss is the data loss of the module docstring against ``targets`` (S, N).

    The steps are sequential, but the weights' gradient is a sum over every evaluation of
    (cotangent of W x + b) x^T: the compiled pass keeps those cotangents and each layer's
    gradient is then one matrix product over all evaluations."""
    n_states = z0.size
    workspace = _workspace(time.size, widths.size, max(int(widths.max()), n_states + 1),
                           n_states)  # fmt: skip
    loss, trajectory, grad = _heun(
        theta, widths, layer_norm, z0, time, targets, scale, in_mean, in_std, t_mean, t_std,
        out_mean, out_std, sinh, want_gradient, *workspace,
    )  # fmt: skip
    if not want_gradient:
        return loss, trajectory, grad
    inputs, hiddens, d_pres = workspace[0], workspace[3], workspace[5]
    layout = _layout(widths, n_states + 1, n_states, layer_norm)
    steps = time.size - 1
    fan_in = n_states + 1
    for layer in range(widths.size + 1):
        width = int(widths[layer]) if layer < widths.size else n_states
        below = inputs[:steps] if layer == 0 else hiddens[:steps, :, layer - 1, :fan_in]
        cotangent = torch.from_numpy(d_pres[:steps, :, layer, :width].reshape(-1, width))
        w0, b0 = layout[layer, 0], layout[layer, 1]
        # by torch, on its threads: numpy's BLAS starts a thread per core in each process
        # and, two trainings on two cores, the spinning threads made a pass slower than before
        product = cotangent.T @ torch.from_numpy(below.reshape(-1, fan_in))
        grad[w0:b0] += product.numpy().ravel()
        grad[b0 : b0 + width] += cotangent.sum(dim=0).numpy()
        fan_in = width
    return loss, trajectory, grad


@njit(cache=True, fastmath=FAST)
def _heun(theta, widths, layer_norm, z0, time, targets, scale, in_mean, in_std, t_mean, t_std,
          out_mean, out_std, sinh, want_gradient, x0s, xhats, rstds, hiddens, raws,
          d_pres):  # fmt: skip
    """:func:`heun_loss`'s compiled part: the loss, the trajectory and LayerNorm's part of
    the gradient; it fills the workspace (:func:`_workspace`) with each evaluation's input,
    LayerNorm's xhat and 1/std, tanh outputs, raw outputs (for sinh's derivative) and
    cotangents of W x + b, from which the weights' part is formed."""
    n_states = z0.size
    n_t = time.size
    widest = max(int(widths.max()), n_states + 1)
    layout = _layout(widths, n_states + 1, n_states, layer_norm)
    theta_t = _transposed(theta, widths, layout, n_states + 1, n_states)
    traj = np.empty((n_states, n_t))
    k1 = np.empty(n_states)
    k2 = np.empty(n_states)
    out = np.empty(n_states)
    u = np.empty(n_states)
    for s in range(n_states):
        traj[s, 0] = z0[s]
    for i in range(n_t - 1):
        dt = time[i + 1] - time[i]
        for e in range(2):
            t = time[i] if e == 0 else time[i + 1]
            for s in range(n_states):
                value = traj[s, i] if e == 0 else u[s]
                x0s[i, e, s] = (value - in_mean[s]) / in_std[s]
            x0s[i, e, n_states] = (t - t_mean) / t_std
            _forward(theta, widths, layout, layer_norm, x0s[i, e], xhats[i, e], rstds[i, e],
                     hiddens[i, e], out)  # fmt: skip
            for s in range(n_states):
                raws[i, e, s] = out[s]
                value = _output(out[s], sinh) * out_std[s] + out_mean[s]
                if e == 0:
                    k1[s] = value
                    u[s] = traj[s, i] + dt * value
                else:
                    k2[s] = value
        for s in range(n_states):
            traj[s, i + 1] = traj[s, i] + 0.5 * dt * (k1[s] + k2[s])
    loss = 0.0
    for i in range(n_t):
        for s in range(n_states):
            d = (traj[s, i] - targets[s, i]) / scale[s]
            loss += d * d
    loss /= n_t
    grad = np.zeros(theta.size)
    if not want_gradient:
        return loss, traj, grad
    adjoint = np.empty(n_states)  # dL/dz_i
    for s in range(n_states):
        adjoint[s] = 2.0 * (traj[s, n_t - 1] - targets[s, n_t - 1]) / (scale[s] ** 2 * n_t)
    d_out = np.empty(n_states)
    d_x0 = np.empty(n_states + 1)
    d_k1 = np.empty(n_states)
    work = np.empty((2, widest))
    for i in range(n_t - 2, -1, -1):
        dt = time[i + 1] - time[i]
        # k2 = f(u, t_{i+1}), u = z_i + dt k1: cotangent dt/2 a
        for s in range(n_states):
            d_out[s] = 0.5 * dt * adjoint[s] * out_std[s] * _slope(raws[i, 1, s], sinh)
        _backward(theta, theta_t, widths, layout, layer_norm, xhats[i, 1], rstds[i, 1],
                  hiddens[i, 1], d_out, grad, d_x0, work, d_pres[i, 1])  # fmt: skip
        for s in range(n_states):
            d_u = d_x0[s] / in_std[s]
            d_k1[s] = 0.5 * dt * adjoint[s] + dt * d_u
            adjoint[s] += d_u
        # k1 = f(z_i, t_i)
        for s in range(n_states):
            d_out[s] = d_k1[s] * out_std[s] * _slope(raws[i, 0, s], sinh)
        _backward(theta, theta_t, widths, layout, layer_norm, xhats[i, 0], rstds[i, 0],
                  hiddens[i, 0], d_out, grad, d_x0, work, d_pres[i, 0])  # fmt: skip
        for s in range(n_states):
            adjoint[s] += d_x0[s] / in_std[s]
            adjoint[s] += 2.0 * (traj[s, i] - targets[s, i]) / (scale[s] ** 2 * n_t)
    return loss, traj, grad


@njit(cache=True)  # no fastmath: it would assume the finiteness this checks
def heun_path(theta, widths, layer_norm, z0, time, in_mean, in_std, t_mean, t_std, out_mean,
              out_std, sinh, shift):  # fmt: skip
    """Forward only, in constant memory: the trajectory (S, N) of ``f + shift`` integrated
    by Heun from ``z0`` over ``time``; from the first non-finite state on, NaN."""
    n_states = z0.size
    n_t = time.size
    layers = widths.size
    widest = max(int(widths.max()), n_states + 1)
    layout = _layout(widths, n_states + 1, n_states, layer_norm)
    x0 = np.empty(n_states + 1)
    xhat = np.zeros((layers, widest))
    rstd = np.ones(max(layers, 1))
    hidden = np.zeros((layers, widest))
    traj = np.full((n_states, n_t), np.nan)
    z = z0.copy()
    k1 = np.empty(n_states)
    out = np.empty(n_states)
    u = np.empty(n_states)
    for s in range(n_states):
        traj[s, 0] = z[s]
    for i in range(n_t - 1):
        dt = time[i + 1] - time[i]
        for e in range(2):
            t = time[i] if e == 0 else time[i + 1]
            for s in range(n_states):
                x0[s] = ((z[s] if e == 0 else u[s]) - in_mean[s]) / in_std[s]
            x0[n_states] = (t - t_mean) / t_std
            _forward(theta, widths, layout, layer_norm, x0, xhat, rstd, hidden, out)
            for s in range(n_states):
                value = _output(out[s], sinh) * out_std[s] + out_mean[s] + shift[s]
                if e == 0:
                    k1[s] = value
                    u[s] = z[s] + dt * value
                else:
                    z[s] = z[s] + 0.5 * dt * (k1[s] + value)
        finite = True
        for s in range(n_states):
            if not math.isfinite(z[s]):
                finite = False
        if not finite:
            break
        for s in range(n_states):
            traj[s, i + 1] = z[s]
    return traj


def pack(theta, widths, layer_norm, scaling, shift):
    """One float64 vector holding a field for :func:`field_rhs`: [S, layers, layer_norm,
    sinh, widths, in_mean, in_std, t_mean, t_std, out_mean, out_std, shift, theta]."""
    in_mean, in_std, t_mean, t_std, out_mean, out_std, sinh = scaling
    n_states = len(in_mean)
    return np.concatenate([
        [n_states, len(widths), float(layer_norm), float(sinh)],
        np.asarray(widths, dtype=np.float64),
        in_mean, in_std, [t_mean, t_std], out_mean, out_std, shift, theta,
    ]).astype(np.float64)  # fmt: skip


@njit(cache=True)
def field_rhs(t, y, p, i_app, dydt):
    """The packed field (:func:`pack`) as an ionic model's right-hand side, for the
    project's BDF; ``i_app`` is not an input (the field's current is its training's, plus
    the packed shift)."""
    n_states = int(p[0])
    layers = int(p[1])
    layer_norm = p[2] != 0.0
    sinh = p[3] != 0.0
    widths = np.empty(layers, dtype=np.int64)
    for k in range(layers):
        widths[k] = int(p[4 + k])
    at = 4 + layers
    in_mean = p[at : at + n_states]
    in_std = p[at + n_states : at + 2 * n_states]
    t_mean, t_std = p[at + 2 * n_states], p[at + 2 * n_states + 1]
    at += 2 * n_states + 2
    out_mean = p[at : at + n_states]
    out_std = p[at + n_states : at + 2 * n_states]
    shift = p[at + 2 * n_states : at + 3 * n_states]
    theta = p[at + 3 * n_states :]
    widest = max(int(widths.max()), n_states + 1)
    layout = _layout(widths, n_states + 1, n_states, layer_norm)
    x0 = np.empty(n_states + 1)
    for s in range(n_states):
        x0[s] = (y[s] - in_mean[s]) / in_std[s]
    x0[n_states] = (t - t_mean) / t_std
    xhat = np.zeros((layers, widest))
    rstd = np.ones(max(layers, 1))
    hidden = np.zeros((layers, widest))
    out = np.empty(n_states)
    _forward(theta, widths, layout, layer_norm, x0, xhat, rstd, hidden, out)
    for s in range(n_states):
        dydt[s] = _output(out[s], sinh) * out_std[s] + out_mean[s] + shift[s]
