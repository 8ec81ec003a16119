"""The window networks of the splitting PINN and what solves them (paper 003).

A window's network is a tanh MLP of tau in (0, 1] whose hidden layers are fixed, seeded random
features (:class:`Features`) and whose output layer is fitted to the physics residual by
Gauss-Newton least squares (:func:`gauss_newton`); its collocation points are Chebyshev points
(:func:`chebyshev`), or for a Caputo state the L1 scheme's nodes with its weights
(:func:`l1_weights`, also the fractional PINN's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Features:
    """The hidden layers of the window networks: a tanh MLP of tau in (0, 1] with fixed,
    seeded weights (first layer uniform in [-scale, scale], deeper ones Xavier-uniform), whose
    last hidden layer and a constant are the features phi(tau) the trained output layer
    combines (random-feature PINNs solved by least squares, as the local extreme learning
    machines of Dong and Li's block time-marching)."""

    layers: tuple[tuple[NDArray[np.float64], NDArray[np.float64]], ...]

    @classmethod
    def seeded(cls, widths: Sequence[int], scale: float, rng: np.random.Generator) -> Features:
        layers, into = [], 1
        for k, width in enumerate(widths):
            bound = scale if k == 0 else math.sqrt(6.0 / (into + width))
            layers.append((rng.uniform(-bound, bound, (width, into)),
                           rng.uniform(-bound, bound, width)))  # fmt: skip
            into = width
        return cls(tuple(layers))

    @property
    def count(self) -> int:
        return int(self.layers[-1][0].shape[0]) + 1

    def at(self, tau: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """phi and dphi/dtau at ``tau`` (C,), each (C, count); the last column the constant."""
        h, dh = tau[:, None], np.ones((tau.size, 1))
        for weight, bias in self.layers:
            a = np.tanh(h @ weight.T + bias)
            h, dh = a, (1.0 - a * a) * (dh @ weight.T)
        return np.hstack([h, np.ones((tau.size, 1))]), np.hstack([dh, np.zeros((tau.size, 1))])


def gauss_newton(residual: Callable[[NDArray[np.float64]], tuple[NDArray, NDArray]],
                 coefficients: NDArray[np.float64], iterations: int,
                 tolerance: float) -> tuple[NDArray[np.float64], float, int]:  # fmt: skip
    """Coefficients minimising |r|^2 by Gauss-Newton steps (least squares by SVD, so a
    rank-deficient feature set is harmless), from ``coefficients``; the final RMS residual
    and the steps taken. One step is exact where the residual is affine in them."""
    r, j = residual(coefficients)
    rms = float(np.sqrt(np.mean(r * r)))
    used = 0
    while used < iterations and rms >= tolerance:
        used += 1
        step = np.linalg.lstsq(j, -r, rcond=1e-13)[0]
        trial = coefficients + step
        r_trial, j_trial = residual(trial)
        rms_trial = float(np.sqrt(np.mean(r_trial * r_trial)))
        if not rms_trial < rms:  # no progress: the least-squares floor, or a bad step
            if rms_trial == rms or not math.isfinite(rms_trial):
                break
            step_half = 0.5 * step
            r_trial, j_trial = residual(coefficients + step_half)
            rms_trial = float(np.sqrt(np.mean(r_trial * r_trial)))
            if not rms_trial < rms:
                break
            trial = coefficients + step_half
        coefficients, r, j, rms = trial, r_trial, j_trial, rms_trial
    return coefficients, rms, used


def chebyshev(count: int) -> NDArray[np.float64]:
    """``count`` Chebyshev points of the second kind in (0, 1] (0 itself excluded)."""
    k = np.arange(count)
    return np.sort(0.5 * (1.0 - np.cos(np.pi * (k + 1) / count)))


def l1_weights(alpha: float, count: int) -> NDArray[np.float64]:
    """b_i = (i + 1)^(1 - alpha) - i^(1 - alpha), i < count (b_0 = 1, also at alpha = 1)."""
    k = np.arange(count + 1, dtype=np.float64)
    weights = k[1:] ** (1.0 - alpha) - k[:-1] ** (1.0 - alpha)
    weights[:1] = 1.0
    return weights
