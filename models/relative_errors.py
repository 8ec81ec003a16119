"""Relative errors of predicted trajectories, as the families report them (shared by them).

All functions take predictions and truths of shape (batch, n_states, n_t) and
return per-sample, per-variable errors (batch, n_states) unless they say
otherwise. Errors are relative to the truth's norm over time, per sample and
per state variable:

- ``rel_l1 = sum|e| / sum|y|``, ``rel_l2 = ||e||_2 / ||y||_2`` over time;
- ``rel_h1`` with the derivative in physical time (ms):
  ``sqrt(||e||^2 + ||de/dt||^2) / sqrt(||y||^2 + ||dy/dt||^2)``, derivatives
  by second-order central differences on the grid (one-sided at the ends);

A relative error means nothing where the truth is near zero (samples at rest
in physical units, a state 250 times smaller than its typical size, gave
relative errors of 4-65x that ruled the means): given ``typical``
trajectories (n_states, n_t), a sample whose truth norm is below
``UNDEFINED_BELOW`` (1 %) of the typical norm gets NaN, the summaries
average over the samples where the error is defined, and ``rms`` (the
root-mean-square error in the state's own unit) measures every sample. A
family's own conventions (a paper's variant of a norm, its training loss) live
with the family under ``models/``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

EPS = 1e-12
UNDEFINED_BELOW = 1e-2  # of the typical trajectory's norm: a relative error is undefined below
Norm = Callable[[torch.Tensor], torch.Tensor]


def relative(
    norm: Norm, pred: torch.Tensor, true: torch.Tensor, typical: torch.Tensor | None, power: int
) -> torch.Tensor:
    """norm(e) / norm(y); NaN where norm(y) < UNDEFINED_BELOW^power * norm(typical)."""
    numerator, denominator = norm(pred - true), norm(true)
    floor = 0.0 if typical is None else UNDEFINED_BELOW**power * norm(typical.to(true))
    undefined = torch.full_like(numerator, float("nan"))
    defined = (denominator > floor) & (denominator > 0)
    return torch.where(defined, numerator / denominator.clamp_min(EPS), undefined)


def _l1(x: torch.Tensor) -> torch.Tensor:
    return x.abs().sum(-1)


def _l2(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x, dim=-1)


def rel_l1(
    pred: torch.Tensor, true: torch.Tensor, typical: torch.Tensor | None = None
) -> torch.Tensor:
    return relative(_l1, pred, true, typical, 1)


def rel_l2(
    pred: torch.Tensor, true: torch.Tensor, typical: torch.Tensor | None = None
) -> torch.Tensor:
    return relative(_l2, pred, true, typical, 1)


def rms(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """The root-mean-square error over time, in the trajectories' own unit: defined for every
    sample, near-zero truths included."""
    return (pred - true).pow(2).mean(-1).sqrt()


def time_derivative(x: torch.Tensor, dt: float) -> torch.Tensor:
    """d/dt along the last axis (units of x per ms), central differences inside."""
    return torch.gradient(x, spacing=dt, dim=-1, edge_order=2)[0]


def rel_h1(
    pred: torch.Tensor, true: torch.Tensor, dt: float, typical: torch.Tensor | None = None
) -> torch.Tensor:
    def h1_squared(x: torch.Tensor) -> torch.Tensor:
        return x.pow(2).sum(-1) + time_derivative(x, dt).pow(2).sum(-1)

    return torch.sqrt(relative(h1_squared, pred, true, typical, 2))
