"""The FNO family (paper 000): a stimulus I_app(t) -> every state's whole trajectory.

It trains on operator datasets. Its two search spaces are the paper's Table 2:

- ``unconstrained``: every hyperparameter is sampled, k_max from its list;
- ``constrained``: k_max is not sampled but derived from each sampled d_v
  and L by the parameter cap (``search.parameter_cap``: ``"budget"`` is the
  paper's rule on the spectral weights, ``spectral_budget`` of the space;
  an integer caps the whole count), capped by the largest entry of the
  space's k_max list.

The objective is the paper's: relative L2 averaged over state variables,
inputs and targets z-scored per time point; the search minimises the mean
validation relative L2 (:mod:`ionops.models.operator.objective`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import Field, model_validator

from ionops.errors import UserError
from ionops.models.family import (
    Metric,
    ModelSection,
    Objective,
    Serving,
    SpaceSection,
    SurrogateFamily,
    TrialConfig,
    check_quniform,
    chosen_space,
    on_grid,
)
from ionops.models.fno_arch import (
    SPECTRAL_BUDGET,
    FNOArchitecture,
    budget_k_max,
    parameter_count,
    total_cap_k_max,
    validate,
)

if TYPE_CHECKING:
    from torch import nn

    from ionops.config import ExperimentConfig

Activation = Literal["tanh", "relu", "gelu", "leaky_relu"]
LayerKind = Literal["classic", "mlp"]


class FNOSection(ModelSection):
    """The FNO's architecture (see :mod:`ionops.models.fno`)."""

    family: Literal["fno"]
    d_v: int = Field(ge=1, le=4096)
    n_layers: int = Field(ge=1, le=64)
    k_max: int = Field(ge=1)
    activation: Activation
    n_pad: int = Field(ge=0)
    layer: LayerKind


class FNOSpace(SpaceSection):
    """One FNO search space (the paper's Table 2 hyperparameters).

    ``learning_rate``, ``weight_decay`` and ``gamma`` are quniform (low, high,
    step); ``n_pad`` is an integer range (low, high); the others are choices.
    ``k_max`` is searched in the unconstrained space only: the constrained
    space derives it from the parameter cap, with the largest entry as its
    cap; ``spectral_budget`` is the cap on 2 L d_v^2 k_max of
    ``search.parameter_cap = "budget"``.
    """

    family: Literal["fno"]
    learning_rate: tuple[float, float, float] = (1e-4, 1e-2, 1e-5)
    weight_decay: tuple[float, float, float] = (1e-6, 1e-3, 1e-6)
    gamma: tuple[float, float, float] = (0.75, 0.99, 0.01)
    d_v: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    n_layers: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 2, 3, 4, 5], min_length=1)
    k_max: list[Annotated[int, Field(ge=1)]] = Field(
        default=[2, 4, 8, 12, 16, 20, 24, 28, 32, 48], min_length=1
    )
    activation: list[Activation] = Field(
        default=["tanh", "relu", "gelu", "leaky_relu"], min_length=1
    )
    n_pad: tuple[int, int] = (0, 15)
    layer: list[LayerKind] = Field(default=["classic", "mlp"], min_length=1)
    spectral_budget: int = Field(default=SPECTRAL_BUDGET, ge=1)

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> FNOSpace:
        for name in ("learning_rate", "weight_decay", "gamma"):
            check_quniform(name, getattr(self, name))
        if not 0 <= self.n_pad[0] <= self.n_pad[1]:
            raise ValueError(f"n_pad = {list(self.n_pad)}: need 0 <= low <= high")
        return self


def space_of(experiment: ExperimentConfig) -> FNOSpace:
    """The space ``search.space`` picks."""
    return cast(FNOSpace, chosen_space(experiment))


def check_space(experiment: ExperimentConfig, n_t: int) -> None:
    """Refuse a space with k_max values that no model on ``n_t`` points can hold."""
    space = space_of(experiment)
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


def check_cap(experiment: ExperimentConfig) -> None:
    """Refuse a constrained space with an integer cap that its smallest network exceeds (the
    least d_v and n_layers, the cheaper layer kind, k_max = 1)."""
    cap = experiment.search.parameter_cap
    if experiment.search.space != "constrained" or cap == "budget":
        return
    from ionops.datasets.ionic import get_ionic_model

    space = space_of(experiment)
    n_states = get_ionic_model(experiment.data.ionic_model).n_states
    smallest = min(
        (FNOArchitecture(min(space.d_v), min(space.n_layers), 1, "gelu", 0, layer,
                         n_states=n_states) for layer in space.layer),
        key=parameter_count,
    )  # fmt: skip
    if parameter_count(smallest) > int(cap):
        raise UserError(
            f"search.parameter_cap = {cap}: search.constrained holds no network under it; its "
            f"smallest (d_v = {smallest.d_v}, n_layers = {smallest.n_layers}, layer = "
            f"{smallest.layer!r}, k_max = 1) has {parameter_count(smallest):,} parameters; "
            "raise the cap or add smaller d_v / n_layers values"
        )


def hyperopt_space(experiment: ExperimentConfig) -> dict[str, Any]:
    """The experiment's search space in hyperopt's terms (quniform and choice)."""
    from hyperopt import hp

    space = space_of(experiment)
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
    """The experiment's own [model] and [training] as a point of its space (evaluated first)."""
    fno, training = cast(FNOSection, experiment.model), experiment.training
    point: dict[str, Any] = {
        "learning_rate": training.learning_rate, "weight_decay": training.weight_decay,
        "gamma": training.gamma, "d_v": fno.d_v, "n_layers": fno.n_layers,
        "activation": fno.activation, "n_pad": fno.n_pad, "layer": fno.layer,
    }  # fmt: skip
    if experiment.search.space == "unconstrained":
        point["k_max"] = fno.k_max
    space = space_of(experiment)
    sampled = ["d_v", "n_layers", "activation", "layer", *(["k_max"] if "k_max" in point else [])]
    for name in sampled:
        if point[name] not in getattr(space, name):
            raise UserError(
                f"the experiment's {name} = {point[name]!r} is not in search."
                f"{experiment.search.space}.{name} {getattr(space, name)}: the search starts "
                "from the experiment's own configuration, so add it to the list"
            )
    return point


def configure(
    point: Mapping[str, Any], experiment: ExperimentConfig, n_t: int, n_states: int
) -> TrialConfig:
    """The FNO and training settings of a point; k_max derived in the constrained space."""
    space = space_of(experiment)

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
                             space.spectral_budget)  # fmt: skip
    else:
        cap = int(experiment.search.parameter_cap)
        k_max = total_cap_k_max(architecture_with(1), cap, max(space.k_max))
    arch = architecture_with(k_max)
    validate(arch, n_t)
    training = experiment.training.model_copy(update={
        "learning_rate": on_grid(point["learning_rate"], space.learning_rate),
        "weight_decay": on_grid(point["weight_decay"], space.weight_decay),
        "gamma": on_grid(point["gamma"], space.gamma),
    })  # fmt: skip
    record = {
        "learning_rate": training.learning_rate, "weight_decay": training.weight_decay,
        "gamma": training.gamma, "d_v": arch.d_v, "n_layers": arch.n_layers,
        "k_max": arch.k_max, "activation": arch.activation, "n_pad": arch.n_pad,
        "layer": arch.layer, "k_max_derived": derived, "parameter_count": parameter_count(arch),
    }  # fmt: skip
    return TrialConfig(arch.as_dict(), training, record)


class FNOFamily(SurrogateFamily):
    name = "fno"
    section = FNOSection
    space = FNOSpace
    metrics = (
        Metric("rel_l1", "relative L1", percent=True, relative=True),
        Metric("rel_l2", "relative L2", percent=True, relative=True),
        Metric("rel_h1", "relative H1", percent=True, relative=True),
        Metric("rel_h1_paper", "relative H1 (the paper's code: variables pooled)",
               percent=True, relative=True, per_state=False),
        Metric("phys_rel_l1", "relative L1 in physical units", percent=True, relative=True),
        Metric("phys_rel_l2", "relative L2 in physical units", percent=True, relative=True),
        Metric("phys_rel_h1", "relative H1 in physical units", percent=True, relative=True),
        Metric("phys_rel_h1_paper", "relative H1 (the paper's code) in physical units",
               percent=True, relative=True, per_state=False),
        Metric("phys_rmse", "RMS error in physical units", unit="state"),
    )  # fmt: skip
    metric = "rel_l2"
    summary_metrics = ("rel_l1", "rel_l2", "rel_h1")
    data_kinds = ("operator",)
    smoke_test = ("fhn", (
        "data.fraction=0.02", "data.n_t=128", "training.epochs=4", "search.num_samples=2",
        "search.n_initial_points=2", "search.max_concurrent=1", "search.checkpoint_every=1",
        "search.scheduler=fifo",
    ))  # fmt: skip

    def default_spaces(self) -> dict[str, dict[str, Any]]:
        return {
            "unconstrained": {"d_v": [8, 16, 32, 64, 96, 128, 160, 192, 224, 256]},
            "constrained": {"d_v": [4, 8, 16, 32, 48, 64, 96, 128]},
        }

    def check(self, experiment: ExperimentConfig) -> None:
        super().check(experiment)
        fno = cast(FNOSection, experiment.model)
        own = FNOArchitecture(fno.d_v, fno.n_layers, fno.k_max, fno.activation, fno.n_pad,
                              fno.layer, n_states=1)  # fmt: skip
        validate(own, n_t=experiment.data.n_t)  # type: ignore[union-attr]
        check_cap(experiment)

    def check_data(self, experiment: ExperimentConfig, data: Any) -> None:
        check_space(experiment, n_t=data.time.size)

    def hyperopt_space(self, experiment: ExperimentConfig) -> dict[str, Any]:
        return hyperopt_space(experiment)

    def default_point(self, experiment: ExperimentConfig) -> dict[str, Any]:
        return default_point(experiment)

    def configure(self, point: Mapping[str, Any], experiment: ExperimentConfig,
                  data: Any) -> TrialConfig:  # fmt: skip
        return configure(point, experiment, n_t=data.time.size, n_states=len(data.state_names))

    def own_trial(self, experiment: ExperimentConfig, data: Any) -> TrialConfig:
        fno = cast(FNOSection, experiment.model)
        arch = FNOArchitecture(fno.d_v, fno.n_layers, fno.k_max, fno.activation, fno.n_pad,
                               fno.layer, n_states=len(data.state_names))  # fmt: skip
        validate(arch, n_t=data.time.size)
        record = {**fno.model_dump(exclude={"family"}), "parameter_count": parameter_count(arch)}
        return TrialConfig(arch.as_dict(), experiment.training, record)

    def build(self, arguments: Mapping[str, Any]) -> nn.Module:
        from ionops.models.fno import FNO

        return FNO(FNOArchitecture(**arguments))

    def parameter_count(self, arguments: Mapping[str, Any]) -> int:
        return parameter_count(FNOArchitecture(**arguments))

    def load_data(self, experiment: ExperimentConfig, path: Path,
                  splits: Sequence[str] | None = None) -> Any:  # fmt: skip
        from ionops.datasets.loading import load_dataset
        from ionops.datasets.protocols import SPLITS

        data = load_dataset(path, experiment.training.normalisation or "per_time",
                            splits=tuple(splits or SPLITS))  # fmt: skip
        wanted = experiment.data
        found = (data.attributes.get("model"), data.time.size)
        if found != (wanted.ionic_model, wanted.n_t):  # type: ignore[union-attr]
            raise UserError(
                f"{path} holds {found[0]} on {found[1]} points; the experiment wants "
                f"{wanted.ionic_model} on data.n_t = {wanted.n_t} points: give its own dataset, "  # type: ignore[union-attr]
                "or set data.ionic_model and data.n_t to the file's"
            )
        return data

    def objective(self, data: Any, trial: TrialConfig, experiment: ExperimentConfig) -> Objective:
        from ionops.models.operator.objective import OperatorObjective

        return OperatorObjective(data)

    def report(self, item: Any, folder: Path) -> list[Path]:
        from ionops.models.operator import report

        return report.figures(item, folder)

    def serving(self) -> Serving:
        from ionops.models.families.fno_serving import SERVING

        return SERVING


FAMILY = FNOFamily()
