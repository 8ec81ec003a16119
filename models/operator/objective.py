"""The operator objective: relative L2 of whole trajectories, and every paper metric.

Shared by every family that learns the operator of stimulus protocols (the FNO's,
paper 000). The search minimises the mean validation relative L2 (inputs and targets
z-scored per time point); the report and ``ionops predict --compare`` read
the same per-sample errors, in normalised space and in physical units.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ionops.models.family import Objective

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ionops.datasets.loading import Dataset, Split

EVAL_BATCH = 64
"""Samples per forward pass when a split is evaluated."""


class OperatorObjective(Objective):
    """Relative L2 on whole trajectories (normalised), and every paper metric per sample.

    Errors: ``rel_l1``, ``rel_l2``, ``rel_h1`` (n, n_states) in normalised space,
    the same in physical units (``phys_...``), and ``rel_h1_paper`` (n,); see
    :mod:`ionops.models.operator.metrics`.
    """

    def __init__(self, data: Dataset) -> None:
        self.data = data
        self.state_names = data.state_names
        self.dt = float(data.time[1] - data.time[0])
        self.device: torch.device | None = None
        self._splits = dict(data.splits)

    def to(self, device: torch.device) -> None:
        from ionops.datasets.loading import Split

        self.device = device
        if device.type != "cpu":
            self._splits = {
                name: Split(
                    s.inputs.to(device), s.targets.to(device), s.amplitude, s.t_stim, s.subset
                )
                for name, s in self.data.splits.items()
            }

    def splits(self) -> tuple[str, ...]:
        return tuple(self._splits)

    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[Any]:
        import torch

        split = self._splits["train"]
        order = torch.randperm(len(split), generator=generator).to(split.targets.device)
        for begin in range(0, len(split), batch_size):
            index = order[begin : begin + batch_size]
            yield split.inputs.index_select(0, index), split.targets.index_select(0, index)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        from ionops.models.operator import metrics

        inputs, targets = batch
        return metrics.loss(model(inputs).float(), targets)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        return evaluate_split(model, self._splits[split], self.data.target_normalizer, self.dt)

    def state_dict(self) -> dict[str, Any]:
        return {"normalizers": {"input": self.data.input_normalizer.state_dict(),
                                "target": self.data.target_normalizer.state_dict()}}  # fmt: skip

    def describe(self) -> dict[str, Any]:
        import torch

        from ionops.datasets.store import attributes_json

        train = self.data.splits["train"]
        ranges = {
            name: [float(values.min()), float(values.max())]
            for name, values in (("amplitude", train.amplitude), ("t_stim", train.t_stim))
        }
        return {"kind": "operator", "attributes": attributes_json(self.data.attributes),
                "time": torch.tensor(self.data.time), "ranges": ranges,
                **self.state_dict()}  # fmt: skip


def evaluate_split(model: nn.Module, split: Split, normalizer: Any, dt: float
                   ) -> dict[str, torch.Tensor]:  # fmt: skip
    """Per-sample errors of ``split``, normalised (``rel_l2``...) and physical (``phys_...``)."""
    import torch

    model.eval()
    pieces: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for begin in range(0, len(split), EVAL_BATCH):
            inputs = split.inputs[begin : begin + EVAL_BATCH]
            targets = split.targets[begin : begin + EVAL_BATCH]
            prediction = model(inputs).float()
            errors = both_errors(prediction, targets, normalizer.decode(prediction),
                                 normalizer.decode(targets), normalizer, dt)  # fmt: skip
            for key, value in errors.items():
                pieces.setdefault(key, []).append(value)
    return {key: torch.cat(values) for key, values in pieces.items()}


def both_errors(normalised: torch.Tensor, normalised_truth: torch.Tensor, physical: torch.Tensor,
                physical_truth: torch.Tensor, normalizer: Any,
                dt: float) -> dict[str, torch.Tensor]:  # fmt: skip
    """Per-sample errors of a prediction, normalised (``rel_l2``...) and physical
    (``phys_rel_...``, undefined where the truth is below 1 % of the typical trajectory, and
    ``phys_rmse``, the RMS error in each state's unit, defined everywhere)."""
    from ionops.models.operator import metrics
    from ionops.models.relative_errors import rms

    # the typical trajectory on the truth's grid: statistics per variable (or none) are one
    # column, which the H1 norm's time derivative cannot take
    typical = (normalizer.mean.pow(2) + normalizer.std.pow(2)).sqrt()
    typical = typical.expand(-1, physical_truth.shape[-1])
    errors = metrics.per_sample_errors(normalised, normalised_truth, dt)
    physical_errors = metrics.per_sample_errors(physical, physical_truth, dt, typical)
    physical_errors["rmse"] = rms(physical, physical_truth)  # defined for every sample
    return errors | {f"phys_{k}": v for k, v in physical_errors.items()}
