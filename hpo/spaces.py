"""Search spaces: an experiment's ``[search]`` as a hyperopt space, and a sampled point as a model.

Two spaces per ionic model, picked by ``search.space``:

- ``unconstrained``: every hyperparameter of the paper's Table 2 is sampled,
  k_max from its list;
- ``constrained``: k_max is not sampled but derived from each sampled d_v and
  L by the parameter cap (the paper's spectral budget, or a cap on the whole
  count), capped by the largest entry of the space's k_max list.

:func:`configure` turns a point into a buildable FNO and training settings, and
records the derived k_max and the total parameter count with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from ionops.config import ExperimentConfig, LayerKind, SpaceConfig
from ionops.errors import UserError
from ionops.models.fno import (
    FNOArchitecture,
    budget_k_max,
    parameter_count,
    total_cap_k_max,
    validate,
)

HYPERPARAMETERS = (
    "learning_rate", "weight_decay", "gamma", "d_v", "n_layers", "k_max", "activation",
    "n_pad", "layer",
)  # fmt: skip


@dataclass(frozen=True)
class TrialConfig:
    """What one point of the space trains: the FNO, the training section, and what was derived."""

    architecture: FNOArchitecture
    training: Any  # the experiment's TrainingConfig with the sampled optimiser settings
    k_max_derived: bool
    parameter_count: int

    def record(self) -> dict[str, Any]:
        """The values to log with the trial (its parameters, k_max and the total count)."""
        arch = self.architecture
        return {
            "learning_rate": self.training.learning_rate,
            "weight_decay": self.training.weight_decay,
            "gamma": self.training.gamma,
            "d_v": arch.d_v, "n_layers": arch.n_layers, "k_max": arch.k_max,
            "activation": arch.activation, "n_pad": arch.n_pad, "layer": arch.layer,
            "k_max_derived": self.k_max_derived, "parameter_count": self.parameter_count,
        }  # fmt: skip


def space_config(experiment: ExperimentConfig) -> SpaceConfig:
    search = experiment.search
    return search.constrained if search.space == "constrained" else search.unconstrained


def check_space(experiment: ExperimentConfig, n_t: int) -> None:
    """Refuse a space with k_max values that no model on ``n_t`` points can hold."""
    space = space_config(experiment)
    available = n_t // 2 + 1
    too_many = [k for k in space.k_max if k > available]
    if experiment.search.space == "unconstrained" and too_many:
        raise UserError(
            f"search.unconstrained.k_max holds {too_many}, more modes than the {available} of "
            f"n_t = {n_t} points; keep k_max <= {available} or use a finer grid"
        )
    if experiment.search.space == "constrained" and max(space.k_max) > available:
        raise UserError(
            f"search.constrained.k_max caps derived k_max at {max(space.k_max)}, above the "
            f"{available} modes of n_t = {n_t} points; lower its largest entry to {available}"
        )


def hyperopt_space(experiment: ExperimentConfig) -> dict[str, Any]:
    """The experiment's search space in hyperopt's terms (quniform and choice)."""
    from hyperopt import hp

    space = space_config(experiment)
    out: dict[str, Any] = {
        name: hp.quniform(name, *getattr(space, name))
        for name in ("learning_rate", "weight_decay", "gamma")
    }
    out["n_pad"] = hp.quniform("n_pad", space.n_pad[0], space.n_pad[1], 1)
    for name in ("d_v", "n_layers", "activation", "layer"):
        out[name] = hp.choice(name, list(getattr(space, name)))
    if experiment.search.space == "unconstrained":
        out["k_max"] = hp.choice("k_max", list(space.k_max))
    return out


def default_point(experiment: ExperimentConfig) -> dict[str, Any]:
    """The experiment's own [fno] and [training] as a point of its space (evaluated first)."""
    fno, training = experiment.fno, experiment.training
    point: dict[str, Any] = {
        "learning_rate": training.learning_rate, "weight_decay": training.weight_decay,
        "gamma": training.gamma, "d_v": fno.d_v, "n_layers": fno.n_layers,
        "activation": fno.activation, "n_pad": fno.n_pad, "layer": fno.layer,
    }  # fmt: skip
    if experiment.search.space == "unconstrained":
        point["k_max"] = fno.k_max
    space = space_config(experiment)
    for name in (
        "d_v",
        "n_layers",
        "activation",
        "layer",
        *(("k_max",) if "k_max" in point else ()),
    ):
        if point[name] not in getattr(space, name):
            raise UserError(
                f"the experiment's {name} = {point[name]!r} is not in search."
                f"{experiment.search.space}.{name} {getattr(space, name)}: the search starts "
                "from the experiment's own configuration, so add it to the list"
            )
    return point


def configure(
    point: dict[str, Any], experiment: ExperimentConfig, n_t: int, n_states: int
) -> TrialConfig:
    """The FNO and training settings of a sampled point; k_max derived in the constrained space."""
    space = space_config(experiment)

    def architecture_with(k_max: int) -> FNOArchitecture:
        layer = cast(LayerKind, str(point["layer"]))  # validate() rejects unknown kinds
        return FNOArchitecture(
            d_v=int(point["d_v"]), n_layers=int(point["n_layers"]), k_max=k_max,
            activation=str(point["activation"]), n_pad=round(float(point["n_pad"])),
            layer=layer, n_states=n_states,
        )  # fmt: skip

    derived = experiment.search.space == "constrained"
    if not derived:
        k_max = int(point["k_max"])
    elif experiment.search.parameter_cap == "budget":
        k_max = budget_k_max(int(point["d_v"]), int(point["n_layers"]), max(space.k_max),
                             experiment.search.spectral_budget)  # fmt: skip
    else:
        cap = int(experiment.search.parameter_cap)
        k_max = total_cap_k_max(architecture_with(1), cap, max(space.k_max))
    architecture = architecture_with(k_max)
    validate(architecture, n_t)
    training = experiment.training.model_copy(update={
        "learning_rate": _on_grid(point["learning_rate"], space.learning_rate),
        "weight_decay": _on_grid(point["weight_decay"], space.weight_decay),
        "gamma": _on_grid(point["gamma"], space.gamma),
    })  # fmt: skip
    return TrialConfig(architecture, training, derived, parameter_count(architecture))


def _on_grid(value: float, grid: tuple[float, float, float]) -> float:
    """A quniform value rounded back onto its grid (hyperopt returns 0.0027700000000000003)."""
    step = grid[2]
    return round(round(float(value) / step) * step, 12)
