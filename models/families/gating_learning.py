"""The gating-RNN family's network and objective (see :mod:`ionops.models.families.gating`).

:class:`GatingModel` is the paper's network (:class:`~ionops.models.gating_rnn.GatingNetwork`)
with its fixed scaling and, after a second pass, the first pass's gating layer kept frozen
beside the retrained one (``original``): what the drift penalty and the interpretation
compare against. Everything it needs is in its constructor arguments, so a checkpoint rebuilds
it alone.

Its runs and their errors (evaluation, serving, the benchmark) are in
:mod:`ionops.models.families.gating_runs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ionops.datasets.paced_data import PacedData
from ionops.models.families.gating import SETTLE_MS
from ionops.models.families.gating_equations import EquationScore
from ionops.models.families.gating_runs import (
    onset_phase,
    predict_runs,
    run_errors,
    run_steps,
    whole_beats,
)
from ionops.models.family import Objective, TrialConfig
from ionops.models.gating_rnn import (
    GatingLayer,
    GatingNetwork,
    Scaling,
    mean_squared_weight,
)
from ionops.training.optimisation import Optimisation, Phase

N1 = ("network.phi1.", "network.gating.")
N2 = ("network.phi2.", "network.lstm.", "network.phi3.", "network.encoder.")
SECOND_PASS_FROZEN = ("network.phi1.", *N2, "original.")


class GatingModel(nn.Module):
    """A gating network over scaled states; see the module docstring."""

    typical: torch.Tensor  # the scaled other states of a typical training sample

    def __init__(self, arguments: Mapping[str, Any]) -> None:
        super().__init__()
        self.scaling = Scaling(tuple(arguments["low"]), tuple(arguments["high"]))
        self.network = GatingNetwork(int(arguments["n_states"]), list(arguments["gates"]),
                                     list(arguments["observables"]), int(arguments["width"]),
                                     int(arguments["lstm_width"]) or None,
                                     list(arguments["gate_inputs"]),
                                     arguments["gate_clock"] == "midpoint")  # fmt: skip
        self.second_pass = bool(arguments["second_pass"])
        self.original = GatingLayer(int(arguments["width"]), len(arguments["gates"]))
        self.original.requires_grad_(False)
        self.register_buffer("typical", torch.tensor(arguments["typical"], dtype=torch.float32))
        # the ionic model's parameters in the first pass's data (none in a checkpoint from
        # before they were recorded)
        self.nominal = {k: float(v) for k, v in arguments.get("parameters", {}).items()}

    def model_parameters(self, attributes: Mapping[str, Any]) -> dict[str, float]:
        """The parameters of the ionic model this network learned: its first pass's data's.
        The converted ODE and the currents read the retrained gates through them; a
        perturbed dataset's own (``attributes``) would tell them the answer. A checkpoint
        that does not record them falls back to ``attributes``'."""
        return self.nominal or {k: float(v) for k, v in attributes["parameters"].items()}


def build(arguments: Mapping[str, Any]) -> GatingModel:
    return GatingModel(arguments)


class GatingObjective(Objective):
    """First pass: next-step supervision of every state (eq. 2.5.2). Second pass (a first-pass
    network given): the observables alone, the drift penalty (eq. 2.6.2) and a burn-in."""

    def __init__(self, data: PacedData, trial: TrialConfig) -> None:
        self.data = data
        self.learning = learning = dict(trial.learning)
        self.state_names = list(data.attributes["state_names"])
        self.arguments = dict(trial.arguments)
        self.second_pass = bool(self.arguments["second_pass"])
        self.scaling = Scaling(tuple(self.arguments["low"]), tuple(self.arguments["high"]))
        self.amplitude = float(data.attributes["stimulus_amplitude"]) or 1.0
        self.dt = float(data.attributes["dt_ms"])
        self.steps = max(2, round(float(learning["sequence_ms"]) / self.dt))
        self.weight_decay = float(learning["weight_decay"])
        self.drift = float(learning["drift"])
        self.predictor = str(learning["predictor"])
        self.gate_epochs = int(learning.get("gate_epochs", 0))
        self.rollout_epochs = int(learning.get("rollout_epochs", 0))
        self.rollout_steps = max(2, round(float(learning.get("rollout_ms", 100.0)) / self.dt))
        burn_in = float(learning.get("burn_in_ms", SETTLE_MS)) if self.second_pass else 0.0
        self.burn_steps = round(burn_in / self.dt)
        self.equations: EquationScore | None = None
        self.phase = ""
        self.states: dict[str, torch.Tensor] = {}
        self.currents: dict[str, torch.Tensor] = {}
        for split in ("train", "validation", "test"):
            values = torch.as_tensor(np.ascontiguousarray(data.states[split].transpose(0, 2, 1)))
            self.states[split] = self.scaling.forward(values.double()).float()
            self.currents[split] = torch.as_tensor(data.stimulus[split]) / self.amplitude
        self.observed = list(self.arguments["observables"])
        # each state's first-pass error in units of its one-step change over the training data:
        # a gate's change over one step is small beside V's upstroke and the levels at rest,
        # and measured in those units its kinetics were drowned out
        change = self.states["train"].diff(dim=1)
        self.step_scale = change.pow(2).mean((0, 1)).sqrt().clamp_min(1e-6)
        # a free run's errors in units of each state's spread over the training data
        self.level_scale = self.states["train"].std(dim=(0, 1)).clamp_min(1e-3)
        if self.second_pass and learning.get("second_pass_loss") == "model":
            from ionops.datasets.ionic import get_ionic_model

            names = self.state_names
            scored = learning.get("equation_observables") or [names[k] for k in self.observed]
            others = [k for k in range(len(names)) if k not in self.arguments["gates"]]
            hidden = [k for k in others if k not in self.observed]
            # the hidden states start from the typical training sample's (a recording has none)
            typical = [self.arguments["typical"][others.index(k)] for k in hidden]
            self.equations = EquationScore(
                get_ionic_model(str(data.attributes["model"])),
                self.arguments["parameters"], self.scaling, [names.index(n) for n in scored],
                hidden, torch.tensor(typical, dtype=torch.float32), self.step_scale,
                self.amplitude, self.dt)  # fmt: skip
        # float32 gradients of a long recurrent run decay into subnormals, which slow a CPU
        # step sevenfold (measured); flush them to zero
        torch.set_flush_denormal(True)

    def phases(self, settings: Any) -> Sequence[Phase]:
        """A first pass in one phase, ``first_pass``, or with ``gate_epochs`` in two: ``gates``
        (N1 alone on single steps) and ``sequences`` (N2 alone on windows); then, with
        ``rollout_epochs``, ``rollouts`` (N2 alone on free-running windows). A second pass in
        one, ``second_pass``, with phi1 and N2 frozen."""
        if self.second_pass:
            return (Phase("second_pass", frozen=SECOND_PASS_FROZEN),)
        rollouts = self.rollout_epochs
        until = settings.epochs - rollouts if rollouts else None
        phases = [Phase("first_pass", until=until)] if not self.gate_epochs else [
            Phase("gates", until=self.gate_epochs, frozen=N2),
            Phase("sequences", until=until, frozen=(*N1, "original."))]  # fmt: skip
        if rollouts:
            phases.append(Phase("rollouts", frozen=(*N1, "original.")))
        return tuple(phases)

    def enter(self, phase: Phase) -> None:
        self.phase = phase.name

    def optimisation(self, model: nn.Module, phase: Phase, settings: Any) -> Optimisation:
        """A second pass starts from the first pass's weights, its gating layer kept twice:
        the one retrained and the frozen original (a resumed run then loads its own). The
        ``gates`` and ``rollouts`` phases have their own rates, annealed to 0 over their
        epochs."""
        if phase.name == "gates":
            return annealed(model, float(self.learning["gate_learning_rate"]), self.gate_epochs)
        if self.second_pass:
            from ionops.training.checkpoint import load_checkpoint

            assert isinstance(model, GatingModel)
            first = load_checkpoint(Path(str(self.learning["first_pass_file"])))
            model.load_state_dict(first["model"])
            model.original.load_state_dict(model.network.gating.state_dict())
        if phase.name == "rollouts":  # N2 free-running: gradients clipped
            return annealed(model, float(self.learning["rollout_learning_rate"]),
                            self.rollout_epochs, clip_norm=1.0)  # fmt: skip
        if phase.name == "sequences":  # its schedule runs over its own epochs
            epochs = settings.epochs - self.gate_epochs - self.rollout_epochs
            settings = dataclasses.replace(settings, epochs=epochs)
        return super().optimisation(model, phase, settings)

    def to(self, device: torch.device) -> None:
        self.states = {k: v.to(device) for k, v in self.states.items()}
        self.currents = {k: v.to(device) for k, v in self.currents.items()}
        self.step_scale = self.step_scale.to(device)
        self.level_scale = self.level_scale.to(device)

    def splits(self) -> tuple[str, ...]:
        return ("train", "validation", "test")

    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[Any]:
        """Every training segment cut into windows of ``sequence_ms`` from a random offset,
        shuffled (of ``rollout_ms`` in the ``rollouts`` phase); in the ``gates`` phase every
        single step, shuffled, in batches of ``gate_batch_size``."""
        if self.phase == "gates":
            yield from self._steps(generator, int(self.learning["gate_batch_size"]))
            return
        n, n_t, _ = self.states["train"].shape
        length = self.rollout_steps if self.phase == "rollouts" else self.steps
        length = min(length + self.burn_steps, n_t)
        offset = int(torch.randint(max(n_t - length * (n_t // length), 0) + 1, (1,),
                                   generator=generator))  # fmt: skip
        starts = [(s, offset + k * length) for s in range(n)
                  for k in range((n_t - offset) // length)]  # fmt: skip
        order = torch.randperm(len(starts), generator=generator).tolist()
        for begin in range(0, len(order), batch_size):
            chosen = [starts[i] for i in order[begin : begin + batch_size]]
            segment = torch.tensor([s for s, _ in chosen])
            index = torch.tensor([t for _, t in chosen])[:, None] + torch.arange(length)[None]
            device = self.states["train"].device
            segment, index = segment.to(device), index.to(device)
            yield (
                self.states["train"][segment[:, None], index],
                self.currents["train"][segment[:, None], index],
            )

    def _steps(self, generator: torch.Generator, batch_size: int) -> Iterator[Any]:
        states = self.states["train"]
        n, n_t, n_states = states.shape
        now, after = states[:, :-1].reshape(-1, n_states), states[:, 1:].reshape(-1, n_states)
        order = torch.randperm(n * (n_t - 1), generator=generator).to(states.device)
        for begin in range(0, order.numel(), batch_size):
            chosen = order[begin : begin + batch_size]
            yield now[chosen], after[chosen]

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        assert isinstance(model, GatingModel)
        network = model.network
        if self.phase == "gates":
            now, after = batch
            return network.gate_loss(now, after, self.weight_decay, self.step_scale)
        states, current = batch
        if self.phase == "rollouts":
            return network.rollout_loss(states, current, self.level_scale)
        if not self.second_pass:
            return network.first_pass_loss(states, current, self.weight_decay, self.step_scale)
        burn = min(self.burn_steps, states.shape[1] // 2)  # a short recording: half of it
        if self.equations is not None:
            retrained = recorded_gates(network, network.gating, states)
            original = recorded_gates(network, model.original, states)
            full = states.clone()
            full[..., network.gates] = retrained
            full = self.equations.with_hidden(full, current)
            data = self.equations(full, current, burn)
        else:
            predicted, retrained, original = observed_run(model, states, current)
            target = states[:, 1:, self.observed]
            data = (predicted[:, burn:] - target[:, burn:]).pow(2).mean((0, 1)).sum()
        drift = (retrained[:, burn:] - original[:, burn:]).abs().mean()
        return data + self.drift * drift + self.weight_decay * mean_squared_weight(network.gating)

    # -- errors ----------------------------------------------------------------------------------
    def run(self, model: nn.Module, split: str) -> tuple[NDArray, list[int]]:
        """Each segment of ``split`` predicted from its first state for the whole beats it
        holds (physical units, (n, S, n_t), NaN after the beats) and each one's step count."""
        data = self.data
        cycles = data.cycle_length[split]
        lengths = [run_steps(self.dt, float(c), whole_beats(data.time, float(c)))
                   for c in cycles]  # fmt: skip
        starts = data.states[split][:, :, 0].astype(np.float64)
        phases = [onset_phase(data.attributes, float(c)) for c in cycles]
        cycles_list = [float(c) for c in cycles]
        return predict_runs(model, data.attributes, self.predictor, cycles_list, phases,
                            starts, data.time[: max(lengths)], lengths), lengths  # fmt: skip

    def evaluate(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        predicted, lengths = self.run(model, split)
        truth = self.data.states[split].astype(np.float64)
        rows = [run_errors(self.data.time[:n], truth[k, :, :n], predicted[k, :, :n])
                for k, n in enumerate(lengths)]  # fmt: skip
        return {key: torch.as_tensor(np.stack([row[key] for row in rows])) for key in rows[0]}

    def describe(self) -> dict[str, Any]:
        from ionops.datasets.store import attributes_json

        data = self.data
        train = data.cycle_length["train"]
        cycles = np.concatenate([data.cycle_length[s] for s in self.splits()])
        starts = np.concatenate([data.states[s][:, :, 0] for s in self.splits()])
        return {"kind": "paced", "attributes": attributes_json(data.attributes),
                "time": torch.as_tensor(data.time),
                "ranges": {"cycle_length_ms": [float(train.min()), float(train.max())],
                           "beats": [1.0, whole_beats(data.time, float(train.max()))]},
                "predictor": self.predictor,
                "starts": torch.as_tensor(starts.astype(np.float64)),
                "start_cycles": torch.as_tensor(cycles),
                "start_phases": torch.as_tensor([onset_phase(data.attributes, float(c))
                                                 for c in cycles])}  # fmt: skip


def observed_run(model: GatingModel, states: torch.Tensor, current: torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """The second pass's network on recorded observables: the gates run on their own (hidden)
    from their steady state at the first sample, by the retrained and by the original layer;
    N2 predicts the next observables. Returns (next observables (B, T-1, O), the retrained
    gates, the original gates), scaled."""
    network = model.network
    retrained = recorded_gates(network, network.gating, states)
    original = recorded_gates(network, model.original, states)
    observed = torch.cat([retrained[:, 1:], n2_states(model, states, current, retrained)], dim=-1)
    order = [*network.gates, *network.others]
    columns = [order.index(k) for k in network.observables]
    return observed[..., columns], retrained, original


def n2_states(model: GatingModel, states: torch.Tensor, current: torch.Tensor,
              gates: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """N2's next other states (B, T-1, len(others)), scaled, in ``network.others``' order, fed
    the recorded observables and ``gates`` (B, T, G); its memory starts from the typical
    training sample's other states (a recording gives none)."""
    network = model.network
    start = states[:, 0].clone()
    start[..., network.others] = model.typical.to(states.dtype)
    n2 = network.n2_inputs(states[:, :-1], current[:, :-1], gates[:, 1:])
    hidden, _ = network.lstm(network.phi2(n2), network.memory(start))
    return cast(torch.Tensor, network.phi3(hidden))


def with_n2_hidden(network: GatingNetwork, scaled: torch.Tensor, gates: torch.Tensor,
                others: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Scaled states (B, T, S) of a recording: its observables from ``scaled``, ``gates``
    (B, T, G) for the gates, and N2's ``others`` (B, T, len(others)) for the other hidden
    states."""
    full = scaled.clone()
    full[..., network.gates] = gates
    hidden = [k for k in network.others if k not in network.observables]
    full[..., hidden] = others[..., [network.others.index(k) for k in hidden]]
    return full


def annealed(model: nn.Module, rate: float, epochs: int,
             clip_norm: float | None = None) -> Optimisation:  # fmt: skip
    """Adam over ``model``'s trained parameters from ``rate``, cosine-annealed to 0 over
    ``epochs``."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    return Optimisation([optimizer], [schedule], clip_norm=clip_norm)


def recorded_gates(network: GatingNetwork, layer: GatingLayer,
                   states: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Gates (B, T, G) of ``layer`` run on the recorded observables of scaled ``states``
    (B, T, S) alone, from their steady state at the first sample (the hidden gates of a
    second pass)."""
    first = network.phi1(states[:, 0, network.gate_inputs])
    steps = network.phi1(network.step_inputs(states[:, :-1], states[:, 1:]))
    return _recurrent_gates(layer, first, steps)


def _recurrent_gates(layer: GatingLayer, first: torch.Tensor, steps: torch.Tensor,
                    ) -> torch.Tensor:  # fmt: skip
    """Gates (B, T, G) of ``layer`` from their steady state at phi1's features ``first``
    (B, W), driven by the features of each step (B, T-1, W)."""
    steady, rho = layer.parts(steps)
    h = layer.parts(first)[0]
    rows = [h]
    for k in range(steps.shape[1]):
        h = rho[:, k] * h + (1.0 - rho[:, k]) * steady[:, k]
        rows.append(h)
    return torch.stack(rows, dim=1)
