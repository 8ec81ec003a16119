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

from ionops.models.node_network import (
    FAST,
    _backward,
    _forward,
    _layout,
    _output,
    _slope,
    _transposed,
)

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
