"""A second pass scored through the ionic model's own equations (``second_pass_loss = "model"``).

The paper's second pass (eq. 2.6.2) scores the retrained gates by N2's prediction of the next
observables. N2 is a black box trained on the true gates: its use of a gate need not be the
model's, and the first pass's gates are not at that loss's minimum, so the pass moves currents
of its own (on the control data, with nothing to find: I_Ks -78 to -86 %, I_Na -59 to -77 %;
see the README). Here each step's change of the scored observables (``equation_observables``)
is predicted by the model's own right-hand side instead (its ``vector_field``,
differentiable), trapezoidal over the sampling step, at the first pass's parameters. A gate
then acts only through the currents it belongs to, as in the converted ODE.

The states a recording does not give, neither observables nor classic gates (ten Tusscher
2004: fCa, Ca_SR, g, Na_i, K_i), are run by the model's own equations too (Heun over each
sampling step, the compiled right-hand side, no gradient), driven by the recorded observables
and the gates being trained, from the typical training sample's values at the window's first
sample. N2's estimates of them were far off (scaled RMS error on the control recordings: K_i
0.32, Ca_SR 0.24, Na_i 0.15): with them the first pass's gates score 0.45 on its own data
(squared residuals in units of each observable's RMS one-step change); run by the equations,
0.0007, of which V's part is 3e-6 and Ca_i's the rest, from Ca_SR's start (hence
``equation_observables``).

Steps the trapezoid cannot follow are left out: those where the stimulus is on at either end
and those where an observable moves by more than :data:`FAST_STEP` times its RMS one-step
change over the training data (the upstroke; on ten Tusscher 2004, V's RMS step is 4.5 mV at
1 ms). Measured on ten Tusscher 2004's training segments at 1 ms with every state true: 98.4 %
of the steps are kept; over them V's residual is 0.0011 mV RMS against 0.46 mV of change, and
Ca_i's 4e-8 mM against 3e-6. Over every step V's residual is 3.3 mV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numba import njit
from numpy.typing import NDArray

from ionops.datasets.ionic.base import IonicModel
from ionops.models.gating_rnn import Scaling

FAST_STEP = 2.0


class EquationScore:
    """The mean squared error of each scored observable's one-step change predicted by the
    model's equations, scaled as the network's states are (the units of the paper's loss, so
    that the drift penalty's eta means the same under either loss); see the module
    docstring."""

    def __init__(self, ionic: IonicModel, parameters: Mapping[str, float], scaling: Scaling,
                 scored: Sequence[int], hidden: Sequence[int], start: torch.Tensor,
                 step_scale: torch.Tensor, amplitude: float, dt: float) -> None:  # fmt: skip
        assert ionic.vector_field is not None
        self.field = ionic.vector_field
        self.rhs = ionic.rhs
        self.parameters = ionic.parameter_vector(dict(parameters))
        self.scaling = scaling
        self.spread = torch.tensor(scaling.high, dtype=torch.float64) - torch.tensor(
            scaling.low, dtype=torch.float64)  # fmt: skip
        self.scored, self.hidden, self.start = list(scored), list(hidden), start
        # each scored observable's RMS one-step change in its own unit
        self.step = step_scale.double().cpu()[self.scored] * self.spread[self.scored]
        self.amplitude, self.dt = amplitude, dt

    def with_hidden(self, full: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """Scaled states ``full`` (B, T, S) with the hidden states run by the model's equations
        from ``start`` (scaled, one per hidden state) at the first sample, driven by the other
        columns of ``full`` (no gradient reaches them)."""
        given = full.detach().double().cpu()
        given[:, 0, self.hidden] = self.start.double().cpu()
        physical = self.scaling.inverse(given).numpy()
        i_app = (current.detach().double().cpu() * self.amplitude).numpy()
        _hidden_run(self.rhs, physical, i_app, self.parameters,
                    np.array(self.hidden, dtype=np.int64), self.dt)  # fmt: skip
        values = self.scaling.forward(torch.from_numpy(physical))[..., self.hidden]
        out = full.clone()
        out[..., self.hidden] = values.to(device=full.device, dtype=full.dtype)
        return out

    def __call__(self, full: torch.Tensor, current: torch.Tensor, burn: int) -> torch.Tensor:
        """The score of scaled states ``full`` (B, T, S) under the scaled applied current
        (B, T), steps before ``burn`` left out."""
        device = full.device
        spread = self.spread.to(device)
        physical = self.scaling.inverse(full.double())
        i_app = current.double() * self.amplitude
        rates = self.field(list(physical.movedim(-1, 0)), i_app, self.parameters)
        rate = torch.stack([rates[k] for k in self.scored], dim=-1)  # (B, T, O)
        observed = physical[..., self.scored]
        change = observed[:, 1:] - observed[:, :-1]
        step = self.step.to(device)
        residual = (0.5 * self.dt * (rate[:, 1:] + rate[:, :-1]) - change) / spread[self.scored]
        kept = (current[:, 1:] == 0) & (current[:, :-1] == 0)
        kept &= (change.abs() <= FAST_STEP * step).all(dim=-1)
        kept[:, :burn] = False
        squared = residual.pow(2).sum(dim=-1)
        if not bool(kept.any()):
            return squared.sum() * 0.0
        return squared[kept].mean().float()


@njit(cache=True, error_model="numpy")
def _hidden_run(rhs: Any, states: NDArray[np.float64], i_app: NDArray[np.float64],
                p: NDArray[np.float64], hidden: NDArray[np.int64], dt: float) -> None:  # fmt: skip
    """Heun over each sampling step of ``states`` (B, T, S, physical), in place, for the
    ``hidden`` columns alone, from their values at the first sample; the other columns are
    given at every sample."""
    n, n_t, n_states = states.shape
    now, after, trial = np.empty(n_states), np.empty(n_states), np.empty(n_states)
    for b in range(n):
        for k in range(n_t - 1):
            rhs(0.0, states[b, k], p, i_app[b, k], now)
            trial[:] = states[b, k + 1]
            for h in hidden:
                trial[h] = states[b, k, h] + dt * now[h]
            rhs(0.0, trial, p, i_app[b, k + 1], after)
            for h in hidden:
                states[b, k + 1, h] = states[b, k, h] + 0.5 * dt * (now[h] + after[h])
