"""The gating-RNN family (paper 004): an ionic model learned by a recurrent network whose
gating layer keeps the meaning of Hodgkin-Huxley gates, retrained on observables alone.

The network (:mod:`ionops.models.gating_rnn`) steps every state of the model by one sampling
step: N1 (phi1 of ``width`` and the gating layer, one unit per classic gate) reads the
observables; N2 (phi2 of ``width``, an LSTM of ``lstm_width``, 0 for one unit per other state
as in the paper, and a sigmoid layer) reads the observables, the applied current and N1's
gates. States are scaled into [0, 1] by fixed, recorded ranges: the gates' whole range [0, 1],
the others' over the training data. ``gate_inputs`` narrows what phi1 reads to some
observables (``["V"]``: the gates of a model whose classic gates depend on V alone);
``gate_clock`` says when phi1 reads them: at each step's start (the paper) or at its midpoint,
the mean of the step's two ends (a free run estimates the end first).

- First pass (``first_pass = ""``): next-step supervision of every state on a ``paced``
  dataset (eq. 2.5.2), each state's error in units of its one-step change over the training
  data, ``weight_decay`` (lambda) times the mean squared weight. With ``gate_epochs`` > 0 it
  trains in two phases: ``gates``, N1 alone on the training data's single steps, shuffled, in
  batches of ``gate_batch_size`` at ``gate_learning_rate`` (cosine to 0 over the phase), then
  ``sequences``, N2 over windows of ``sequence_ms`` with N1 frozen; with 0, both together over
  the windows (the paper). N2 reads N1's gates without training them either way, so the
  phases split one loss; single steps train the gates many times faster (see the README).
  With ``rollout_epochs`` > 0 the last of them train N2 alone on free-running windows of
  ``rollout_ms`` (each state's error in units of its spread) at ``rollout_learning_rate``.
- Second pass (``first_pass`` names a first-pass checkpoint): a perturbed paced dataset's
  observables alone; phi1 and N2 frozen, the gating layer retrained with ``drift`` (eta) times
  the L1 distance between its gates and the first pass's (eq. 2.6.2). ``second_pass_loss``
  scores the gates by N2's next observables (``"network"``, the paper's) or by each
  observable's one-step change through the ionic model's own equations, with the other
  hidden states run by the same equations and the first pass's parameters (``"model"``, of
  the ``equation_observables``, default every observable;
  :mod:`ionops.models.families.gating_equations`). The hidden gates start
  from their steady state: each window comes with ``burn_in_ms`` of recording before it over
  which they (and N2's memory) settle, not scored (at most half a window the data cuts).

Errors: each validation (test) segment predicted from its first state for the whole beats it
holds by ``predictor``: the network free-running, or its converted ODE solved by the project's
BDF (:mod:`ionops.models.gating_ode`); ``rmse`` per state, ``v_rmse`` (mV, the search's) and
``apd90_error`` (ms, the mean over the beats).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import Field

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

if TYPE_CHECKING:
    from torch import nn

    from ionops.config import ExperimentConfig

Width = Annotated[int, Field(ge=1, le=1024)]
# A second pass runs its hidden gates from their steady state at a window's first sample; a
# slow gate caught in the plateau (tt04's Xs: time constant near a second, steady state 0.5
# against its true 0.13) is wrong until the next repolarisation. So each window comes with
# ``burn_in_ms`` of recording before it, not scored, and the report reads the currents after
# as long.
SETTLE_MS = 1000.0


class GatingSection(ModelSection):
    """One gating network and how it trains; see the module docstring."""

    family: Literal["gating"]
    width: Width = 30
    lstm_width: Annotated[int, Field(ge=0, le=1024)] = 0
    gates: list[str] | None = None
    observables: list[str] | None = None
    gate_inputs: list[str] | None = None
    gate_clock: Literal["start", "midpoint"] = "start"
    weight_decay: float = Field(default=1e-4, ge=0)
    sequence_ms: float = Field(default=500.0, gt=0)
    gate_epochs: int = Field(default=0, ge=0)
    gate_batch_size: int = Field(default=4096, ge=1)
    gate_learning_rate: float = Field(default=1e-2, gt=0)
    rollout_epochs: int = Field(default=0, ge=0)
    rollout_ms: float = Field(default=100.0, gt=0)
    rollout_learning_rate: float = Field(default=3e-3, gt=0)
    first_pass: str = ""
    drift: float = Field(default=1e-3, gt=0)
    second_pass_loss: Literal["network", "model"] = "network"
    equation_observables: list[str] | None = None
    burn_in_ms: float = Field(default=SETTLE_MS, ge=0)
    predictor: Literal["network", "ode"] = "network"


class GatingSpace(SpaceSection):
    """A gating-network search space: choices and quniform (low, high, step) ranges."""

    family: Literal["gating"]
    width: list[Width] = Field(default=[16, 30, 48], min_length=1)
    lstm_width: list[Annotated[int, Field(ge=0)]] = Field(default=[0, 16, 32], min_length=1)
    learning_rate: tuple[float, float, float] = (2e-4, 5e-3, 1e-4)
    weight_decay: list[Annotated[float, Field(ge=0)]] = Field(default=[0.0, 1e-6, 1e-5, 1e-4],
                                                              min_length=1)  # fmt: skip
    drift: tuple[float, float, float] = (1e-4, 2e-3, 1e-4)

    def model_post_init(self, context: Any) -> None:
        check_quniform("learning_rate", self.learning_rate)
        check_quniform("drift", self.drift)


class GatingFamily(SurrogateFamily):
    name = "gating"
    section = GatingSection
    space = GatingSpace
    metrics = (
        Metric("v_rmse", "V RMSE (mV)", per_state=False),
        Metric("rmse", "RMSE", unit="state"),
        Metric("apd90_error", "APD90 error (ms)", per_state=False),
    )  # fmt: skip
    metric = "v_rmse"
    summary_metrics = ("v_rmse", "apd90_error", "rmse")
    data_kinds = ("paced",)
    smoke_test = ("tt04-gating", (
        "data.cycle_lengths=[400,600,100]", "data.validation=1", "data.test_cycle_lengths=[450]",
        "data.segment_ms=1500", "data.discard_ms=500", "model.width=8",
        "model.sequence_ms=200", "model.gate_epochs=1", "model.gate_batch_size=256",
        "model.rollout_epochs=1", "model.rollout_ms=20", "training.epochs=3",
        "training.eval_every=1", "training.batch_size=4",
        "search.num_samples=2", "search.n_initial_points=2", "search.max_concurrent=1",
        "search.checkpoint_every=1", "search.scheduler=fifo",
        "search.unconstrained.width=[8]", "search.unconstrained.lstm_width=[0]",
    ))  # fmt: skip

    def default_spaces(self) -> dict[str, dict[str, Any]]:
        return {"unconstrained": {}, "constrained": {}}

    def check(self, experiment: ExperimentConfig) -> None:
        super().check(experiment)
        model = cast(GatingSection, experiment.model)
        _states(experiment, model)
        if model.first_pass:
            _first_pass(experiment, model)
        elif model.gate_epochs + model.rollout_epochs >= experiment.training.epochs:
            raise UserError(f"model.gate_epochs + model.rollout_epochs = {model.gate_epochs} + "
                            f"{model.rollout_epochs} leaves no epoch of training.epochs = "
                            f"{experiment.training.epochs} to train N2 on windows: their sum "
                            f"must be below training.epochs")  # fmt: skip
        cap = experiment.search.parameter_cap
        if experiment.search.space == "constrained" and not isinstance(cap, int):
            raise UserError(f"search.parameter_cap = {cap!r} is the FNO's spectral budget; the "
                            "gating family's constrained space takes an integer cap on the "
                            "network's trainable parameters")  # fmt: skip

    # -- the search ----------------------------------------------------------------------------
    def hyperopt_space(self, experiment: ExperimentConfig) -> dict[str, Any]:
        from hyperopt import hp

        space = cast(GatingSpace, chosen_space(experiment))
        out: dict[str, Any] = {"learning_rate": hp.quniform("learning_rate",
                                                            *space.learning_rate),
                               "weight_decay": hp.choice("weight_decay",
                                                         list(space.weight_decay))}  # fmt: skip
        if cast(GatingSection, experiment.model).first_pass:  # the widths are the first pass's
            out["drift"] = hp.quniform("drift", *space.drift)
        else:
            out["width"] = hp.choice("width", list(space.width))
            out["lstm_width"] = hp.choice("lstm_width", list(space.lstm_width))
        return out

    def default_point(self, experiment: ExperimentConfig) -> dict[str, Any]:
        model = cast(GatingSection, experiment.model)
        point: dict[str, Any] = {"learning_rate": experiment.training.learning_rate,
                                 "weight_decay": model.weight_decay}  # fmt: skip
        if model.first_pass:
            point["drift"] = model.drift
        else:
            point.update(width=model.width, lstm_width=model.lstm_width)
        return point

    # -- a trial -------------------------------------------------------------------------------
    def configure(self, point: Mapping[str, Any], experiment: ExperimentConfig,
                  data: Any) -> TrialConfig:  # fmt: skip
        from ionops.models.points import check_cap

        model = cast(GatingSection, experiment.model)
        space = cast(GatingSpace, chosen_space(experiment))
        update: dict[str, Any] = {}
        for name in ("width", "lstm_width", "weight_decay"):
            if name in point:
                update[name] = point[name]
        if "drift" in point:
            update["drift"] = on_grid(point["drift"], space.drift)
        chosen = GatingSection.model_validate({**model.model_dump(), **update})
        if "learning_rate" in point:
            rate = on_grid(point["learning_rate"], space.learning_rate)
            training = experiment.training.model_copy(update={"learning_rate": rate})
            experiment = experiment.model_copy(update={"training": training})
        trial = self._trial(chosen, experiment, data)
        check_cap(experiment, [chosen.width], trial.parameter_count)
        return trial

    def own_trial(self, experiment: ExperimentConfig, data: Any) -> TrialConfig:
        return self._trial(cast(GatingSection, experiment.model), experiment, data)

    def _trial(self, model: GatingSection, experiment: ExperimentConfig,
               data: Any) -> TrialConfig:  # fmt: skip
        import numpy as np

        from ionops.models.gating_rnn import Scaling

        gates, observables, gate_inputs = _states(experiment, model)
        n_states = len(data.attributes["state_names"])
        others = [k for k in range(n_states) if k not in gates]
        if model.first_pass:
            first = _first_pass(experiment, model)
            arguments = {**first["arguments"], "second_pass": True}
        else:
            scaling = Scaling.of(data.states["train"], gates=gates)
            typical = [float(np.mean(data.states["train"][:, k])) for k in others]
            arguments = {"n_states": n_states, "gates": gates, "observables": observables,
                         "gate_inputs": gate_inputs, "gate_clock": model.gate_clock,
                         "width": model.width,
                         "lstm_width": model.lstm_width,
                         "low": list(scaling.low), "high": list(scaling.high),
                         "typical": [(v - scaling.low[k]) / (scaling.high[k] - scaling.low[k])
                                     for v, k in zip(typical, others, strict=True)],
                         # the model the network learns: a second pass keeps it (its data's
                         # conductances are what it has to find, never what it is told)
                         "parameters": {k: float(v)
                                        for k, v in data.attributes["parameters"].items()},
                         "second_pass": False}  # fmt: skip
        count = self.parameter_count(arguments)
        record = {"width": arguments["width"], "lstm_width": arguments["lstm_width"],
                  "weight_decay": model.weight_decay, "drift": model.drift,
                  "second_pass_loss": model.second_pass_loss,
                  "burn_in_ms": model.burn_in_ms,
                  "pass": "second" if model.first_pass else "first",
                  "first_pass": model.first_pass, "sequence_ms": model.sequence_ms,
                  "predictor": model.predictor, "gate_epochs": model.gate_epochs,
                  "gate_batch_size": model.gate_batch_size,
                  "gate_learning_rate": model.gate_learning_rate,
                  "rollout_epochs": model.rollout_epochs, "rollout_ms": model.rollout_ms,
                  "rollout_learning_rate": model.rollout_learning_rate,
                  "learning_rate": experiment.training.learning_rate,
                  "parameter_count": count}  # fmt: skip
        learning = model.model_dump(exclude={"family"})
        if model.first_pass:
            learning["first_pass_file"] = str(_first_pass_file(model))
        return TrialConfig(arguments, experiment.training, record, learning)

    def build(self, arguments: Mapping[str, Any]) -> nn.Module:
        from ionops.models.families.gating_learning import build

        return build(arguments)

    def parameter_count(self, arguments: Mapping[str, Any]) -> int:
        """Trainable parameters: every weight in a first pass, the gating layer's in a second."""
        width = int(arguments["width"])
        n_gates, n_obs = len(arguments["gates"]), len(arguments["observables"])
        n_others = int(arguments["n_states"]) - n_gates
        memory = int(arguments["lstm_width"]) or n_others
        gating = 2 * (width * n_gates + n_gates)
        if arguments["second_pass"]:
            return gating
        phi1 = len(arguments["gate_inputs"]) * width + width + width * width + width
        phi2 = (n_obs + 1 + n_gates) * width + width + width * width + width
        lstm = 4 * memory * (width + memory) + 8 * memory
        phi3 = memory * n_others + n_others
        encoder = n_others * 2 * memory + 2 * memory
        return phi1 + gating + phi2 + lstm + phi3 + encoder

    def load_data(self, experiment: ExperimentConfig, path: Path,
                  splits: Sequence[str] | None = None) -> Any:  # fmt: skip
        from ionops.datasets.paced_data import load_paced

        return of_the_model(load_paced(path), path, "paced", experiment)

    def objective(self, data: Any, trial: TrialConfig, experiment: ExperimentConfig) -> Objective:
        from ionops.models.families.gating_learning import GatingObjective

        return GatingObjective(data, trial)

    def report(self, item: Any, folder: Path) -> list[Path]:
        from ionops.models.families import gating_report

        return gating_report.figures(item, folder)

    def serving(self) -> Serving:
        from ionops.models.families.gating_serving import SERVING

        return SERVING


def _states(experiment: ExperimentConfig,
            model: GatingSection) -> tuple[list[int], list[int], list[int]]:  # fmt: skip
    """The state indices of the gates, the observables and the observables phi1 reads, each
    name checked against the model."""
    from ionops.datasets.ionic import get_ionic_model

    ionic = get_ionic_model(experiment.data.ionic_model)
    names = list(ionic.state_names)
    out = []
    asked = (
        ("gates", model.gates, ionic.gates),
        ("observables", model.observables, ionic.observables),
    )
    for key, given, declared in asked:
        chosen = list(declared) if given is None else list(given)
        if not chosen:
            raise UserError(f"model.{key}: {ionic.name} declares no {key}; name them from its "
                            f"states: {', '.join(names)}")  # fmt: skip
        unknown = [name for name in chosen if name not in names]
        if unknown:
            raise UserError(f"model.{key} = {chosen}: {', '.join(unknown)} not among the states "
                            f"of {ionic.name}: {', '.join(names)}")  # fmt: skip
        if len(set(chosen)) != len(chosen):
            raise UserError(f"model.{key} = {chosen} names a state twice")
        out.append([names.index(name) for name in chosen])
    gates, observables = out
    if set(gates) & set(observables):
        raise UserError(f"model.gates and model.observables share "
                        f"{[names[k] for k in set(gates) & set(observables)]}: an observable "
                        "is recorded, a gate is hidden")  # fmt: skip
    chosen = [names[k] for k in observables] if model.gate_inputs is None else model.gate_inputs
    outside = [name for name in chosen if name not in [names[k] for k in observables]]
    if outside or not chosen:
        raise UserError(f"model.gate_inputs = {chosen}: give some of the observables "
                        f"({', '.join(names[k] for k in observables)})")  # fmt: skip
    scored = model.equation_observables
    if scored is not None and (not scored or not set(scored) <= {names[k] for k in observables}):
        raise UserError(f"model.equation_observables = {scored}: give some of the observables "
                        f"({', '.join(names[k] for k in observables)})")  # fmt: skip
    return gates, observables, [names.index(name) for name in chosen]


def _first_pass(experiment: ExperimentConfig, model: GatingSection) -> dict[str, Any]:
    """The first-pass checkpoint a second pass starts from, checked against the experiment."""
    from ionops.datasets.ionic import get_ionic_model
    from ionops.training.checkpoint import load_checkpoint

    path = _first_pass_file(model)
    if not path.is_file():
        raise UserError(f"model.first_pass = {model.first_pass!r}: no first-pass checkpoint "
                        "there; give the checkpoint.pt of a finished first pass (`ionops "
                        "train` of the control experiment) or its run folder")  # fmt: skip
    state = load_checkpoint(path)
    arguments = state.get("arguments", {})
    if state.get("family") != "gating" or arguments.get("second_pass", True):
        raise UserError(
            f"model.first_pass = {model.first_pass!r} is not a first pass of the "
            "gating family: a second pass starts from a first-pass network"
        )
    gates, observables, gate_inputs = _states(experiment, model)
    if (list(arguments["gates"]), list(arguments["observables"]),
            list(arguments["gate_inputs"]), arguments["gate_clock"]) != (
            gates, observables, gate_inputs, model.gate_clock):  # fmt: skip
        raise UserError(f"model.first_pass = {model.first_pass!r} has other gates, "
                        "observables, gate_inputs or gate_clock than this experiment's model "
                        "section")  # fmt: skip
    if model.second_pass_loss == "model":
        ionic = get_ionic_model(experiment.data.ionic_model)
        if ionic.vector_field is None:
            raise UserError(f"model.second_pass_loss = 'model': {ionic.name} has no "
                            "differentiable right-hand side (vector_field) to score the "
                            "retrained gates through; use 'network'")  # fmt: skip
        if not arguments.get("parameters"):
            raise UserError(f"model.first_pass = {model.first_pass!r} does not record the "
                            "parameters of the model it learned, which "
                            "model.second_pass_loss = 'model' scores through; train the first "
                            "pass again or use 'network'")  # fmt: skip
    return state


def _first_pass_file(model: GatingSection) -> Path:
    path = Path(model.first_pass).expanduser().resolve()
    return path / "checkpoint.pt" if path.is_dir() else path


FAMILY = GatingFamily()
