"""A trained gating network in use: a number of beats at a cycle length.

The inputs are ``cycle_length_ms`` and ``beats``. A run starts from the first state of the
recorded segment (of any split) whose cycle length is nearest, at its phase in the cycle, and
is paced by the dataset's pulse at the asked cycle length. The trajectory is on the dataset's
kept grid (``segment_ms - discard_ms``), NaN after the beats. The network free-runs, or its
converted ODE is solved (the training's ``predictor``). The solver's answer is the ionic model
from the same state under the same pacing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ionops.datasets.ionic import get_ionic_model
from ionops.errors import UserError
from ionops.models.families.gating_runs import (
    pacing_from,
    predict_runs,
    run_errors,
    run_steps,
    whole_beats,
)
from ionops.models.family import Serving


class GatingServing(Serving):
    """See the module docstring."""

    def input_names(self, described: Mapping[str, Any]) -> list[str]:
        return ["cycle_length_ms", "beats"]

    def _runs(
        self, described: Mapping[str, Any], inputs: np.ndarray
    ) -> list[tuple[float, int, int]]:
        """Each row's (cycle length, start segment, steps), checked."""
        attributes = described["attributes"]
        time = described["time"].double().numpy()
        dt = float(attributes["dt_ms"])
        cycles = described["start_cycles"].double().numpy()
        out = []
        for row in np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1):
            cycle, beats = float(row[0]), float(row[1])
            if not cycle > float(attributes["stimulus_ms"]) or cycle < dt:
                raise UserError(f"cycle_length_ms = {cycle:g}: give a cycle length longer than "
                                f"the pulse ({attributes['stimulus_ms']:g} ms) and the step "
                                f"({dt:g} ms)")  # fmt: skip
            most = whole_beats(time, cycle)
            if beats < 1 or beats != int(beats) or beats > most:
                raise UserError(f"beats = {beats:g}: give a whole number from 1 to {most} at "
                                f"{cycle:g} ms (the grid holds {time[-1]:g} ms)")  # fmt: skip
            steps = run_steps(dt, cycle, int(beats))
            out.append((cycle, int(np.argmin(np.abs(cycles - cycle))), steps))
        return out

    def predict(self, model: nn.Module, described: Mapping[str, Any],
                inputs: torch.Tensor) -> torch.Tensor:  # fmt: skip
        runs = self._runs(described, inputs.detach().double().cpu().numpy())
        starts = described["starts"].double().numpy()
        phases = described["start_phases"].double().numpy()
        time = described["time"].double().numpy()
        out = predict_runs(model, described["attributes"], str(described["predictor"]),
                           [c for c, _, _ in runs], [float(phases[s]) for _, s, _ in runs],
                           starts[[s for _, s, _ in runs]], time,
                           [n for _, _, n in runs])  # fmt: skip
        return torch.as_tensor(out)

    def batch_hint(self, arguments: Mapping[str, Any], described: Mapping[str, Any],
                   device: torch.device) -> int:  # fmt: skip
        return 64

    def solve(self, described: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
        from ionops.datasets.solver import SolverSettings, solve_stimulus

        attributes = described["attributes"]
        model = get_ionic_model(str(attributes["model"]))
        parameters = model.parameter_vector(dict(attributes["parameters"]))
        time = described["time"].double().numpy()
        starts = described["starts"].double().numpy()
        phases = described["start_phases"].double().numpy()
        rtol, atol = model.tolerances
        settings = SolverSettings(rtol=rtol, atol=atol, max_steps=50_000_000)
        runs = self._runs(described, inputs)
        out = np.full((len(runs), model.n_states, time.size), np.nan)
        for index, (cycle, start, steps) in enumerate(runs):
            pacing = pacing_from(attributes, cycle, float(phases[start]))
            solution = solve_stimulus(model, time[:steps], pacing, settings, parameters,
                                      starts[start], label=f"{cycle:g} ms pacing")  # fmt: skip
            out[index, :, :steps] = solution.states
        return out

    def errors(self, predicted: torch.Tensor, truth: torch.Tensor,
               described: Mapping[str, Any]) -> dict[str, torch.Tensor]:  # fmt: skip
        """Each row's errors over its beats, as evaluation names them."""
        time = described["time"].double().numpy()
        found: dict[str, list[Any]] = {}
        for p_row, t_row in zip(predicted.double().cpu().numpy(), truth.double().cpu().numpy(),
                                strict=True):  # fmt: skip
            # the run's length: where the prediction stops (a failed ODE: nothing) or the truth
            ran = np.flatnonzero(~np.isnan(p_row[0]))
            steps = min(int(np.isfinite(t_row[0]).sum()), int(ran[-1]) + 1 if ran.size else 0)
            if steps < 2:
                steps = int(np.isfinite(t_row[0]).sum())
            errors = run_errors(time[:steps], t_row[:, :steps], p_row[:, :steps])
            for key, value in errors.items():
                found.setdefault(key, []).append(np.asarray(value, dtype=np.float64))
        return {k: torch.as_tensor(np.stack(v)) for k, v in found.items()}


SERVING = GatingServing()
