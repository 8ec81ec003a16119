"""The neural-ODE family (paper 002): a vector field learned from one short, noisy window.

The network f_theta(z[, t]) is the paper's MLP (:class:`ionops.models.node.VectorField`);
training integrates it over the window from its first state by Heun's method and minimises

    data MSE + physics_weight * mean_i sum_j ((f_theta(z_i) - F(z_i)) / s_j)^2

with F the ionic model's own right-hand side at the observed states z_i and s_j the standard
deviation of F_j over the window (``residual_scaling``; 1 without it). One iteration of the
paper is one epoch of the training loop. The paper's baselines and ablations are settings of
the same family, so the search, the retraining and MLflow treat them alike:

- ``physics = false``: the vanilla neural ODE (data loss only); ``data_weight = 0``: the
  physics residual alone (not the paper's; see the README's measurements);
- ``method = "pinn"``: the vanilla PINN, a network of t alone trained on the data and the
  residual of its autograd derivative;
- ``integrator = "dopri5"`` and ``gradient = "adjoint"``: torchdiffeq's adaptive
  Runge-Kutta and its backsolve adjoint instead of Heun with backpropagation;
- ``noise = false``: the clean window; ``noise_scale`` multiplies the dataset's noise;
- ``normalise = false``: no input or output scaling.

``collocation_rounds`` (not the paper's; see the README's measurements) ends training with
rounds of collocation along the field's own forecast: each round forecasts from the window's
first state to ``collocation_horizon_ms``, adds the states it visits with F there to the
residual's points, and refits f to F at all of them by L-BFGS. The last
``collocation_rounds`` epochs of ``training.epochs`` are the rounds. Each residual is in
units of |F| (``collocation_weighting = "relative"``, with a floor) or of F's spread
(``"spread"``); a round fits at most ``collocation_max_points`` points, its own first (0:
every point of every round). ``precision`` is the network's (``hh-node``: float64, which
the rounds need to reach the slow phase's rates). ``output = "sinh"`` (not the paper's)
makes the field c * sinh(network) with c 0.02 times F's spread, so that the network spans
the slow phase's rates and the upstroke's, four orders of magnitude apart, in a few units.

Errors are those of a forecast from each split's initial state against the solver, over the
extrapolation window (after ``window_ms``): RMSE per state in physical units, ``nrmse``
(each state's RMSE over its spread, the search's metric, on the validation trajectory that
the test never feeds), spike precision, recall, F1, phase drift, ISI error and amplitude
errors (:mod:`ionops.models.spikes`; NaN where undefined, the reason in the run's record),
and on the test trajectory the RMSE from ``t_end_ms`` to ``long_end_ms`` (``long_rmse``).
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
    of_the_model,
    on_grid,
)
from ionops.models.points import check_cap, point_widths

if TYPE_CHECKING:
    from torch import nn

    from ionops.config import ExperimentConfig

Width = Annotated[int, Field(ge=1, le=4096)]
Integrator = Literal["heun", "dopri5"]


class NodeSection(ModelSection):
    """One neural ODE (or the vanilla PINN baseline) and how it learns; see the module
    docstring. ``time_input``: t is an input of the field (the paper's choice; a field of t
    meets times far outside the window when it forecasts, see the README's measurements)."""

    family: Literal["node"]
    method: Literal["node", "pinn"] = "node"
    widths: list[Width] = Field(default=[64, 64, 64], min_length=1, max_length=8)
    layer_norm: bool = True
    normalise: bool = True
    time_input: bool = False
    data_weight: float = Field(default=1.0, ge=0)
    physics: bool = True
    physics_weight: float = Field(default=1.5, gt=0)
    residual_scaling: bool = True
    noise: bool = True
    noise_scale: float = Field(default=1.0, gt=0)
    integrator: Integrator = "heun"
    gradient: Literal["backprop", "adjoint"] = "backprop"
    predict_integrator: Literal["heun", "dopri5", "bdf"] = "heun"
    spike_threshold: float = 0.0
    spike_window_ms: float = Field(default=2.0, gt=0)
    collocation_rounds: int = Field(default=0, ge=0, le=1000)
    collocation_horizon_ms: float | None = Field(default=None, gt=0)
    collocation_iterations: int = Field(default=300, ge=1)
    collocation_weighting: Literal["relative", "spread"] = "relative"
    collocation_max_points: int = Field(default=2048, ge=0)  # 0: every round's every point
    precision: Literal["float32", "float64"] = "float32"
    output: Literal["linear", "sinh"] = "linear"

    @model_validator(mode="after")
    def _settings_fit_the_method(self) -> NodeSection:
        if self.data_weight == 0 and not self.physics:
            raise ValueError("data_weight = 0 with physics = false leaves no loss: give "
                             "data_weight > 0 or physics = true")  # fmt: skip
        if self.method == "pinn":
            if self.collocation_rounds:
                raise ValueError("method = 'pinn' has no field to forecast with: "
                                 "collocation_rounds must be 0")  # fmt: skip
            if not self.physics:
                raise ValueError("method = 'pinn' learns from the residual: physics = "
                                 "false leaves a curve fit of the window; use physics = "
                                 "true")  # fmt: skip
            if self.gradient == "adjoint" or self.integrator != "heun":
                raise ValueError("method = 'pinn' integrates nothing: leave integrator and "
                                 "gradient at their defaults")  # fmt: skip
            if self.output != "linear":
                raise ValueError(f"output = {self.output!r} is the field's: method = 'pinn' "
                                 "has none; use output = 'linear'")  # fmt: skip
        return self


class NodeSpace(SpaceSection):
    """A neural-ODE search space: quniform (low, high, step) ranges and choices."""

    family: Literal["node"]
    physics_weight: tuple[float, float, float] = (0.5, 2.5, 0.5)
    depth: list[Annotated[int, Field(ge=1, le=8)]] = Field(default=[2, 3, 4], min_length=1)
    widths: list[Width] = Field(default=[64, 96, 128], min_length=1)
    learning_rate: tuple[float, float, float] = (2e-4, 3e-3, 1e-4)
    noise_scale: tuple[float, float, float] = (0.5, 2.0, 0.5)
    residual_scaling: list[bool] = Field(default=[True, False], min_length=1)
    integrator: list[Integrator] = Field(default=["heun", "dopri5"], min_length=1)

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> NodeSpace:
        for name in ("physics_weight", "learning_rate", "noise_scale"):
            check_quniform(name, getattr(self, name))
        return self


class NodeFamily(SurrogateFamily):
    name = "node"
    section = NodeSection
    space = NodeSpace
    metrics = (
        Metric("nrmse", "RMSE / spread"),
        Metric("rmse", "RMSE", unit="state"),
        Metric("long_rmse", "RMSE after t_end", unit="state"),
        Metric("f1", "spike F1", per_state=False, lower_is_better=False),
        Metric("precision", "spike precision", per_state=False, lower_is_better=False),
        Metric("recall", "spike recall", per_state=False, lower_is_better=False),
        Metric("phase_drift", "phase drift (ms)", per_state=False),
        Metric("isi_error", "ISI error (ms)", per_state=False),
        Metric("amplitude_deviation", "amplitude deviation", per_state=False),
        Metric("amplitude_error", "amplitude error", percent=True, relative=True,
               per_state=False),
    )  # fmt: skip
    metric = "nrmse"
    summary_metrics = ("nrmse", "rmse", "f1", "precision", "recall", "phase_drift", "isi_error",
                       "amplitude_deviation", "amplitude_error", "long_rmse")  # fmt: skip
    data_kinds = ("window",)
    smoke_test = ("hh-node", (
        "data.t_end_ms=30", "data.long_end_ms=40", "model.widths=[8,8]", "training.epochs=3",
        "model.collocation_rounds=1", "model.collocation_iterations=5",
        "training.eval_every=1", "search.num_samples=2", "search.n_initial_points=2",
        "search.max_concurrent=1", "search.checkpoint_every=1", "search.scheduler=fifo",
        "search.unconstrained.integrator=['heun']", "search.unconstrained.widths=[8]",
        "search.unconstrained.depth=[2]",
    ))  # fmt: skip

    def default_spaces(self) -> dict[str, dict[str, Any]]:
        return {"unconstrained": {}, "constrained": {}}

    def check(self, experiment: ExperimentConfig) -> None:
        super().check(experiment)
        from ionops.datasets.ionic import get_ionic_model

        model = get_ionic_model(experiment.data.ionic_model)
        if model.vector_field is None or model.caputo:
            raise UserError(
                f"data.ionic_model = {model.name!r} has no differentiable first-order "
                "right-hand side (vector_field; a Caputo derivative is not dz/dt), which the "
                "physics loss and its scaling need: choose a model that declares one"
            )
        cap = experiment.search.parameter_cap
        if experiment.search.space == "constrained" and not isinstance(cap, int):
            raise UserError(f"search.parameter_cap = {cap!r} is the FNO's spectral budget; the "
                            "node family's constrained space takes an integer cap on the "
                            "network's parameters")  # fmt: skip

    # -- the search ----------------------------------------------------------------------------
    def hyperopt_space(self, experiment: ExperimentConfig) -> dict[str, Any]:
        from hyperopt import hp

        space = cast(NodeSpace, chosen_space(experiment))
        ranges = ("physics_weight", "learning_rate", "noise_scale")
        out: dict[str, Any] = {name: hp.quniform(name, *getattr(space, name)) for name in ranges}
        for name in ("depth", "widths", "residual_scaling", "integrator"):
            out[name] = hp.choice(name, list(getattr(space, name)))
        return out

    def default_point(self, experiment: ExperimentConfig) -> dict[str, Any]:
        model = cast(NodeSection, experiment.model)
        if len(set(model.widths)) != 1:
            raise UserError(f"model.widths = {model.widths}: the search's networks have one "
                            "width per layer; give equal widths")  # fmt: skip
        return {"physics_weight": model.physics_weight, "depth": len(model.widths),
                "widths": model.widths[0], "learning_rate": experiment.training.learning_rate,
                "noise_scale": model.noise_scale, "residual_scaling": model.residual_scaling,
                "integrator": model.integrator}  # fmt: skip

    # -- a trial -------------------------------------------------------------------------------
    def configure(self, point: Mapping[str, Any], experiment: ExperimentConfig,
                  data: Any) -> TrialConfig:  # fmt: skip
        model = cast(NodeSection, experiment.model)
        space = cast(NodeSpace, chosen_space(experiment))
        update: dict[str, Any] = {}
        widths = point_widths(point, model.widths)
        if widths is not None:
            update["widths"] = widths
        for name in ("physics_weight", "noise_scale"):
            if name in point:
                update[name] = on_grid(point[name], getattr(space, name))
        for name in ("residual_scaling", "integrator"):
            if name in point:
                update[name] = point[name]
        chosen = NodeSection.model_validate({**model.model_dump(), **update})
        training = experiment.training
        if "learning_rate" in point:
            rate = on_grid(point["learning_rate"], space.learning_rate)
            training = training.model_copy(update={"learning_rate": rate})
        trial = self._trial(chosen, training, data)
        check_cap(experiment, chosen.widths, trial.parameter_count)
        return trial

    def own_trial(self, experiment: ExperimentConfig, data: Any) -> TrialConfig:
        return self._trial(cast(NodeSection, experiment.model), experiment.training, data)

    def _trial(self, model: NodeSection, training: Any, data: Any) -> TrialConfig:
        from ionops.models.families.node_field import network_arguments

        arguments = network_arguments(model, data)
        count = self.parameter_count(arguments)
        record = {
            "method": model.method, "widths": "-".join(str(w) for w in model.widths),
            "depth": len(model.widths), "physics": model.physics,
            "physics_weight": model.physics_weight, "residual_scaling": model.residual_scaling,
            "data_weight": model.data_weight, "noise": model.noise,
            "noise_scale": model.noise_scale,
            "integrator": model.integrator, "gradient": model.gradient,
            "normalise": model.normalise, "time_input": model.time_input,
            "collocation_rounds": model.collocation_rounds,
            "collocation_weighting": model.collocation_weighting,
            "precision": model.precision, "output": model.output,
            "learning_rate": training.learning_rate, "parameter_count": count,
        }  # fmt: skip
        return TrialConfig(arguments, training, record, model.model_dump(exclude={"family"}))

    def build(self, arguments: Mapping[str, Any]) -> nn.Module:
        import torch

        from ionops.models.node import TimeNetwork, VectorField

        shape = (int(arguments["n_states"]), list(arguments["widths"]),
                 bool(arguments["layer_norm"]), dict(arguments["scaling"]))  # fmt: skip
        # networks recorded before ``output`` existed are linear
        network = TimeNetwork(*shape) if arguments["method"] == "pinn" else \
            VectorField(*shape, output=str(arguments.get("output", "linear")))  # fmt: skip
        # networks recorded before the setting existed are float32
        dtype = getattr(torch, str(arguments.get("precision", "float32")))
        return network.to(dtype)

    def parameter_count(self, arguments: Mapping[str, Any]) -> int:
        n_states, widths = int(arguments["n_states"]), [int(w) for w in arguments["widths"]]
        fan_in = 1 if arguments["method"] == "pinn" else n_states + 1
        count = 0
        for width in widths:
            count += (fan_in + 1) * width + (2 * width if arguments["layer_norm"] else 0)
            fan_in = width
        return count + (fan_in + 1) * n_states

    def load_data(self, experiment: ExperimentConfig, path: Path,
                  splits: Sequence[str] | None = None) -> Any:  # fmt: skip
        from ionops.datasets.window_data import load_window

        return of_the_model(load_window(path), path, "window", experiment)

    def objective(self, data: Any, trial: TrialConfig, experiment: ExperimentConfig) -> Objective:
        from ionops.models.families.node_learning import NodeObjective

        return NodeObjective(data, trial)

    def report(self, item: Any, folder: Path) -> list[Path]:
        from ionops.models.families import node_report

        return node_report.figures(item, folder)

    def serving(self) -> Serving:
        from ionops.models.families.node_serving import SERVING

        return SERVING


FAMILY = NodeFamily()
