"""How training steps: the optimisers and schedules of a phase, and the phases of a run.

The loop asks a family's :class:`~ionops.models.family.Objective` for its
phases and, at the start of each, for an :class:`Optimisation`. Without a
word from the family a run is one phase trained by the optimiser and schedule
``[training]`` names (:func:`standard`). A family may instead

- step with a closure that evaluates the loss again (L-BFGS: ``closure=True``),
- clip the gradients' global norm (``[training] gradient_clip``, or its own),
- hold several optimisers or parameter groups (each with its own learning rate),
- train in phases: a second pass that freezes parts of the network
  (:attr:`Phase.frozen`) and learns from other data (the objective's
  :meth:`~ionops.models.family.Objective.enter` switches it).

A checkpoint holds the phase it was written in and that phase's optimiser and
schedule states, so a run resumes exactly, across phase boundaries too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ionops.errors import UserError


@dataclass(frozen=True)
class Phase:
    """One pass of a run: trained up to epoch ``until`` (None: the run's last epoch).

    ``frozen`` names parameters held fixed during the phase by prefix of their
    names in ``model.named_parameters()`` (``"gates."`` freezes ``gates.weight``
    and ``gates.bias``); every other parameter trains.
    """

    name: str
    until: int | None = None
    frozen: tuple[str, ...] = ()

    def last_epoch(self, epochs: int) -> int:
        return epochs if self.until is None else self.until


def check_phases(phases: Sequence[Phase], epochs: int) -> list[tuple[str, int]]:
    """Each phase's name and last epoch; names unique, ends rising, the last at ``epochs``."""
    if not phases:
        raise ValueError("a run needs at least one phase")
    plan = [(phase.name, phase.last_epoch(epochs)) for phase in phases]
    names = [name for name, _ in plan]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names repeat: {names}")
    ends = [end for _, end in plan]
    if any(b <= a for a, b in zip([0, *ends], ends, strict=False)) or ends[-1] != epochs:
        shown = ", ".join(f"{name} to epoch {end}" for name, end in plan)
        raise UserError(
            f"training.epochs = {epochs} does not fit the family's phases ({shown}): each "
            f"phase needs at least one epoch and the last ends at training.epochs"
        )
    return plan


def phase_at(phases: Sequence[Phase], epoch: int, epochs: int) -> int:
    """The index of the phase that trains ``epoch`` (the last phase past the end)."""
    for index, phase in enumerate(phases):
        if epoch <= phase.last_epoch(epochs):
            return index
    return len(phases) - 1


def freeze(model: nn.Module, phase: Phase) -> list[nn.Parameter]:
    """Hold ``phase.frozen`` fixed and let every other parameter train; the trainable ones."""
    named = dict(model.named_parameters())
    for prefix in phase.frozen:
        if not any(name.startswith(prefix) for name in named):
            raise ValueError(f"phase {phase.name!r} freezes {prefix!r}, which names no "
                             f"parameter of the network ({', '.join(named)})")  # fmt: skip
    trainable = []
    for name, parameter in named.items():
        parameter.requires_grad_(not any(name.startswith(p) for p in phase.frozen))
        if parameter.requires_grad:
            trainable.append(parameter)
    return trainable


class Optimisation:
    """The optimisers, schedules and step of one phase.

    ``closure``: the optimisers re-evaluate the loss themselves (L-BFGS); each
    step then hands them a closure that clears the gradients, computes the
    loss, back-propagates and clips. ``clip_norm`` bounds the global norm of the
    gradients of every parameter the optimisers hold. Schedules step once per
    epoch (a ``ReduceLROnPlateau`` with the epoch's training loss).
    """

    def __init__(
        self,
        optimizers: Sequence[torch.optim.Optimizer],
        schedulers: Sequence[Any] = (),
        *,
        clip_norm: float | None = None,
        closure: bool = False,
    ) -> None:
        if not optimizers:
            raise ValueError("an optimisation needs at least one optimiser")
        self.optimizers = list(optimizers)
        self.schedulers = list(schedulers)
        self.clip_norm = clip_norm
        self.closure = closure
        self._parameters = [p for o in self.optimizers for g in o.param_groups
                            for p in g["params"]]  # fmt: skip

    def step(self, loss_of: Callable[[], torch.Tensor]) -> torch.Tensor:
        """One optimisation step on the loss ``loss_of()`` computes; that loss, detached."""

        def evaluate() -> torch.Tensor:
            for optimizer in self.optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss = loss_of()
            loss.backward()
            if self.clip_norm is not None:
                nn.utils.clip_grad_norm_(self._parameters, self.clip_norm)
            return loss

        if self.closure:
            # an optimiser stepping with a closure returns the loss of its first evaluation
            losses = [optimizer.step(evaluate) for optimizer in self.optimizers]  # type: ignore[arg-type]
            return torch.as_tensor(losses[0]).detach()
        loss = evaluate()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss.detach()

    def end_epoch(self, train_loss: float) -> None:
        for scheduler in self.schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(train_loss)
            else:
                scheduler.step()

    @property
    def learning_rate(self) -> float:
        """The first optimiser's first group's learning rate (what the history records)."""
        return float(self.optimizers[0].param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        optimizers, schedulers = state["optimizers"], state["schedulers"]
        if len(optimizers) != len(self.optimizers) or len(schedulers) != len(self.schedulers):
            raise ValueError(
                f"{len(optimizers)} optimisers and {len(schedulers)} schedules saved, "
                f"{len(self.optimizers)} and {len(self.schedulers)} now"
            )
        for optimizer, saved in zip(self.optimizers, optimizers, strict=True):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, schedulers, strict=True):
            scheduler.load_state_dict(saved)


def standard(parameters: Iterable[nn.Parameter], settings: Any) -> Optimisation:
    """The optimiser and schedule ``[training]`` names, with its gradient clipping."""
    optimizer = make_optimizer(parameters, settings)
    return Optimisation([optimizer], [make_scheduler(optimizer, settings)],
                        clip_norm=getattr(settings, "gradient_clip", None))  # fmt: skip


def make_optimizer(parameters: Iterable[Any], settings: Any) -> torch.optim.Optimizer:
    """``adamw`` or ``adam`` with ``settings``' learning rate and weight decay."""
    lr, decay = settings.learning_rate, settings.weight_decay
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=decay)
    if settings.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay)
    raise ValueError(f"optimizer = {settings.optimizer!r}; known: adamw, adam")


def make_scheduler(optimizer: torch.optim.Optimizer, settings: Any) -> Any:
    """The schedule ``settings.scheduler`` names (step, plateau, cosine, none)."""
    if settings.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=settings.step_size, gamma=settings.gamma
        )
    if settings.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=settings.gamma, patience=settings.patience
        )
    if settings.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    if settings.scheduler == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"scheduler = {settings.scheduler!r}; known: step, plateau, cosine, none")
