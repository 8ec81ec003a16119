"""An operator surrogate in use: stimuli (amplitude, t_stim) -> every state's trajectory.

Shared by every family that learns the operator of stimulus protocols. The
stimulus is put on the surrogate's grid and normalised as in training, the
network's output decoded to physical units; the solver's answer is the
training dataset's solver with its tolerances and initial state, and the
errors are the ones a retraining reports
(:func:`ionops.models.operator.objective.both_errors`), so predicting a test
split gives its test errors back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ionops.datasets.loading import Normalizer
from ionops.models.family import Serving
from ionops.models.operator.objective import both_errors


class OperatorServing(Serving):
    """Stimuli (amplitude, t_stim) -> every state's trajectory; see the module docstring."""

    def input_names(self, described: Mapping[str, Any]) -> list[str]:
        return ["amplitude", "t_stim"]

    def predict(
        self, model: nn.Module, described: Mapping[str, Any], inputs: torch.Tensor
    ) -> torch.Tensor:
        """Trajectories (n, n_states, n_t), physical units, of (n, 2) amplitudes and durations."""
        time = described["time"].to(inputs.device, inputs.dtype)
        stimulus = (time[None, :] <= inputs[:, 1:2]) * inputs[:, 0:1]
        normalizers = described["normalizers"]
        Normalizer.from_state_dict(normalizers["input"]).encode_(stimulus[:, None, :])
        return Normalizer.from_state_dict(normalizers["target"]).decode(model(stimulus))

    def solve(self, described: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
        """The dataset solver's trajectories (n, n_states, n_t) of (n, 2) stimuli."""
        from ionops.datasets.ionic import get_ionic_model
        from ionops.datasets.solver import SolverSettings
        from ionops.datasets.solver import solve as solve_one

        attributes = described["attributes"]
        model = get_ionic_model(str(attributes["model"]))
        p = model.parameter_vector(attributes["parameters"])
        settings = SolverSettings(rtol=float(attributes["rtol"]), atol=tuple(attributes["atol"]),
                                  max_steps=int(attributes["max_steps"]))  # fmt: skip
        time = described["time"].double().numpy()
        y0 = np.asarray(attributes["initial_state"], dtype=np.float64)
        return np.stack([
            solve_one(model, time, float(amplitude), float(t_stim), settings, p=p, y0=y0,
                      label=f"stimulus {amplitude:g} for {t_stim:g} ms").states
            for amplitude, t_stim in inputs
        ])  # fmt: skip

    def errors(self, predicted: torch.Tensor, truth: torch.Tensor,
               described: Mapping[str, Any]) -> dict[str, torch.Tensor]:  # fmt: skip
        """Per-sample errors of physical trajectories, named and computed as in training."""
        normalizer = Normalizer.from_state_dict(described["normalizers"]["target"])
        dt = float(described["time"][1] - described["time"][0])
        predicted, truth = predicted.float(), truth.float()
        return both_errors(normalizer.encode_(predicted.clone()), normalizer.encode_(truth.clone()),
                           predicted, truth, normalizer, dt)  # fmt: skip
