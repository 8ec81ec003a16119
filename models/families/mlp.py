"""The MLP surrogate family (paper 001): point, transition and trajectory surrogates.

Three learners of the paper and one of ours share one MLP (``model.learner``):

- ``data``: (t, inputs) -> states, mean squared error to the solver;
- ``physics``: the same network, trained on the ionic model's residual
  (time derivatives by autograd) and the initial condition, with optional
  data (weights ``data_weight`` 1, ``physics_weight`` 1, ``boundary_weight``
  100 by default);
- ``iterative``: (states at t, stimulus) -> states at t + Δ on transition
  datasets, trajectories by rollout; a rollout that leaves the states' range
  is reported as diverged;
- ``trajectory`` (not the paper's): varied inputs -> the whole trajectory on
  the evaluation grid (every state at every ``eval_dt_ms``) in one forward
  pass, on trajectory datasets. One network evaluation per trajectory
  instead of one per time point is what makes it faster than the solver.

``loss`` is how the scaled error of the data term counts: ``mse`` (the
paper's) or ``l1``.

The architecture space is the paper's: depth, neurons and one activation per
hidden layer, grouped into shapes (:mod:`ionops.models.mlp_arch`). TPE
searches it (a layout, an activation per layer, the learning rate), or the
candidate protocol trains ``search.candidates`` architectures spread evenly
over shape and size. The constrained space keeps the layouts whose whole
network has at most ``search.parameter_cap`` parameters. The search
minimises the validation MAE (physical units).
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
from ionops.models.mlp_arch import (
    MLPArchitecture,
    joined,
    layouts,
    parameter_count,
    shape_of,
    split_activations,
    split_widths,
    spread_candidates,
)

if TYPE_CHECKING:
    from torch import nn

    from ionops.config import ExperimentConfig

Activation = Literal["tanh", "relu", "gelu", "leaky_relu", "elu", "sigmoid", "silu"]
Shape = Literal["square", "rectangle", "funnel", "bottleneck", "diamond", "bowtie", "irregular"]
PAPER_ACTIVATIONS: list[Activation] = ["elu", "sigmoid", "silu", "relu", "tanh", "leaky_relu"]
LEARNER_KINDS = {
    "data": "point",
    "physics": "point",
    "iterative": "transition",
    "trajectory": "trajectory",
}


class MLPSection(ModelSection):
    """One MLP surrogate: its layers, its learner and the learner's settings.

    ``widths`` and ``activations``: one entry per hidden layer. ``collocation``
    is the number of residual points drawn per step (physics learner);
    ``divergence_margin`` widens the training states' range by that fraction
    of it on each side before a rollout counts as diverged (iterative).
    ``loss``: how the data term counts each error scaled by its output's
    spread, ``mse`` (squared, the paper's) or ``l1`` (absolute).
    """

    family: Literal["mlp"]
    learner: Literal["data", "physics", "iterative", "trajectory"] = "data"
    loss: Literal["mse", "l1"] = "mse"
    widths: list[Annotated[int, Field(ge=1, le=65536)]] = Field(min_length=1)
    activations: list[Activation] = Field(min_length=1)
    data_weight: float = Field(default=1.0, ge=0)
    physics_weight: float = Field(default=1.0, ge=0)
    boundary_weight: float = Field(default=100.0, ge=0)
    collocation: int = Field(default=256, ge=1)
    divergence_margin: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _one_activation_per_layer(self) -> MLPSection:
        if len(self.activations) != len(self.widths):
            raise ValueError(
                f"activations has {len(self.activations)} entries for the {len(self.widths)} "
                f"layers of widths {self.widths}: give one activation per hidden layer"
            )
        if self.learner == "physics" and self.physics_weight + self.boundary_weight == 0:
            raise ValueError("learner = 'physics' with physics_weight = boundary_weight = 0: "
                             "use learner = 'data'")  # fmt: skip
        return self


class MLPSpace(SpaceSection):
    """An MLP search space: the paper's shapes over depths, widths and activations.

    Networks of ``depth`` hidden layers each of a width in ``widths``, of a
    shape in ``shapes`` and at most ``max_neurons`` neurons in all; one
    activation per layer from ``activations``. ``learning_rate`` is quniform
    (low, high, step); TPE samples it, the candidate protocol uses
    ``training.learning_rate``.
    """

    family: Literal["mlp"]
    depth: list[Annotated[int, Field(ge=1, le=16)]] = Field(default=[1, 2, 3], min_length=1)
    widths: list[Annotated[int, Field(ge=1, le=65536)]] = Field(
        default=[16, 32, 64, 128], min_length=1
    )
    activations: list[Activation] = Field(default=PAPER_ACTIVATIONS, min_length=1)
    shapes: list[Shape] = Field(default=list(cast(Any, Shape).__args__), min_length=1)
    max_neurons: int | None = Field(default=256, ge=1)
    learning_rate: tuple[float, float, float] = (1e-4, 1e-2, 1e-5)

    @model_validator(mode="after")
    def _range_is_ordered(self) -> MLPSpace:
        check_quniform("learning_rate", self.learning_rate)
        return self


def space_of(experiment: ExperimentConfig) -> MLPSpace:
    return cast(MLPSpace, chosen_space(experiment))


def io_sizes(experiment: ExperimentConfig) -> tuple[int, int]:
    """The network's inputs and outputs for this experiment's data and learner."""
    from ionops.datasets.ionic import get_ionic_model

    data = experiment.data
    facts = get_ionic_model(data.ionic_model)
    varied = list(getattr(data, "vary", {}))
    learner = cast(MLPSection, experiment.model).learner
    if learner == "iterative":
        return facts.n_states + int(facts.stimulus_name in varied), facts.n_states
    if learner == "trajectory":
        n_t = round(data.t_end_ms / data.eval_dt_ms) + 1  # type: ignore[union-attr]
        return len(varied), facts.n_states * n_t
    return 1 + len(varied), facts.n_states


def space_layouts(experiment: ExperimentConfig, space: MLPSpace | None = None,
                  name: str | None = None) -> list[tuple[int, ...]]:  # fmt: skip
    """The layouts of a space (the chosen one by default); none is an error naming it."""
    space = space or space_of(experiment)
    name = name or experiment.search.space
    n_in, n_out = io_sizes(experiment)
    cap = experiment.search.parameter_cap if name == "constrained" else None
    if cap == "budget":
        raise UserError(
            "search.parameter_cap = 'budget' is the FNO's spectral budget; the mlp family's "
            "constrained space takes an integer cap on the whole network's parameters"
        )

    def fits(layout: tuple[int, ...]) -> bool:
        return cap is None or parameter_count(n_in, layout, n_out) <= int(cap)

    found = layouts(space.depth, space.widths, space.shapes, space.max_neurons, fits)
    if not found:
        limit = f", at most {cap} parameters" if cap is not None else ""
        raise UserError(
            f"search.{name} holds no network: none of depth {space.depth} with widths from "
            f"{space.widths} has a shape in {space.shapes} and at most {space.max_neurons} "
            f"neurons{limit}; widen the space"
        )
    return found


class MLPFamily(SurrogateFamily):
    name = "mlp"
    section = MLPSection
    space = MLPSpace
    metrics = (
        Metric("mae", "MAE", unit="state"),
        Metric("rmse", "RMSE", unit="state"),
        Metric("max_abs", "largest absolute error", unit="state"),
        Metric("rel_l2", "relative L2", percent=True, relative=True),
        Metric("diverged", "rollouts that left the trained range", percent=True,
               per_state=False),
    )  # fmt: skip
    metric = "mae"
    summary_metrics = ("mae", "rmse", "rel_l2", "diverged")  # diverged: rollouts only
    data_kinds = tuple(dict.fromkeys(LEARNER_KINDS.values()))  # the kinds its learners take
    smoke_test = ("fhn-mlp-c-trajectory", (
        "data.train=48", "data.validation=12", "data.test=8", "data.t_end_ms=20",
        "training.epochs=4", "training.eval_every=1", "search.num_samples=2",
        "search.n_initial_points=2", "search.max_concurrent=1", "search.checkpoint_every=1",
        "search.scheduler=fifo",
    ))  # fmt: skip

    def default_spaces(self) -> dict[str, dict[str, Any]]:
        return {"unconstrained": {}, "constrained": {}}

    def check(self, experiment: ExperimentConfig) -> None:
        super().check(experiment)
        model, data = cast(MLPSection, experiment.model), experiment.data
        wanted = LEARNER_KINDS[model.learner]
        if data.kind != wanted:
            raise UserError(
                f"model.learner = {model.learner!r} trains on {wanted} datasets, but data.kind "
                f"= {data.kind!r}: set data.kind = {wanted!r}"
            )
        if model.learner == "iterative":
            eval_dt, step = data.eval_dt_ms, data.transition_ms  # type: ignore[union-attr]
            if eval_dt != step:
                raise UserError(
                    f"the iterative learner rolls out in steps of data.transition_ms = {step}, "
                    f"so data.eval_dt_ms = {eval_dt} must equal it"
                )
        if model.learner == "trajectory" and not getattr(data, "vary", {}):
            raise UserError(
                "model.learner = 'trajectory' maps the varied inputs to a trajectory, but "
                "[data.vary] is empty (one trajectory needs no network): vary an input, or use "
                "learner = 'data'"
            )
        if experiment.training.normalisation == "per_time":
            raise UserError(
                "training.normalisation = 'per_time' is for operator datasets; the mlp family "
                "scales each input and state itself (leave it unset)"
            )
        for name in ("unconstrained", "constrained"):
            if name == experiment.search.space:
                space_layouts(experiment, cast(MLPSpace, getattr(experiment.search, name)), name)

    def hyperopt_space(self, experiment: ExperimentConfig) -> dict[str, Any]:
        from hyperopt import hp

        space = space_of(experiment)
        options = [joined(layout) for layout in space_layouts(experiment)]
        out: dict[str, Any] = {
            "layout": hp.choice("layout", options),
            "learning_rate": hp.quniform("learning_rate", *space.learning_rate),
        }
        for layer in range(1, max(len(split_widths(o)) for o in options) + 1):
            out[f"activation_{layer}"] = hp.choice(f"activation_{layer}", list(space.activations))
        return out

    def default_point(self, experiment: ExperimentConfig) -> dict[str, Any]:
        model, space = cast(MLPSection, experiment.model), space_of(experiment)
        layout = joined(model.widths)
        options = [joined(found) for found in space_layouts(experiment)]
        if layout not in options:
            raise UserError(
                f"the experiment's model.widths = {model.widths} is not a network of search."
                f"{experiment.search.space} (depth {space.depth}, widths {space.widths}, shapes "
                f"{space.shapes}, at most {space.max_neurons} neurons): the search starts from "
                "the experiment's own configuration, so widen the space or change the model"
            )
        for layer, activation in enumerate(model.activations, start=1):
            if activation not in space.activations:
                raise UserError(
                    f"the experiment's activation {activation!r} (layer {layer}) is not in "
                    f"search.{experiment.search.space}.activations {space.activations}"
                )
        point: dict[str, Any] = {"layout": layout,
                                 "learning_rate": experiment.training.learning_rate}  # fmt: skip
        depth = max(len(split_widths(o)) for o in options)
        for layer in range(1, depth + 1):
            acts = model.activations
            point[f"activation_{layer}"] = acts[layer - 1] if layer <= len(acts) else acts[-1]
        return point

    def candidates(self, experiment: ExperimentConfig) -> list[dict[str, Any]]:
        """The experiment's own network first (as TPE starts from it), then the rest spread
        evenly over shape and size."""
        space = space_of(experiment)
        search = experiment.search
        own = self.default_point(experiment)  # refuses a network outside the space
        first = {"widths": own["layout"], "activations": joined(
            cast(MLPSection, experiment.model).activations)}  # fmt: skip
        chosen = spread_candidates(space_layouts(experiment), space.activations,
                                   search.candidates, search.seed)  # fmt: skip
        others = [{"widths": joined(w), "activations": joined(a)} for w, a in chosen]
        return [first, *[c for c in others if c != first]][: search.candidates]

    def configure(self, point: Mapping[str, Any], experiment: ExperimentConfig,
                  data: Any) -> TrialConfig:  # fmt: skip
        from ionops.models.families.mlp_learners import scaling

        model = cast(MLPSection, experiment.model)
        widths = split_widths(point["widths"] if "widths" in point else point["layout"])
        if "activations" in point:
            activations = split_activations(point["activations"])
        else:
            activations = tuple(str(point[f"activation_{k}"]) for k in range(1, len(widths) + 1))
        learning_rate = experiment.training.learning_rate
        if "learning_rate" in point:
            learning_rate = on_grid(point["learning_rate"], space_of(experiment).learning_rate)
        training = experiment.training.model_copy(update={"learning_rate": learning_rate})
        return self._trial(model, widths, activations, training, data, scaling)

    def own_trial(self, experiment: ExperimentConfig, data: Any) -> TrialConfig:
        from ionops.models.families.mlp_learners import scaling

        model = cast(MLPSection, experiment.model)
        return self._trial(model, tuple(model.widths), tuple(model.activations),
                           experiment.training, data, scaling)  # fmt: skip

    def _trial(self, model: MLPSection, widths: tuple[int, ...], activations: tuple[str, ...],
               training: Any, data: Any, scaling: Any) -> TrialConfig:  # fmt: skip
        if len(widths) != len(activations):
            raise UserError(f"widths {joined(widths)} and activations {joined(activations)} "
                            "differ in length")  # fmt: skip
        scale = scaling(data, model.learner)
        arch = MLPArchitecture(
            n_in=len(scale["in_low"]), widths=widths, activations=activations,
            n_out=len(scale["out_mean"]), residual=model.learner == "iterative", **scale,
        )  # fmt: skip
        count = parameter_count(arch.n_in, widths, arch.n_out)
        record = {
            "widths": joined(widths), "activations": joined(activations), "depth": len(widths),
            "neurons": sum(widths), "shape": shape_of(widths), "learner": model.learner,
            "learning_rate": training.learning_rate, "parameter_count": count,
        }  # fmt: skip
        learning = model.model_dump(exclude={"family", "widths", "activations"})
        return TrialConfig(arch.as_dict(), training, record, learning)

    def build(self, arguments: Mapping[str, Any]) -> nn.Module:
        from ionops.models.mlp import MLP

        return MLP(MLPArchitecture.from_dict(dict(arguments)))

    def parameter_count(self, arguments: Mapping[str, Any]) -> int:
        return parameter_count(int(arguments["n_in"]), list(arguments["widths"]),
                               int(arguments["n_out"]))  # fmt: skip

    def load_data(self, experiment: ExperimentConfig, path: Path,
                  splits: Sequence[str] | None = None) -> Any:  # fmt: skip
        from ionops.datasets.loading import load_problem_dataset
        from ionops.datasets.protocols import SPLITS

        data = load_problem_dataset(path, splits=tuple(splits or SPLITS))
        wanted = experiment.data
        if data.kind != wanted.kind or data.attributes["model"] != wanted.ionic_model:
            raise UserError(
                f"{path} is a {data.kind} dataset of {data.attributes['model']}; the experiment "
                f"wants a {experiment.data.kind} dataset of {experiment.data.ionic_model}"
            )
        return data

    def objective(self, data: Any, trial: TrialConfig, experiment: ExperimentConfig) -> Objective:
        from ionops.models.families.mlp_learners import objective_for

        return objective_for(data, trial, experiment.training.seed)

    def report(self, item: Any, folder: Path) -> list[Path]:
        from ionops.models.families import mlp_report

        return mlp_report.figures(item, folder)

    def serving(self) -> Serving:
        from ionops.models.families.mlp_serving import SERVING

        return SERVING


FAMILY = MLPFamily()
