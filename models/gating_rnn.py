"""The gating recurrent network of paper 004: Hodgkin-Huxley gates kept as gates in a network.

Every state is scaled into [0, 1] by fixed, recorded ranges (:class:`Scaling`; a gate by its
whole range [0, 1], the others by the training data's). The network
steps the scaled state u_i of an ionic model to u_{i+1} over one sampling step dt:

- N1 = phi1 (Dense in -> 30, relu; 30 -> 30, relu) and the gating layer (:class:`GatingLayer`,
  the GNN): h_inf = sigma(W_inf x + b_inf), rho = sigma(W_tau x + b_tau) and
  h <- rho h + (1 - rho) h_inf, one unit per classic gate (a Rush-Larsen step whose
  steady state and rate are learned functions of the observables);
- N2 = phi2 (Dense (in + gates) -> 30, 30 -> 30, relu), an LSTM (30 -> the other states'
  count) and phi3 (Dense, sigmoid) for the other states (V, the non-classic gates and the
  concentrations), which the observables also feed.

The input of both is the observables (V and Ca_i for ten Tusscher 2004) and, here, the applied
current: the paper's networks take the observables alone, so nothing in them says when a
pacing pulse arrives; a free-running network needs it to pace at a cycle length it never saw.

First-pass training (eq. 2.5.2) is next-step supervision of every state with the true gates
fed to the gating layer (teacher forcing); the LSTM runs over the sequence. A free-running
rollout feeds each prediction back.

phi1 reads the observables at a step's start (the paper) or at its midpoint (``midpoint``: the
mean of the step's two ends). Over a 1 ms step V moves by up to ~100 mV in the upstroke, so
from the start's V no kinetics predict the fast gates' step (measured on ten Tusscher 2004:
the model's own kinetics at the start leave 99 % of m's one-step change unexplained, 3 % at
the midpoint: ``benchmarks/gating_rnn.py``); the midpoint's kinetics are the model's, which
is what the converted ODE needs. A midpoint free run takes each step twice: with the start's
inputs, then at the midpoint of the start and that estimate of the end.

The gating layer converts to an ODE (eq. 2.7.1-2): tau = -dt / log rho,
h' = (h_inf - h) / tau.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn


@dataclass(frozen=True)
class Scaling:
    """Fixed ranges: each state's (and the current's) low and high, mapped to 0 and 1."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def of(cls, values: NDArray[np.floating], margin: float = 0.05,
           gates: Sequence[int] = ()) -> Scaling:  # fmt: skip
        """Ranges of ``values`` (..., S, n_t) widened by ``margin`` of the spread each side;
        the states ``gates`` (indices) over their whole range [0, 1] instead.

        A gate's steady state is the gating layer's sigmoid mapped through its range. Over the
        data's range it could never leave that range: ten Tusscher's Xs rises towards 0.86 in
        the plateau with a time constant near a second and reaches 0.19, so over [0, 0.19] its
        steady state was capped at 0.19 and the layer made it up with a faster rate (run on the
        recorded V: 13 % of its spread off; r and f likewise, see the README)."""
        flat = np.moveaxis(np.asarray(values, dtype=np.float64), -2, 0).reshape(
            values.shape[-2], -1)  # fmt: skip
        low, high = flat.min(axis=1), flat.max(axis=1)
        spread = np.where(high > low, high - low, 1.0)
        low, high = low - margin * spread, high + margin * spread
        low[list(gates)], high[list(gates)] = 0.0, 1.0
        return cls(tuple(low.tolist()), tuple(high.tolist()))

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """Scale (..., S) physical values into [0, 1]."""
        low = torch.tensor(self.low, dtype=values.dtype, device=values.device)
        high = torch.tensor(self.high, dtype=values.dtype, device=values.device)
        return (values - low) / (high - low)

    def inverse(self, scaled: torch.Tensor) -> torch.Tensor:
        low = torch.tensor(self.low, dtype=scaled.dtype, device=scaled.device)
        high = torch.tensor(self.high, dtype=scaled.dtype, device=scaled.device)
        return low + scaled * (high - low)


class GatingLayer(nn.Module):
    """The GNN layer: each unit a gate stepped by rho h + (1 - rho) h_inf."""

    def __init__(self, inputs: int, gates: int) -> None:
        super().__init__()
        self.steady = nn.Linear(inputs, gates)
        self.rate = nn.Linear(inputs, gates)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_inf, rho) at features ``x``."""
        return torch.sigmoid(self.steady(x)), torch.sigmoid(self.rate(x))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        steady, rho = self.parts(x)
        return rho * h + (1.0 - rho) * steady

    def time_constants(self, x: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_inf, tau) of the equivalent ODE h' = (h_inf - h) / tau (eq. 2.7.1)."""
        steady, rho = self.parts(x)
        return steady, -dt / torch.log(rho)


SLOW_START = 3.0  # the gating layer's initial rate logit: rho = sigmoid(3) = 0.95


def spread_kinks(layer: nn.Linear) -> None:
    """Place each relu unit of ``layer``'s kink at a random point of the scaled inputs' box
    [0, 1]^d, with a random direction and a slope of 1 to 4, so that none starts dead.

    phi1 reads one or two scaled observables: with PyTorch's default initialisation most of
    its 30 units are dead or linear over [0, 1] (measured: 7 of 30 active after training), and
    the gating layer's logits are then nearly linear in V; saturated at depolarised V, h's and
    d's rates get no gradient (``benchmarks/gating_rnn.py``, see the README)."""
    with torch.no_grad():
        direction = torch.nn.functional.normalize(torch.randn_like(layer.weight), dim=1)
        layer.weight.copy_(direction * (1.0 + 3.0 * torch.rand(layer.weight.shape[0], 1)))
        kink = torch.rand_like(layer.weight)
        layer.bias.copy_(-(layer.weight * kink).sum(dim=1))


class GatingNetwork(nn.Module):
    """N1 and N2 of the paper over a model's states split into ``gates`` (indices) and the
    rest; ``observables`` (indices into the states) and the applied current are the input."""

    def __init__(self, n_states: int, gates: Sequence[int], observables: Sequence[int],
                 width: int = 30, lstm_width: int | None = None,
                 gate_inputs: Sequence[int] | None = None,
                 midpoint: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.gates = list(gates)
        self.others = [k for k in range(n_states) if k not in self.gates]
        self.observables = list(observables)
        # the observables phi1 reads (all by default; V alone where the gates depend on V only)
        self.gate_inputs = list(observables if gate_inputs is None else gate_inputs)
        # the clock of phi1's inputs: a step's start (the paper) or its midpoint
        self.midpoint = midpoint
        self.order = np.argsort(self.gates + self.others).tolist()  # (gates, others) -> states
        inputs = len(self.observables)
        self.phi1 = nn.Sequential(nn.Linear(len(self.gate_inputs), width), nn.ReLU(),
                                  nn.Linear(width, width), nn.ReLU())  # fmt: skip
        self.gating = GatingLayer(width, len(self.gates))
        spread_kinks(cast(nn.Linear, self.phi1[0]))
        with torch.no_grad():  # every gate starts slow: each step keeps 95 % of it
            self.gating.rate.bias.fill_(SLOW_START)
        # N2 sees the applied current too
        self.phi2 = nn.Sequential(nn.Linear(inputs + 1 + len(self.gates), width), nn.ReLU(),
                                  nn.Linear(width, width), nn.ReLU())  # fmt: skip
        memory = lstm_width or len(self.others)
        self.lstm = nn.LSTM(width, memory, batch_first=True)
        self.phi3 = nn.Sequential(nn.Linear(memory, len(self.others)), nn.Sigmoid())
        self.encoder = nn.Linear(len(self.others), 2 * memory)

    def memory(self, start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The LSTM's (hidden, cell) state at the start of a run from the scaled state
        ``start`` (B, S): encoded from its other states, so a run begun anywhere knows its
        concentrations."""
        hidden, cell = self.encoder(start[..., self.others]).chunk(2, dim=-1)
        return torch.tanh(hidden)[None].contiguous(), cell[None].contiguous()

    def step_inputs(self, now: torch.Tensor, after: torch.Tensor | None = None) -> torch.Tensor:
        """What phi1 reads for the step from scaled states ``now`` to ``after`` (..., S): the
        gate inputs at the step's start, or with ``midpoint`` their mean over its two ends
        (then ``after`` is required)."""
        if not self.midpoint:
            return now[..., self.gate_inputs]
        if after is None:
            raise ValueError("a midpoint gating network needs the state after the step")
        return 0.5 * (now[..., self.gate_inputs] + after[..., self.gate_inputs])

    def gates_after(self, states: torch.Tensor, after: torch.Tensor | None = None,
                    ) -> torch.Tensor:  # fmt: skip
        """N1: each gate one step on from scaled states (..., S), driven by their observables
        (:meth:`step_inputs`)."""
        return self.gating(self.phi1(self.step_inputs(states, after)), states[..., self.gates])

    def n2_inputs(self, states: torch.Tensor, current: torch.Tensor,
                  gates: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """What phi2 reads: the observables, the scaled current and N1's gates."""
        return torch.cat([states[..., self.observables], current[..., None], gates], dim=-1)

    def teacher_forced(self, states: torch.Tensor, current: torch.Tensor,
                       after: torch.Tensor | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Next-step predictions of the gates and the other states, (B, T, ...), from the
        true scaled states (B, T, S) and currents (B, T), and the true states a step on
        (``after``, for a midpoint network): the first pass's inputs."""
        gates = self.gates_after(states, after)
        # N2 reads N1's gates but does not train them: they have their own targets here, and
        # N2's errors would make them whatever features serve it rather than gates
        hidden, _ = self.lstm(self.phi2(self.n2_inputs(states, current, gates.detach())),
                              self.memory(states[:, 0]))  # fmt: skip
        return gates, self.phi3(hidden)

    def first_pass_loss(self, states: torch.Tensor, current: torch.Tensor, weight_decay: float,
                        scale: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Eq. 2.5.2: squared errors of the next step's gates and other states, each state's in
        units of ``scale`` (S,) (1 if None), plus ``weight_decay`` times the mean squared
        weight (:func:`mean_squared_weight`)."""
        target = states[:, 1:]
        gates, others = self.teacher_forced(states[:, :-1], current[:, :-1], target)
        scale = torch.ones(states.shape[-1], device=states.device) if scale is None else scale
        loss = scaled_mse(gates, target, self.gates, scale)
        loss = loss + scaled_mse(others, target, self.others, scale)
        return self._penalised(loss, weight_decay)

    def gate_loss(self, now: torch.Tensor, after: torch.Tensor, weight_decay: float,
                  scale: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """N1's part of eq. 2.5.2 on single steps from scaled states ``now`` to ``after``
        (B, S): the squared errors of the gates a step on, in units of ``scale`` (S,), plus
        ``weight_decay`` times the mean squared weight."""
        loss = scaled_mse(self.gates_after(now, after), after, self.gates, scale)
        return self._penalised(loss, weight_decay)

    def _penalised(self, loss: torch.Tensor, weight_decay: float) -> torch.Tensor:
        """``loss`` plus ``weight_decay`` times the mean squared weight (none at 0)."""
        return loss + weight_decay * mean_squared_weight(self) if weight_decay else loss

    def rollout_loss(self, states: torch.Tensor, current: torch.Tensor,
                     scale: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """N2 free-running: the squared errors of the other states over a :meth:`rollout` from
        the window's first state (B, T, S) under its currents (B, T), in units of ``scale``
        (S,). A next-step-trained N2 drifts off within a beat once it reads its own output."""
        run = self.rollout(states[:, 0], current)
        return scaled_mse(run[:, 1:, self.others], states[:, 1:], self.others, scale)

    def rollout(self, start: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """Scaled states (B, T, S) from ``start`` (B, S), each prediction fed back, under the
        scaled currents (B, T) (the first row is the start); differentiable. A midpoint
        network takes each step twice: with the start's inputs, then at the midpoint of the
        start and that first estimate of the end."""
        hidden, cell = self.memory(start)
        memory = (hidden[0], cell[0])
        state, rows = start, [start]
        for k in range(current.shape[1] - 1):
            end = self._step(state, current[:, k], memory, state)[0] if self.midpoint else None
            state, memory = self._step(state, current[:, k], memory, end)
            rows.append(state)
        return torch.stack(rows, dim=1)

    def _step(self, state: torch.Tensor, current: torch.Tensor,
              memory: tuple[torch.Tensor, torch.Tensor], after: torch.Tensor | None,
              ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
        """One free-running step: the next state and the LSTM's next memory."""
        gates = self.gates_after(state, after)
        memory = self._cell(self.phi2(self.n2_inputs(state, current, gates)), memory)
        return torch.cat([gates, self.phi3(memory[0])], dim=-1)[..., self.order], memory

    def _cell(self, x: torch.Tensor, memory: tuple[torch.Tensor, torch.Tensor],
              ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """One step of the LSTM layer (its own weights, as nn.LSTM computes it)."""
        hidden, cell = memory
        w = dict(self.lstm.named_parameters())
        z = x @ w["weight_ih_l0"].T + w["bias_ih_l0"] + hidden @ w["weight_hh_l0"].T \
            + w["bias_hh_l0"]  # fmt: skip
        i, f, g, o = z.chunk(4, dim=-1)
        cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(cell), cell

    @torch.no_grad()
    def free_run(self, start: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """:meth:`rollout` without gradients."""
        return self.rollout(start, current)


def scaled_mse(predicted: torch.Tensor, target: torch.Tensor, columns: Sequence[int],
               scale: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """The mean squared error of ``predicted`` (..., C) against the ``columns`` of ``target``
    (..., S), each column's in units of its ``scale`` (S,)."""
    return ((predicted - target[..., columns]) / scale[columns]).pow(2).mean()


def mean_squared_weight(module: nn.Module) -> torch.Tensor:
    """The mean squared weight of ``module`` (biases aside): lambda's penalty. Frozen weights
    count too, so a phase that trains part of the network penalises that part as training it
    whole does (over N1's weights alone the same lambda is three times as strong, and h's rate
    saturates at rest: measured, see the README). A mean, not the sum
    the paper's L2(W) may be: with the sum, lambda = 1e-4 over ~5,000 weights outweighs the
    squared errors at rest that keep a free-running network at rest (measured: next-step
    loss 2e-2 with the sum, 3e-3 with the mean, same training)."""
    weights = [p for n, p in module.named_parameters() if "weight" in n]
    if not weights:
        return torch.zeros(())
    total = torch.stack([p.pow(2).sum() for p in weights]).sum()
    return total / sum(p.numel() for p in weights)


def apd(time: NDArray[np.float64], v: NDArray[np.float64], onsets: Sequence[float],
        fraction: float = 0.9) -> NDArray[np.float64]:  # fmt: skip
    """Each action potential's duration at ``fraction`` repolarisation (APD90 by default):
    from its pacing ``onset`` to the first time after the peak that V falls below
    peak - fraction (peak - V just before the onset); NaN where it does not before the next
    onset."""
    out = []
    bounds = [*onsets[1:], float(time[-1])]
    for onset, end in zip(onsets, bounds, strict=True):
        window = (time >= onset) & (time <= end)
        t, u = time[window], v[window]
        if t.size < 3:
            out.append(np.nan)
            continue
        peak = int(np.argmax(u))
        before = max(int(np.searchsorted(time, onset)) - 1, 0)
        level = u[peak] - fraction * (u[peak] - float(v[before]))
        below = np.flatnonzero(u[peak:] < level)
        out.append(float(t[peak + below[0]] - onset) if below.size else np.nan)
    return np.array(out)
