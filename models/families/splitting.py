"""The splitting-PINN family (paper 003): an ionic model solved by physics-informed networks.

A PINN learns from the equations alone. ``method = "splitting"`` (the family's method) splits
the right-hand side into the membrane potential and the other states (``splitting``: lie,
strang, or none for a one-state model) and marches over windows of ``window_ms``, each
sub-problem a small network (:mod:`ionops.models.splitting`): random tanh features of
``widths`` whose output layer is fitted to the physics residual by Gauss-Newton at
``collocation`` points (the L1 nodes for a Caputo state), resets applied at each located
threshold crossing. Its baselines are settings of the same family, so the search, the
retraining and MLflow treat them alike (:mod:`ionops.models.horizon_pinn`):

- ``method = "pinn"``: the vanilla PINN, one network of t over the whole horizon, Adam on
  the residual at ``points`` random collocation points an epoch;
- ``method = "fpinn"``: the fractional PINN, the same on a fixed grid of ``points`` nodes
  with the L1 sum for each Caputo state.

The dataset is a ``reference`` problem (:mod:`ionops.datasets.reference`). The family solves
its test problem (``train`` and ``test`` errors are the same comparison: nothing is fitted
to the reference) and, as its search signal, the validation problem from another start with
the same settings. A march's epochs are chunks of the horizon (epoch k reaches k / epochs of
it; ASHA compares trials that reached the same time), a baseline's are Adam iterations.

Errors against the reference: ``rel_l2`` per state over the horizon reached; spike precision,
recall, F1 and phase drift (matched within ``spike_window_ms``; peaks above
``spike_threshold``, or the recorded resets of an integrate-and-fire or Izhikevich neuron);
``window_cost``, the seconds of compute per window (a baseline: per epoch).
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
Splitting = Literal["lie", "strang", "none"]


class SplittingSection(ModelSection):
    """One PINN of the family and how it solves its problem; see the module docstring."""

    family: Literal["splitting"]
    method: Literal["splitting", "pinn", "fpinn"] = "splitting"
    splitting: Splitting = "strang"
    window_ms: float = Field(default=0.02, gt=0)
    widths: list[Width] = Field(default=[16], min_length=1, max_length=8)
    collocation: int = Field(default=24, ge=2, le=4096)
    feature_scale: float = Field(default=4.0, gt=0)
    iterations: int = Field(default=8, ge=1, le=1000)
    tolerance: float = Field(default=1e-10, gt=0)
    points: int = Field(default=2000, ge=2, le=1_000_000)
    spike_threshold: float = 0.0
    spike_window_ms: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _settings_fit_the_method(self) -> SplittingSection:
        if self.method != "splitting" and self.splitting != "strang":
            raise ValueError(f"method = {self.method!r} is one network over the horizon: "
                             "splitting applies to method = 'splitting' only")  # fmt: skip
        return self


class SplittingSpace(SpaceSection):
    """A splitting-PINN search space: quniform (low, high, step) ranges and choices."""

    family: Literal["splitting"]
    window_ms: list[Annotated[float, Field(gt=0)]] = Field(default=[0.02, 0.04],
                                                           min_length=1)  # fmt: skip
    depth: list[Annotated[int, Field(ge=1, le=8)]] = Field(default=[1, 2], min_length=1)
    widths: list[Width] = Field(default=[8, 16, 32], min_length=1)
    collocation: list[Annotated[int, Field(ge=2, le=4096)]] = Field(default=[16, 24, 32],
                                                                    min_length=1)  # fmt: skip
    feature_scale: tuple[float, float, float] = (1.0, 8.0, 1.0)
    splitting: list[Splitting] = Field(default=["strang", "lie"], min_length=1)
    learning_rate: tuple[float, float, float] = (2e-4, 3e-3, 1e-4)
    points: list[Annotated[int, Field(ge=2)]] = Field(default=[1000, 2000, 4000], min_length=1)

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> SplittingSpace:
        check_quniform("feature_scale", self.feature_scale)
        check_quniform("learning_rate", self.learning_rate)
        return self


class SplittingFamily(SurrogateFamily):
    name = "splitting"
    section = SplittingSection
    space = SplittingSpace
    metrics = (
        Metric("rel_l2", "relative L2", percent=True, relative=True),
        Metric("f1", "spike F1", per_state=False, lower_is_better=False),
        Metric("precision", "spike precision", per_state=False, lower_is_better=False),
        Metric("recall", "spike recall", per_state=False, lower_is_better=False),
        Metric("phase_drift", "phase drift (ms)", per_state=False),
        Metric("window_cost", "seconds per window", per_state=False),
    )  # fmt: skip
    metric = "rel_l2"
    summary_metrics = ("rel_l2", "f1", "precision", "recall", "phase_drift", "window_cost")
    data_kinds = ("reference",)
    smoke_test = ("hh-splitting", (
        "data.t_end_ms=2", "model.window_ms=0.04", "model.widths=[8]", "training.epochs=2",
        "training.eval_every=1",
        "search.num_samples=2", "search.n_initial_points=2", "search.max_concurrent=1",
        "search.checkpoint_every=1", "search.scheduler=fifo",
        "search.unconstrained.window_ms=[0.04]", "search.unconstrained.widths=[8]",
        "search.unconstrained.depth=[1]",
    ))  # fmt: skip

    def default_spaces(self) -> dict[str, dict[str, Any]]:
        return {"unconstrained": {}, "constrained": {}}

    def check(self, experiment: ExperimentConfig) -> None:
        super().check(experiment)
        from ionops.datasets.ionic import get_ionic_model

        data: Any = experiment.data
        model = cast(SplittingSection, experiment.model)
        ionic = get_ionic_model(data.ionic_model)
        if ionic.vector_field is None:
            raise UserError(f"data.ionic_model = {ionic.name!r} gives no differentiable "
                            "right-hand side (vector_field), which every PINN's residual "
                            "needs: choose a model that declares one")  # fmt: skip
        if model.method == "splitting":
            _check_window(model.window_ms, float(data.dt_ms), float(data.t_end_ms))
            if model.splitting != "none" and ionic.n_states < 2:
                raise UserError(f"model.splitting = {model.splitting!r}: {ionic.name} has one "
                                "state, nothing to split; use 'none'")  # fmt: skip
        step = float(getattr(data, "caputo_step_ms", 0.0))
        if model.method == "splitting" and ionic.caputo:
            ratio = model.window_ms / step
            if abs(ratio - round(ratio)) > 1e-9 * ratio or round(ratio) < 2:
                raise UserError(f"model.window_ms = {model.window_ms:g} is not a whole "
                                f"number (at least 2) of L1 steps (data.caputo_step_ms = "
                                f"{step:g})")  # fmt: skip
        if model.method == "fpinn" and not ionic.caputo:
            raise UserError(f"model.method = 'fpinn' is the fractional PINN: {ionic.name} has "
                            "no Caputo derivative; use method = 'pinn'")  # fmt: skip
        cap = experiment.search.parameter_cap
        if experiment.search.space == "constrained" and not isinstance(cap, int):
            raise UserError(f"search.parameter_cap = {cap!r} is the FNO's spectral budget; the "
                            "splitting family's constrained space takes an integer cap on "
                            "the network's parameters")  # fmt: skip

    # -- the search ----------------------------------------------------------------------------
    def hyperopt_space(self, experiment: ExperimentConfig) -> dict[str, Any]:
        from hyperopt import hp

        space = cast(SplittingSpace, chosen_space(experiment))
        if cast(SplittingSection, experiment.model).method == "splitting":
            ranges, choices = ["feature_scale"], ["window_ms", "collocation", "splitting"]
        else:  # one network trained by Adam: the march's settings do not apply
            ranges, choices = ["learning_rate"], ["points"]
        out: dict[str, Any] = {name: hp.quniform(name, *getattr(space, name)) for name in ranges}
        for name in ("depth", "widths", *choices):
            out[name] = hp.choice(name, list(getattr(space, name)))
        return out

    def default_point(self, experiment: ExperimentConfig) -> dict[str, Any]:
        model = cast(SplittingSection, experiment.model)
        if len(set(model.widths)) != 1:
            raise UserError(f"model.widths = {model.widths}: the search's networks have one "
                            "width per layer; give equal widths")  # fmt: skip
        if model.method != "splitting":
            return {"depth": len(model.widths), "widths": model.widths[0],
                    "learning_rate": experiment.training.learning_rate,
                    "points": model.points}  # fmt: skip
        return {"window_ms": model.window_ms, "depth": len(model.widths),
                "widths": model.widths[0], "collocation": model.collocation,
                "feature_scale": model.feature_scale, "splitting": model.splitting}  # fmt: skip

    # -- a trial -------------------------------------------------------------------------------
    def configure(self, point: Mapping[str, Any], experiment: ExperimentConfig,
                  data: Any) -> TrialConfig:  # fmt: skip
        model = cast(SplittingSection, experiment.model)
        space = cast(SplittingSpace, chosen_space(experiment))
        update: dict[str, Any] = {}
        widths = point_widths(point, model.widths)
        if widths is not None:
            update["widths"] = widths
        if "feature_scale" in point:
            update["feature_scale"] = on_grid(point["feature_scale"], space.feature_scale)
        for name in ("window_ms", "collocation", "splitting", "points"):
            if name in point:
                update[name] = point[name]
        chosen = SplittingSection.model_validate({**model.model_dump(), **update})
        if chosen.method == "splitting":
            data_section: Any = experiment.data
            _check_window(chosen.window_ms, float(data_section.dt_ms),
                          float(data_section.t_end_ms))  # fmt: skip
        if "learning_rate" in point:
            rate = on_grid(point["learning_rate"], space.learning_rate)
            training = experiment.training.model_copy(update={"learning_rate": rate})
            experiment = experiment.model_copy(update={"training": training})
        trial = self._trial(chosen, experiment, data)
        check_cap(experiment, chosen.widths, trial.parameter_count)
        return trial

    def own_trial(self, experiment: ExperimentConfig, data: Any) -> TrialConfig:
        return self._trial(cast(SplittingSection, experiment.model), experiment, data)

    def _trial(self, model: SplittingSection, experiment: ExperimentConfig,
               data: Any) -> TrialConfig:  # fmt: skip
        from ionops.datasets.ionic import get_ionic_model
        from ionops.models.splitting import state_groups

        ionic = get_ionic_model(experiment.data.ionic_model)
        groups = state_groups(ionic, model.splitting) if model.method == "splitting" else []
        arguments = {"method": model.method, "n_states": ionic.n_states,
                     "widths": list(model.widths), "groups": [list(g) for g in groups],
                     "t_end": float(experiment.data.t_end_ms),
                     "start": [float(v) for v in data.initial_state["test"]],
                     "validation_start": [float(v) for v in data.initial_state["validation"]],
                     "lattice": _lattice_size(model, experiment)}  # fmt: skip
        count = self.parameter_count(arguments)
        record = {
            "method": model.method, "splitting": model.splitting, "window_ms": model.window_ms,
            "widths": "-".join(str(w) for w in model.widths), "depth": len(model.widths),
            "collocation": model.collocation, "feature_scale": model.feature_scale,
            "points": model.points, "learning_rate": experiment.training.learning_rate,
            "parameter_count": count,
        }  # fmt: skip
        step = float(getattr(experiment.data, "caputo_step_ms", 1e-3))
        learning = {**model.model_dump(exclude={"family"}), "caputo_step_ms": step}
        return TrialConfig(arguments, experiment.training, record, learning)

    def build(self, arguments: Mapping[str, Any]) -> nn.Module:
        from ionops.models.families.splitting_learning import build

        return build(arguments)

    def parameter_count(self, arguments: Mapping[str, Any]) -> int:
        widths = [int(w) for w in arguments["widths"]]
        n_states = int(arguments["n_states"])
        if arguments["method"] == "splitting":  # the trained output layers of the windows
            return sum(len(group) * (widths[-1] + 1) for group in arguments["groups"])
        count, fan_in = 0, 1
        for width in widths:
            count += (fan_in + 1) * width
            fan_in = width
        return 2 * (count + (fan_in + 1) * n_states)  # the test and the validation networks

    def load_data(self, experiment: ExperimentConfig, path: Path,
                  splits: Sequence[str] | None = None) -> Any:  # fmt: skip
        from ionops.datasets.reference_data import load_reference

        return of_the_model(load_reference(path), path, "reference", experiment)

    def objective(self, data: Any, trial: TrialConfig, experiment: ExperimentConfig) -> Objective:
        from ionops.models.families.splitting_learning import SplittingObjective

        return SplittingObjective(data, trial)

    def report(self, item: Any, folder: Path) -> list[Path]:
        from ionops.models.families import splitting_report

        return splitting_report.figures(item, folder)

    def serving(self) -> Serving:
        from ionops.models.families.splitting_serving import SERVING

        return SERVING


def _check_window(window: float, dt: float, t_end: float) -> None:
    """A march's windows end on the reference's grid: a whole multiple of its time step, and
    no longer than the horizon."""
    if window > t_end:
        raise UserError(f"model.window_ms = {window:g} is longer than the horizon "
                        f"(data.t_end_ms = {t_end:g}); give window_ms <= t_end_ms")  # fmt: skip
    if window < dt * (1 - 1e-9):
        raise UserError(f"model.window_ms = {window:g} is shorter than the time step (data.dt_ms "
                        f"= {dt:g}); give window_ms >= dt_ms (or a finer data.dt_ms)")  # fmt: skip
    ratio = window / dt
    if abs(ratio - round(ratio)) > 1e-9 * ratio:
        raise UserError(f"model.window_ms = {window:g} is not a whole number of data.dt_ms = "
                        f"{dt:g}: the windows must end on the reference's grid")  # fmt: skip


def _lattice_size(model: SplittingSection, experiment: ExperimentConfig) -> int:
    """Times a march records (every window's end, and the start), an upper bound: the
    lattice and every stimulus change."""
    import math

    from ionops.datasets.stimuli import from_section

    t_end = float(experiment.data.t_end_ms)
    section: Any = experiment.data
    pieces = from_section(section.stimulus.model_dump()).pieces(t_end)
    return math.floor(t_end / model.window_ms + 1e-9) + len(pieces) + 1


FAMILY = SplittingFamily()
