"""The one training loop: a single run, a search trial and a retraining all call :func:`train`.

The loop knows optimisers and schedules by name and nothing of any family:
the family's :class:`~ionops.models.family.Objective` gives the batches of an
epoch, the loss of each and the per-sample errors of each split. Metrics are
means over samples per evaluated epoch (with ``SPLIT/eval_seconds``, the time
the evaluation of the split took); a self-describing checkpoint lets a
resumed run continue exactly as the uninterrupted one would (on CPU: bit for
bit). A loss that becomes NaN or infinite stops the run at that epoch.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ionops.errors import IonopsError, UserError
from ionops.models.family import Objective
from ionops.training.checkpoint import load_checkpoint, save_checkpoint
from ionops.training.optimisation import Optimisation, Phase, check_phases, freeze, phase_at

#: the loop's own figure beside a family's errors: seconds to evaluate a split
EVAL_SECONDS = "eval_seconds"


class NonFiniteLoss(IonopsError):
    """The training loss became NaN or infinite; the message names the epoch."""


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser, schedule and bookkeeping of one training run (see ``[training]``)."""

    learning_rate: float
    weight_decay: float = 0.0
    gamma: float = 0.9
    gradient_clip: float | None = None
    optimizer: str = "adamw"
    scheduler: str = "step"
    step_size: int = 10
    patience: int = 10
    batch_size: int = 32
    epochs: int = 1000
    seed: int = 0
    normalisation: str | None = None
    device: str = "auto"
    mixed_precision: bool = False
    eval_splits: tuple[str, ...] = ("train", "validation", "test")
    final_splits: tuple[str, ...] = ()  # evaluated after the last epoch too (besides eval_splits)
    eval_every: int = 1
    checkpoint_every: int = 1

    @classmethod
    def from_config(cls, config: Any, **extra: Any) -> TrainSettings:
        """From an experiment's ``[training]`` section; ``extra`` adds or replaces settings."""
        return cls(**{**config.model_dump(), **extra})

    def torch_device(self) -> torch.device:
        return torch_device(self.device)


def torch_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; others a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UserError(f"device = {name!r}; choose auto, cpu, cuda or cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device = {name!r}, but this machine has no CUDA device; "
                        "use --device cpu or auto")  # fmt: skip
    return torch.device(name)


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
    objective: Objective,
    settings: TrainSettings,
    *,
    family: str,
    arguments: dict[str, Any] | None = None,
    checkpoint: Path | None = None,
    resume: bool = True,
    on_epoch: Callable[[EpochReport, Path | None], None] | None = None,
    evaluate_now: Callable[[int], bool] | None = None,
) -> TrainingResult:
    """Train ``model`` on ``objective``; continue from ``checkpoint`` when it exists and ``resume``.

    ``on_epoch(report, checkpoint_written)`` runs after every epoch (a search
    trial reports to Ray Tune from it). An epoch is evaluated every
    ``settings.eval_every`` epochs, at the last, and whenever
    ``evaluate_now(epoch)`` says so. ``arguments`` are the model's constructor
    arguments, stored in the checkpoint with ``family``.
    """
    device = settings.torch_device()
    model.to(device)
    objective.to(device)
    parameter_count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    phases = tuple(objective.phases(settings))
    plan = check_phases(phases, settings.epochs)
    shuffle = torch.Generator().manual_seed(settings.seed)
    history: list[dict[str, float]] = []
    start_epoch, elapsed, saved = 0, 0.0, None
    if checkpoint is not None and resume and checkpoint.exists():
        saved = load_checkpoint(checkpoint)
        check_resumable(checkpoint, saved, family, arguments or {}, settings)
        start_epoch, elapsed = saved["epoch"], saved["train_seconds"]
        history = list(saved["history"])
        _check_plan(checkpoint, saved, plan, start_epoch)
    current = phase_at(phases, start_epoch + 1, settings.epochs)
    optimisation = _begin(model, objective, phases[current], settings)
    if saved is not None:
        _restore(checkpoint, saved, model, optimisation, shuffle, objective,
                 same_phase=saved.get("phase", "train") == plan[current][0])  # fmt: skip

    every_time = settings.eval_splits
    evaluated = [name for name in dict.fromkeys(settings.final_splits + every_time)
                 if name in objective.splits()]  # fmt: skip
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    described = objective.describe()  # what a user of the trained network needs

    def snapshot(epoch: int) -> dict[str, Any]:
        return {
            "family": family, "arguments": arguments or {}, "model": model.state_dict(),
            "phase": plan[current][0], "phases": plan,
            "optimisation": optimisation.state_dict(),
            "rng": {"shuffle": shuffle.get_state(), "torch": torch.get_rng_state()},
            "epoch": epoch, "train_seconds": elapsed, "history": history,
            "settings": asdict(settings), "objective": objective.state_dict(),
            "surrogate": described,
        }  # fmt: skip

    for epoch in range(start_epoch + 1, settings.epochs + 1):
        began = time.perf_counter()
        if epoch > plan[current][1]:
            current += 1
            optimisation = _begin(model, objective, phases[current], settings)
        train_loss = _train_epoch(model, optimisation, objective, settings, shuffle, device)
        if not math.isfinite(train_loss):
            raise NonFiniteLoss(
                f"the training loss became {train_loss} at epoch {epoch}: lower the learning "
                "rate, or check the dataset for NaN or Inf values"
            )
        optimisation.end_epoch(train_loss)
        elapsed += time.perf_counter() - began
        report = EpochReport(epoch, train_loss, optimisation.learning_rate, elapsed)
        last = epoch == settings.epochs
        wanted = evaluate_now is not None and evaluate_now(epoch)
        if epoch % settings.eval_every == 0 or last or wanted:
            splits = [name for name in evaluated if name in every_time or last]
            report.metrics.update(_evaluate(model, objective, splits))
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
        name: {k: v.cpu().numpy() for k, v in objective.evaluate(model, name).items()}
        for name in evaluated
    }
    final = {k: v for row in history[-1:] for k, v in row.items() if "/" in k}
    return TrainingResult(
        epochs=settings.epochs,
        final=final,
        parameter_count=parameter_count,
        peak_memory_bytes=_peak_memory(device),
        train_seconds=elapsed,
        history=history,
        per_sample=per_sample,
    )


# settings a run may change when it is resumed: how long, where, and what it reports
_RESUMABLE = {"epochs", "device", "mixed_precision", "eval_splits", "final_splits", "eval_every",
              "checkpoint_every"}  # fmt: skip


def check_resumable(
    path: Path,
    state: dict[str, Any],
    family: str,
    arguments: dict[str, Any],
    settings: TrainSettings,
) -> None:
    """A checkpoint resumes only the configuration that wrote it (more epochs are allowed)."""
    saved = {"family": state.get("family"), **{f"model.{k}": v for k, v in
             state.get("arguments", {}).items()}}  # fmt: skip
    wanted = {"family": family, **{f"model.{k}": v for k, v in arguments.items()}}
    old, new = state.get("settings", {}), asdict(settings)
    for key in new:
        if key not in _RESUMABLE and key in old:
            saved[f"training.{key}"], wanted[f"training.{key}"] = old[key], new[key]
    changed = [
        f"{key}: {saved.get(key)!r} there, {wanted.get(key)!r} now"
        for key in sorted(set(saved) | set(wanted))
        if saved.get(key) != wanted.get(key)
    ]
    if changed:
        raise IonopsError(
            f"{path} was written by another configuration ({'; '.join(changed[:6])}): resume it "
            "unchanged, or start over (another --run-name, or remove the checkpoint)"
        )


def _begin(model: nn.Module, objective: Objective, phase: Phase,
           settings: TrainSettings) -> Optimisation:  # fmt: skip
    """Freeze what ``phase`` holds fixed, tell the objective, and build the phase's optimisation."""
    freeze(model, phase)
    objective.enter(phase)
    return objective.optimisation(model, phase, settings)


def _check_plan(path: Path, state: dict[str, Any], plan: list[tuple[str, int]],
                done: int) -> None:  # fmt: skip
    """The phases a checkpoint has trained through, and the one it is in, are this run's.

    A run's last phase ends with the run, which may be resumed for more epochs.
    """

    def steps(phases: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], str]:
        bounded = phases[:-1]
        passed = [(name, end) for name, end in bounded if end <= done]
        following = [name for name, end in bounded if end > done]
        return passed, (following or [phases[-1][0]])[0]

    # a checkpoint from before phases trained one phase of the default name
    saved = [(str(name), int(end)) for name, end in state.get("phases", [])] or [("train", 0)]
    if steps(saved) != steps(plan):
        raise IonopsError(
            f"{path} was trained in the phases {saved}, this run has {plan} (name, last "
            "epoch): resume it unchanged, or start over (another --run-name, or remove the "
            "checkpoint)"
        )


def _restore(checkpoint: Path | None, state: dict[str, Any], model: nn.Module,
             optimisation: Optimisation, shuffle: torch.Generator, objective: Objective, *,
             same_phase: bool) -> None:  # fmt: skip
    """A checkpoint's network, optimiser, schedule and random state back in place.

    ``same_phase``: the run continues the phase the checkpoint was written in
    (else the checkpoint ended a phase and the next one starts afresh).
    """
    # checkpoints before phases hold one optimiser and one schedule by name
    saved = state.get("optimisation") or {"optimizers": [state.get("optimizer")],
                                          "schedulers": [state.get("scheduler")]}  # fmt: skip
    try:
        model.load_state_dict(state["model"])
        if same_phase:
            optimisation.load_state_dict(saved)
        shuffle.set_state(state["rng"]["shuffle"])
        torch.set_rng_state(state["rng"]["torch"])
        objective.load_state_dict(state.get("objective", {}))
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{checkpoint} does not fit this network ({first}); start over with "
                        "another run name, or remove the checkpoint") from None  # fmt: skip


def _train_epoch(
    model: nn.Module,
    optimisation: Optimisation,
    objective: Objective,
    settings: TrainSettings,
    shuffle: torch.Generator,
    device: torch.device,
) -> float:
    model.train()
    total, batches = torch.zeros((), device=device), 0
    autocast = settings.mixed_precision and device.type == "cuda"
    for batch in objective.batches(shuffle, settings.batch_size):

        def loss_of(batch: Any = batch) -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                return objective.loss(model, batch)

        total += optimisation.step(loss_of)
        batches += 1
    return float(total) / max(batches, 1)


def _evaluate(model: nn.Module, objective: Objective, splits: Sequence[str]) -> dict[str, float]:
    """Each split's mean errors and the seconds its evaluation took."""
    metrics: dict[str, float] = {}
    for name in splits:
        started = time.perf_counter()
        errors = objective.evaluate(model, name)
        metrics.update(summarise(errors, name, objective.state_names))
        metrics[f"{name}/{EVAL_SECONDS}"] = time.perf_counter() - started
    return metrics


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


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
