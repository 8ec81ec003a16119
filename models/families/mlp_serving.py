"""A trained MLP in use: the varied inputs -> trajectories on the training dataset's grid.

Each learner predicts as in its validation (:mod:`ionops.models.families.mlp_learners`):
a point network at every grid time, a trajectory network in one pass, an
update rule by rollout (a rollout that leaves the trained states' range is
held at its edge, with a warning, and counted in ``diverged``). The solver's
answer is the training dataset's solver, so predicting a test split gives
its test errors back.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ionops.datasets.loading import ProblemSplit
from ionops.models.families.mlp_learners import (
    predict_points,
    predict_trajectories,
    rollout,
    trajectory_errors,
)
from ionops.models.family import Serving


def every_input(attributes: Mapping[str, Any], varied: torch.Tensor) -> torch.Tensor:
    """Rows of every input of a problem (initial states, stimulus) from its varied columns,
    the fixed ones filled in."""
    names, chosen = list(attributes["input_names"]), list(attributes["varied"])
    rows = torch.empty(len(varied), len(names), dtype=varied.dtype, device=varied.device)
    for column, name in enumerate(names):
        if name in chosen:
            rows[:, column] = varied[:, chosen.index(name)]
        else:
            rows[:, column] = float(attributes["fixed"][name])
    return rows


class MLPServing(Serving):
    """The problem's varied inputs -> trajectories; see the module docstring."""

    def input_names(self, described: Mapping[str, Any]) -> list[str]:
        return list(described["attributes"]["varied"])

    def fixed_inputs(self, described: Mapping[str, Any]) -> dict[str, float]:
        return {k: float(v) for k, v in described["attributes"].get("fixed", {}).items()}

    def predict(
        self, model: nn.Module, described: Mapping[str, Any], inputs: torch.Tensor
    ) -> torch.Tensor:
        """Trajectories (n, n_states, n_t), physical units, of (n, varied inputs) rows."""
        attributes = described["attributes"]
        names, varied = list(attributes["input_names"]), list(attributes["varied"])
        rows = every_input(attributes, inputs)
        n_states = len(attributes["state_names"])
        split = ProblemSplit("trajectories", rows, None, rows[:, :0], described["time"].numpy())
        if described["learner"] == "trajectory":
            return predict_trajectories(model, split, [names.index(n) for n in varied], n_states)
        if described["learner"] != "iterative":
            return predict_points(model, split, [names.index(n) for n in varied])
        stimulus = attributes["stimulus_name"]
        extra = [names.index(stimulus)] if stimulus in varied else []
        lower, upper = (described[k].to(rows) for k in ("lower", "upper"))
        trajectory, diverged = rollout(model, split, extra, n_states, lower, upper)
        if diverged.any():
            warnings.warn(f"{int(diverged.sum())} of {len(diverged)} rollouts left the trained "
                          "states' range and are held at its edge from there on",
                          stacklevel=3)  # fmt: skip
        return trajectory

    def solve(self, described: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
        """The training dataset's solver on (n, varied inputs) rows: (n, n_states, n_t)."""
        from ionops.datasets.problems import solve_trajectories

        attributes = described["attributes"]
        rows = every_input(attributes, torch.as_tensor(inputs, dtype=torch.float64))
        return solve_trajectories(attributes, rows.numpy(), described["time"].double().numpy())

    def errors(self, predicted: torch.Tensor, truth: torch.Tensor,
               described: Mapping[str, Any]) -> dict[str, torch.Tensor]:  # fmt: skip
        """The errors a retraining reports, and ``diverged`` for an update rule's rollouts."""
        found = trajectory_errors(predicted.float(), truth.float())
        if described["learner"] == "iterative":  # a diverged rollout is held at a bound
            lower, upper = (described[k][None, :, None] for k in ("lower", "upper"))
            held = (predicted == lower.to(predicted)) | (predicted == upper.to(predicted))
            found["diverged"] = held.flatten(1).any(dim=1).float()
        return found


SERVING = MLPServing()
