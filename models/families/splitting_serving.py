"""A trained splitting PINN (or baseline) in use: its own problem, over a horizon.

A PINN is trained on one problem: the dataset's model, parameters, stimulus and start. The
one input is ``horizon_ms``; the trajectory is on the reference's grid, NaN after the horizon
and, for a march, at the grid's times between its windows' ends (it has states there only). The
solver's answer is the dataset's reference solver (BDF at rtol 1e-11, or the L1 scheme at
the dataset's step) from the same start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ionops.datasets.ionic import get_ionic_model
from ionops.errors import UserError
from ionops.models.families.splitting_learning import (
    MarchedSolution,
    common_times,
    crossings,
    trajectory_errors,
)
from ionops.models.family import Serving


class SplittingServing(Serving):
    """See the module docstring."""

    def input_names(self, described: Mapping[str, Any]) -> list[str]:
        return ["horizon_ms"]

    def _keeps(self, described: Mapping[str, Any], inputs: np.ndarray) -> list[np.ndarray]:
        time = described["time"].double().numpy()
        out = []
        for row in np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1):
            horizon = float(row[0])
            if not 0 < horizon <= time[-1] + 1e-9:
                raise UserError(f"horizon_ms = {horizon:g}: a PINN answers its own problem, "
                                f"0 < horizon_ms <= {time[-1]:g}")  # fmt: skip
            out.append(time <= horizon + 1e-9)
        return out

    def predict(self, model: nn.Module, described: Mapping[str, Any],
                inputs: torch.Tensor) -> torch.Tensor:  # fmt: skip
        time = described["time"].double().numpy()
        keeps = self._keeps(described, inputs.detach().double().cpu().numpy())
        if isinstance(model, MarchedSolution):
            marched, states, _ = model.trajectory()
            values = np.full((states.shape[0], time.size), np.nan)
            values[:, common_times(time, marched)] = states[:, common_times(marched, time)]
        else:
            parameter = next(model.parameters())
            at = torch.as_tensor(time, dtype=parameter.dtype, device=parameter.device)
            with torch.no_grad():
                values = model(at).T.double().cpu().numpy()
        out = np.full((len(keeps), values.shape[0], time.size), np.nan)
        for index, keep in enumerate(keeps):
            out[index][:, keep] = values[:, keep]
        return torch.as_tensor(out)

    def batch_hint(self, arguments: Mapping[str, Any], described: Mapping[str, Any],
                   device: torch.device) -> int:  # fmt: skip
        return 1

    def solve(self, described: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
        from ionops.datasets.solver import SolverSettings, solve_stimulus
        from ionops.datasets.stimuli import from_section

        attributes = described["attributes"]
        model = get_ionic_model(str(attributes["model"]))
        parameters = model.parameter_vector(dict(attributes["parameters"]))
        start = model.initial_state(parameters, str(attributes["initial_state"]) or None)
        time = described["time"].double().numpy()
        if model.caputo:
            settings = SolverSettings(rtol=1e-10, atol=1e-12, max_steps=100_000_000,
                                      max_step=float(attributes["caputo_step_ms"]))  # fmt: skip
        else:
            settings = SolverSettings(rtol=float(attributes["rtol"]), atol=1e-12,
                                      max_steps=100_000_000)  # fmt: skip
        stimulus = from_section(dict(attributes["stimulus"]))
        keeps = self._keeps(described, inputs)
        out = np.full((len(keeps), model.n_states, time.size), np.nan)
        for index, keep in enumerate(keeps):
            solution = solve_stimulus(model, time[keep], stimulus, settings, parameters, start)
            out[index][:, keep] = solution.states
        return out

    def errors(self, predicted: torch.Tensor, truth: torch.Tensor,
               described: Mapping[str, Any]) -> dict[str, torch.Tensor]:  # fmt: skip
        """Each row's relative L2 and spike scores over its finite points (for a model with
        resets, the spikes are the crossings of its threshold on that grid)."""
        attributes = described["attributes"]
        model = get_ionic_model(str(attributes["model"]))
        time = described["time"].double().numpy()
        found: dict[str, list[np.ndarray]] = {}
        for p_row, t_row in zip(predicted.double().cpu().numpy(), truth.double().cpu().numpy(),
                                strict=True):  # fmt: skip
            keep = np.isfinite(t_row[0]) & np.isfinite(p_row[0])
            true_events = np.empty(0)
            if model.has_events:
                p = model.parameter_vector(dict(attributes["parameters"]))
                true_events = crossings(model, p, time[keep], t_row[:, keep])
            errors, _ = trajectory_errors(attributes, time[keep], t_row[:, keep],
                                          p_row[:, keep], true_events, None,
                                          float(described["spike_threshold"]),
                                          float(described["spike_window_ms"]))  # fmt: skip
            for key, value in errors.items():
                found.setdefault(key, []).append(np.asarray(value, dtype=np.float64))
        return {k: torch.as_tensor(np.stack(v)) for k, v in found.items()}


SERVING = SplittingServing()
