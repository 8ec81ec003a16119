"""A trained neural ODE in use: (initial state, applied current, horizon) -> trajectories.

Inputs are each state's initial value (``V0``, ``n0``, ...), the stimulus amplitude (the
model's stimulus name, ``i_app`` for HH) and ``horizon_ms``; the trajectory is on the
training dataset's long grid (0 to ``long_end_ms``), NaN after the row's horizon. The
network never saw another current: the applied current enters every ionic model here
additively, so a row at another amplitude integrates f_theta + F(z, I) - F(z, I_trained)
(a constant shift for a constant current). The solver's answer is the dataset's own
solver (BDF, its tolerances) from the same state, current and horizon.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ionops.errors import UserError
from ionops.models.families.node_field import forecast, right_hand_side
from ionops.models.families.node_learning import long_errors, trajectory_errors
from ionops.models.family import Serving


def _amplitude(attributes: Mapping[str, Any]) -> float:
    return float(attributes["stimulus"].get("amplitude", 0.0))


def _shift(attributes: Mapping[str, Any], z0: np.ndarray, amplitude: float) -> np.ndarray:
    """F(z0, amplitude) - F(z0, trained amplitude) at t = 0: the field's change of current."""
    trained = _amplitude(attributes)
    if amplitude == trained:
        return np.zeros(len(z0))
    if attributes["stimulus"]["protocol"] != "constant":
        raise UserError(f"{attributes['stimulus_name']} = {amplitude:g}: this surrogate was "
                        f"trained under a {attributes['stimulus']['protocol']} stimulus, and "
                        "only a constant current can be changed; give "
                        f"{attributes['stimulus_name']} = {trained:g}")  # fmt: skip
    at = np.asarray(z0, dtype=np.float64)[:, None]
    zero = np.zeros(1)
    return np.asarray(right_hand_side(attributes, at, zero, amplitude)
                      - right_hand_side(attributes, at, zero))[:, 0]  # fmt: skip


class NodeServing(Serving):
    """See the module docstring."""

    def input_names(self, described: Mapping[str, Any]) -> list[str]:
        attributes = described["attributes"]
        return [*(f"{name}0" for name in attributes["state_names"]),
                str(attributes["stimulus_name"]), "horizon_ms"]  # fmt: skip

    def _rows(self, described: Mapping[str, Any], inputs: np.ndarray) -> list[tuple[Any, ...]]:
        time = described["time"].double().numpy()
        n_states = len(described["attributes"]["state_names"])
        out = []
        for row in np.asarray(inputs, dtype=np.float64):
            horizon = float(row[n_states + 1])
            if not 0 < horizon <= time[-1] + 1e-9:
                raise UserError(f"horizon_ms = {horizon:g}: this surrogate predicts on its "
                                f"dataset's grid, 0 < horizon_ms <= {time[-1]:g}")  # fmt: skip
            out.append((row[:n_states], float(row[n_states]), time <= horizon + 1e-9))
        return out

    def predict(self, model: nn.Module, described: Mapping[str, Any],
                inputs: torch.Tensor) -> torch.Tensor:  # fmt: skip
        attributes = described["attributes"]
        time = described["time"].double().numpy()
        rows = self._rows(described, inputs.detach().double().cpu().numpy())
        out = np.full((len(rows), len(attributes["state_names"]), time.size), np.nan)
        for index, (z0, amplitude, keep) in enumerate(rows):
            if described["method"] == "pinn":
                if amplitude != _amplitude(attributes):
                    raise UserError("a PINN of t alone predicts its training trajectory only: "
                                    f"give {attributes['stimulus_name']} = "
                                    f"{_amplitude(attributes):g}")  # fmt: skip
                parameter = next(model.parameters())
                with torch.no_grad():
                    values = model(torch.as_tensor(time[keep], dtype=parameter.dtype,
                                                   device=parameter.device))  # fmt: skip
                out[index, :, keep] = values.double().cpu().numpy()
                continue
            shift = _shift(attributes, z0, amplitude)
            out[index, :, keep] = forecast(model, z0, time[keep], described["integrator"],
                                           shift).T  # fmt: skip
        parameter = next(model.parameters())
        return torch.as_tensor(out, dtype=parameter.dtype, device=parameter.device)

    def batch_hint(self, arguments: Mapping[str, Any], described: Mapping[str, Any],
                   device: torch.device) -> int:  # fmt: skip
        return 1  # each row is one integration

    def solve(self, described: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
        from ionops.datasets.ionic import get_ionic_model
        from ionops.datasets.solver import SolverSettings, solve_stimulus
        from ionops.datasets.stimuli import from_section

        attributes = described["attributes"]
        model = get_ionic_model(str(attributes["model"]))
        parameters = model.parameter_vector(dict(attributes["parameters"]))
        time = described["time"].double().numpy()
        settings = SolverSettings(rtol=float(attributes["rtol"]), atol=float(attributes["atol"]),
                                  max_steps=10_000_000)  # fmt: skip
        rows = self._rows(described, inputs)
        out = np.full((len(rows), len(attributes["state_names"]), time.size), np.nan)
        for index, (z0, amplitude, keep) in enumerate(rows):
            record = dict(attributes["stimulus"])
            if "amplitude" in record:
                record["amplitude"] = amplitude
            stimulus = from_section(record)
            solution = solve_stimulus(model, time[keep], stimulus, settings, parameters, z0)
            out[index, :, keep] = solution.states.T
        return out

    def errors(self, predicted: torch.Tensor, truth: torch.Tensor,
               described: Mapping[str, Any]) -> dict[str, torch.Tensor]:  # fmt: skip
        """Each row's errors as the test split's (after the window to ``t_end_ms``, and
        ``long_rmse`` after it where the horizon reaches)."""
        attributes = described["attributes"]
        window, t_end = float(attributes["window_ms"]), float(attributes["t_end_ms"])
        time = described["time"].double().numpy()
        found: dict[str, list[np.ndarray]] = {}
        for p_row, t_row in zip(predicted.double().cpu().numpy(), truth.double().cpu().numpy(),
                                strict=True):  # fmt: skip
            keep = np.isfinite(t_row[0])
            errors, _ = trajectory_errors(time[keep], t_row[:, keep], p_row[:, keep], window,
                                          t_end, float(described["spike_threshold"]),
                                          float(described["spike_window_ms"]))  # fmt: skip
            errors.update(long_errors(time[keep], t_row[:, keep], p_row[:, keep], t_end))
            for key, value in errors.items():
                found.setdefault(key, []).append(np.asarray(value, dtype=np.float64))
        # an error some rows cannot have (long_rmse of a short horizon) is left out
        return {k: torch.as_tensor(np.stack(v)) for k, v in found.items() if len(v) == len(truth)}


SERVING = NodeServing()
