"""The one training loop: a single run, a search trial and a retraining all call :func:`train`.

AdamW with a StepLR schedule, relative-L2 loss (see :mod:`.metrics`), batches
sliced from tensors held in memory (on the GPU when there is one), metrics per
epoch on the chosen splits in normalised space and in physical units, and a
self-describing checkpoint from which a resumed run continues exactly as the
uninterrupted one would (on CPU: bit for bit).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ionops.datasets.loading import Dataset, Normalizer, Split
from ionops.training import metrics
from ionops.training.checkpoint import load_checkpoint, save_checkpoint

EVAL_BATCH = 64


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser, schedule and bookkeeping of one training run."""

    learning_rate: float
    weight_decay: float
    gamma: float
    step_size: int = 10
    batch_size: int = 32
    epochs: int = 1000
    seed: int = 0
    normalisation: str = "per_time"
    device: str = "auto"
    mixed_precision: bool = False
    eval_splits: tuple[str, ...] = ("train", "validation", "test")
    final_splits: tuple[str, ...] = ()  # evaluated after the last epoch too (besides eval_splits)
    eval_every: int = 1
    checkpoint_every: int = 1

    @classmethod
    def from_config(cls, config: Any, **extra: Any) -> TrainSettings:
        """From an experiment's ``[training]`` section plus run-specific settings."""
        return cls(**config.model_dump(), **extra)

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


@dataclass
class EpochReport:
    """What one finished epoch produced; ``metrics`` is empty on epochs without evaluation."""

    epoch: int
    train_loss: float
    learning_rate: float
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        row = {"epoch": self.epoch, "train_loss": self.train_loss}
        row.update(learning_rate=self.learning_rate, seconds=self.seconds)
        return {**row, **self.metrics}


@dataclass
class TrainingResult:
    """The end of a run: final metrics, cost, history and per-sample errors of each split."""

    epochs: int
    final: dict[str, float]
    parameter_count: int
    peak_memory_bytes: int
    train_seconds: float
    history: list[dict[str, float]]
    per_sample: dict[str, dict[str, np.ndarray]]


def train(
    model: nn.Module,
    data: Dataset,
    settings: TrainSettings,
    *,
    family: str = "fno",
    arguments: dict[str, Any] | None = None,
    checkpoint: Path | None = None,
    resume: bool = True,
    on_epoch: Callable[[EpochReport, Path | None], None] | None = None,
) -> TrainingResult:
    """Train ``model`` on ``data``; continue from ``checkpoint`` when it exists and ``resume``.

    ``on_epoch(report, checkpoint_written)`` runs after every epoch (a search
    trial reports to Ray Tune from it). ``arguments`` are the model's
    constructor arguments, stored in the checkpoint with ``family``.
    """
    device = settings.torch_device()
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=settings.step_size, gamma=settings.gamma
    )
    shuffle = torch.Generator().manual_seed(settings.seed)
    history: list[dict[str, float]] = []
    start_epoch, elapsed = 0, 0.0
    if checkpoint is not None and resume and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        shuffle.set_state(state["rng"]["shuffle"])
        torch.set_rng_state(state["rng"]["torch"])
        start_epoch, elapsed = state["epoch"], state["train_seconds"]
        history = list(state["history"])

    train_split = _to_device(data.splits["train"], device)
    every_time = settings.eval_splits
    evaluated = {name: _to_device(data.splits[name], device)
                 for name in dict.fromkeys(settings.final_splits + every_time)}  # fmt: skip
    dt = float(data.time[1] - data.time[0])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def snapshot(epoch: int) -> dict[str, Any]:
        return {
            "family": family, "arguments": arguments or {}, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": {"shuffle": shuffle.get_state(), "torch": torch.get_rng_state()},
            "epoch": epoch, "train_seconds": elapsed, "history": history,
            "settings": asdict(settings),
            "normalizers": {"input": data.input_normalizer.state_dict(),
                            "target": data.target_normalizer.state_dict()},
        }  # fmt: skip

    for epoch in range(start_epoch + 1, settings.epochs + 1):
        began = time.perf_counter()
        train_loss = _train_epoch(model, optimizer, train_split, settings, shuffle, device)
        scheduler.step()
        elapsed += time.perf_counter() - began
        report = EpochReport(epoch, train_loss, optimizer.param_groups[0]["lr"], elapsed)
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            last = epoch == settings.epochs
            for name, split in evaluated.items():
                if name not in every_time and not last:
                    continue
                errors = evaluate(model, split, data.target_normalizer, dt)
                report.metrics.update(summarise(errors, name, data.state_names))
        history.append(report.as_dict())
        written = None
        if checkpoint is not None and (
            epoch % settings.checkpoint_every == 0 or epoch == settings.epochs
        ):
            save_checkpoint(snapshot(epoch), checkpoint)
            written = checkpoint
        if on_epoch is not None:
            on_epoch(report, written)

    per_sample = {
        name: {k: v.cpu().numpy() for k, v in
               evaluate(model, split, data.target_normalizer, dt).items()}
        for name, split in evaluated.items()
    }  # fmt: skip
    final = {k: v for row in history[-1:] for k, v in row.items() if "/" in k}
    return TrainingResult(
        epochs=settings.epochs,
        final=final,
        parameter_count=sum(p.numel() for p in model.parameters() if p.requires_grad),
        peak_memory_bytes=_peak_memory(device),
        train_seconds=elapsed,
        history=history,
        per_sample=per_sample,
    )


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    settings: TrainSettings,
    shuffle: torch.Generator,
    device: torch.device,
) -> float:
    model.train()
    n = len(split)
    order = torch.randperm(n, generator=shuffle).to(device)
    total, batches = torch.zeros((), device=device), 0
    autocast = settings.mixed_precision and device.type == "cuda"
    for begin in range(0, n, settings.batch_size):
        index = order[begin : begin + settings.batch_size]
        inputs, targets = split.inputs.index_select(0, index), split.targets.index_select(0, index)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            prediction = model(inputs)
        batch_loss = metrics.loss(prediction.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        batch_loss.backward()
        optimizer.step()
        total += batch_loss.detach()
        batches += 1
    return float(total) / max(batches, 1)


@torch.no_grad()
def evaluate(
    model: nn.Module, split: Split, normalizer: Normalizer, dt: float
) -> dict[str, torch.Tensor]:
    """Per-sample errors of ``split``, normalised (``rel_l2``...) and physical (``phys_...``)."""
    model.eval()
    pieces: dict[str, list[torch.Tensor]] = {}
    typical = torch.sqrt(normalizer.mean.pow(2) + normalizer.std.pow(2))
    for begin in range(0, len(split), EVAL_BATCH):
        inputs = split.inputs[begin : begin + EVAL_BATCH]
        targets = split.targets[begin : begin + EVAL_BATCH]
        prediction = model(inputs).float()
        errors = metrics.per_sample_errors(prediction, targets, dt)
        physical = metrics.per_sample_errors(
            normalizer.decode(prediction), normalizer.decode(targets), dt, typical
        )
        errors.update({f"phys_{k}": v for k, v in physical.items()})
        for key, value in errors.items():
            pieces.setdefault(key, []).append(value)
    return {key: torch.cat(values) for key, values in pieces.items()}


def summarise(
    errors: dict[str, torch.Tensor], split: str, state_names: Sequence[str]
) -> dict[str, float]:
    """Means over samples: ``split/metric`` (over variables too) and ``split/metric/state``.

    Samples where an error is undefined (NaN: a truth that is identically zero)
    are left out of its means.
    """
    out: dict[str, float] = {}
    for key, values in errors.items():
        out[f"{split}/{key}"] = float(values.nanmean())
        if values.ndim == 2:
            for index, name in enumerate(state_names):
                out[f"{split}/{key}/{name}"] = float(values[:, index].nanmean())
    return out


def _to_device(split: Split, device: torch.device) -> Split:
    if device.type == "cpu":
        return split
    return Split(split.inputs.to(device), split.targets.to(device),
                 split.amplitude, split.t_stim, split.subset)  # fmt: skip


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
