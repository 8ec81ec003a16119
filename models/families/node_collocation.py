"""Collocation rounds of the neural-ODE family (not the paper's): f fitted to F along the
field's own forecast.

A run's last ``collocation_rounds`` epochs are rounds, one an epoch. A round forecasts by
Heun from the window's first observed state to ``collocation_horizon_ms`` (``t_end_ms`` by
default), keeps every :data:`COLLOCATION_STRIDE`-th state inside the window's box (widened
by half its spread each side) and F there, and L-BFGS minimises the residual over every
round's states (afresh each round: its points are a new objective), each state's in units
of the spread of F over the latest round's. The window's noisy states are left out: the
gates' noise sets F_V there (its spread over the noisy window is 18 times the clean
window's on ``hh-node``), and kept they outweigh the forecast's states (measured, see the
README). The points are the objective's state: a resumed run goes on with them.

Two settings keep the rounds accurate and cheap (measured, see the README):

- ``weighting = "relative"`` (the default) divides each residual by |F| + ``RELATIVE_FLOOR``
  times F's spread instead of by the spread alone (``"spread"``). The period of the forecast
  spike train is set by the slow phase between spikes, where F is two orders of magnitude
  under its spread: in units of the spread its errors there weigh nothing, in units of |F|
  they weigh as much as the upstroke's.
- ``max_points`` caps the points a round fits: the round's own states first, then a random
  sample of the earlier rounds' (seeded by their number, so a resumed run draws the same).
  Without it every round costs more than the one before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ionops.models.families.node_field import forecast, spread
from ionops.training.optimisation import Optimisation

COLLOCATION_STRIDE = 8  # every eighth state of a round's forecast (0.08 ms on hh-node)
RELATIVE_FLOOR = 0.02  # "relative": |F| + this times F's spread, so F = 0 weighs finitely


def collocation_points(field: Any, observed: NDArray[np.float64], step: float, horizon: float,
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """One round's states (S, K) and times (K,): ``field``'s Heun forecast from the window's
    first state ``observed[:, 0]`` over [0, ``horizon``] every ``step``, each
    :data:`COLLOCATION_STRIDE`-th state inside the window's box widened by half its spread
    (never none: the first state is the window's own)."""
    time = np.arange(0.0, horizon + 0.5 * step, step)
    path = forecast(field, observed[:, 0], time, "heun")
    spread = observed.max(axis=1) - observed.min(axis=1)
    low, high = observed.min(axis=1) - 0.5 * spread, observed.max(axis=1) + 0.5 * spread
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(path).all(axis=0) & (path >= low[:, None]).all(axis=0) \
            & (path <= high[:, None]).all(axis=0)  # fmt: skip
    keep = np.flatnonzero(inside)[::COLLOCATION_STRIDE]
    return path[:, keep], time[keep]


class Rounds:
    """The rounds' points (``points``: states (K, S), time (K,), F there (K, S) and the
    latest round's scales) and their L-BFGS, over the window ``observed`` (S, N) sampled
    every ``step``; ``right_hand_side(states, time)`` is the ionic model's F; ``weighting``
    ``"relative"`` or ``"spread"`` (the settings check it); ``max_points`` the most points
    a round fits (None: all)."""

    def __init__(self, observed: NDArray[np.float64], step: float, horizon: float,
                 iterations: int,
                 right_hand_side: Callable[[NDArray[np.float64], NDArray[np.float64]],
                                           NDArray[np.float64]],
                 weighting: str = "relative", max_points: int | None = None) -> None:  # fmt: skip
        self.observed, self.step, self.horizon = observed, step, horizon
        self.iterations, self.right_hand_side = iterations, right_hand_side
        self.weighting, self.max_points = weighting, max_points
        self.device = torch.device("cpu")
        self.points: dict[str, torch.Tensor] = {}
        self.field: nn.Module | None = None
        self.lbfgs: torch.optim.LBFGS | None = None

    def to(self, device: torch.device) -> None:
        self.device = device
        self.points = {k: v.to(device) for k, v in self.points.items()}

    def optimisation(self, model: nn.Module) -> Optimisation:
        """L-BFGS over ``model``'s trainable parameters, the field each round forecasts by."""
        self.field = model
        self.lbfgs = torch.optim.LBFGS(
            [p for p in model.parameters() if p.requires_grad], lr=1.0,
            max_iter=self.iterations, history_size=50, line_search_fn="strong_wolfe",
            tolerance_grad=1e-12, tolerance_change=1e-15,
        )  # fmt: skip
        return Optimisation([self.lbfgs], closure=True)

    def epoch(self) -> Iterator[None]:
        """One round: its points added, one batch for the loop's L-BFGS step, then the round
        undone if that step left non-finite weights."""
        if self.field is None or self.lbfgs is None:
            raise RuntimeError("a collocation round began before its phase's optimisation")
        self._add(self.field)
        # a round's points are a new objective: L-BFGS starts it without the last round's
        # curvature pairs (kept, hh-node's seed 1 ended its 24 rounds at 12 times the loss)
        self.lbfgs.state.clear()
        kept = [p.detach().clone() for p in self.field.parameters()]
        yield None  # the loop steps L-BFGS, then asks for the next batch
        if not all(torch.isfinite(p).all() for p in self.field.parameters()):
            # L-BFGS can step to non-finite weights (measured on hh-node, 1 seed in 6): the
            # round is undone and the next starts from the last finite field, afresh
            with torch.no_grad():
                for parameter, value in zip(self.field.parameters(), kept, strict=True):
                    parameter.copy_(value)
            self.lbfgs.state.clear()

    def _add(self, field: nn.Module) -> None:
        """A round's states and F there, added to the earlier rounds'."""
        states, time = collocation_points(field, self.observed, self.step, self.horizon)
        wanted = self.right_hand_side(states, time)
        new = {"states": torch.as_tensor(states.T), "time": torch.as_tensor(time),
               "wanted": torch.as_tensor(wanted.T),
               "scale": torch.as_tensor(spread(wanted))}  # fmt: skip
        new = {k: v.to(self.device) for k, v in new.items()}
        old = self.points
        most = self.max_points
        if most is not None:
            # the round's own first (a sample where it alone is over the cap), then the
            # earlier rounds' thinned to what is left, drawn by a generator seeded by their
            # number: the same points after a resume
            new = self._thinned(new, most, seed=0)
            if old:
                old = self._thinned(old, most - len(new["time"]), seed=len(old["time"]))
        self.points = new if not old else {
            **{k: torch.cat([old[k], new[k]]) for k in ("states", "time", "wanted")},
            "scale": new["scale"]}  # fmt: skip

    def _thinned(self, points: dict[str, torch.Tensor], most: int,
                 seed: int) -> dict[str, torch.Tensor]:  # fmt: skip
        chosen = _sample(len(points["time"]), most, seed).to(self.device)
        return {**{k: points[k][chosen] for k in ("states", "time", "wanted")},
                "scale": points["scale"]}  # fmt: skip

    def loss(self, model: nn.Module) -> torch.Tensor:
        """The residual over every round's states, in units of F's spread or (``relative``)
        of |F| + :data:`RELATIVE_FLOOR` times its spread."""
        dtype = next(model.parameters()).dtype
        points = {k: v.to(dtype) for k, v in self.points.items()}
        units = points["scale"]
        if self.weighting == "relative":
            units = points["wanted"].abs() + RELATIVE_FLOOR * units
        residual = (model(points["states"], points["time"]) - points["wanted"]) / units
        return residual.pow(2).sum(dim=1).mean()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.points.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.points = {k: torch.as_tensor(v).to(self.device) for k, v in state.items()}


def _sample(count: int, most: int, seed: int) -> torch.Tensor:
    """Indices of ``most`` of ``count`` items (all, in order, where ``most`` >= ``count``;
    none where ``most`` <= 0), drawn without replacement by a generator seeded by ``seed``
    and kept in their order."""
    if most >= count:
        return torch.arange(count)
    if most <= 0:
        return torch.arange(0)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(count, generator=generator)[:most].sort().values
