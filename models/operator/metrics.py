"""The operator families' own metrics: the FNO paper's training loss, its code's H1
convention, and every per-sample error they report (built on
:mod:`ionops.models.relative_errors`).

- ``rel_h1_paper``: the convention of paper 000's code (neuraloperator's H1 loss):
  Fourier derivative with integer wavenumbers on the unit period, all state variables
  pooled into one norm per sample, (batch,) only;
- ``loss``: the relative L2 error averaged over state variables and over the batch (with
  a tiny floor on the norm). Averaging (not summing) over the batch keeps the loss scale,
  and so the learning rate, independent of the batch size and of a short last batch.
"""

from __future__ import annotations

import torch

from ionops.models.relative_errors import EPS, rel_h1, rel_l1, rel_l2, relative


def rel_h1_paper(
    pred: torch.Tensor, true: torch.Tensor, typical: torch.Tensor | None = None
) -> torch.Tensor:
    """The paper's code convention: spectral H1 with integer wavenumbers, variables pooled."""
    n_t = true.shape[-1]
    k = torch.fft.rfftfreq(n_t, d=1.0 / n_t, device=true.device)
    weight = 1.0 + k.pow(2)

    def norm2(x: torch.Tensor) -> torch.Tensor:
        return (weight * torch.fft.rfft(x, dim=-1).abs().pow(2)).sum(dim=(-1, -2))

    return torch.sqrt(relative(norm2, pred, true, typical, 2))


def loss(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """The training loss: relative L2 averaged over state variables and samples."""
    norms = torch.linalg.vector_norm(true, dim=-1).clamp_min(EPS)
    return (torch.linalg.vector_norm(pred - true, dim=-1) / norms).mean()


def per_sample_errors(
    pred: torch.Tensor, true: torch.Tensor, dt: float, typical: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Every metric for a batch: (batch, n_states) each, and ``rel_h1_paper`` (batch,)."""
    return {
        "rel_l1": rel_l1(pred, true, typical),
        "rel_l2": rel_l2(pred, true, typical),
        "rel_h1": rel_h1(pred, true, dt, typical),
        "rel_h1_paper": rel_h1_paper(pred, true, typical),
    }
