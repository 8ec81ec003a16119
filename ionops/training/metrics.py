"""Relative errors of predicted trajectories: the training loss and the reported metrics.

All functions take predictions and truths of shape (batch, n_states, n_t) and
return per-sample, per-variable errors (batch, n_states) unless they say
otherwise. Errors are relative to the truth's norm over time, per sample and
per state variable:

- ``rel_l1 = sum|e| / sum|y|``, ``rel_l2 = ||e||_2 / ||y||_2`` over time;
- ``rel_h1`` with the derivative in physical time (ms):
  ``sqrt(||e||^2 + ||de/dt||^2) / sqrt(||y||^2 + ||dy/dt||^2)``, derivatives
  by second-order central differences on the grid (one-sided at the ends);
- ``rel_h1_paper``: the convention of the FNO paper's code (neuraloperator's
  H1 loss): Fourier derivative with integer wavenumbers on the unit period,
  all state variables pooled into one norm per sample, (batch,) only.

The loss is the relative L2 error averaged over state variables and over the
batch. Averaging (not summing) over the batch keeps the loss scale, and so the
learning rate, independent of the batch size and of a short last batch.
"""

from __future__ import annotations

import torch

EPS = 1e-12
METRICS = ("rel_l1", "rel_l2", "rel_h1")


def rel_l1(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    return (pred - true).abs().sum(-1) / (true.abs().sum(-1) + EPS)


def rel_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(pred - true, dim=-1) / (
        torch.linalg.vector_norm(true, dim=-1) + EPS
    )


def time_derivative(x: torch.Tensor, dt: float) -> torch.Tensor:
    """d/dt along the last axis (units of x per ms), central differences inside."""
    return torch.gradient(x, spacing=dt, dim=-1, edge_order=2)[0]


def rel_h1(pred: torch.Tensor, true: torch.Tensor, dt: float) -> torch.Tensor:
    error, d_error = pred - true, time_derivative(pred - true, dt)
    d_true = time_derivative(true, dt)
    numerator = error.pow(2).sum(-1) + d_error.pow(2).sum(-1)
    denominator = true.pow(2).sum(-1) + d_true.pow(2).sum(-1)
    return torch.sqrt(numerator / (denominator + EPS))


def rel_h1_paper(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """The paper's code convention: spectral H1 with integer wavenumbers, variables pooled."""
    n_t = true.shape[-1]
    k = torch.fft.rfftfreq(n_t, d=1.0 / n_t, device=true.device)
    weight = 1.0 + k.pow(2)

    def norm2(x: torch.Tensor) -> torch.Tensor:
        return (weight * torch.fft.rfft(x, dim=-1).abs().pow(2)).sum(dim=(-1, -2))

    return torch.sqrt(norm2(pred - true) / (norm2(true) + EPS))


def loss(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """The training loss: relative L2 averaged over state variables and samples."""
    return rel_l2(pred, true).mean()


def per_sample_errors(pred: torch.Tensor, true: torch.Tensor, dt: float) -> dict[str, torch.Tensor]:
    """Every metric for a batch: (batch, n_states) each, and ``rel_h1_paper`` (batch,)."""
    return {
        "rel_l1": rel_l1(pred, true),
        "rel_l2": rel_l2(pred, true),
        "rel_h1": rel_h1(pred, true, dt),
        "rel_h1_paper": rel_h1_paper(pred, true),
    }
