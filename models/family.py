"""The surrogate-family plug-in: what a family gives the training loop, the search and the report.

A family is one module under ``models/families/`` (or another package's,
named by an entry point) holding one ``FAMILY`` object, an instance of a
:class:`SurrogateFamily` subclass. Its parts are split by who uses them:

- :class:`Training` (``ionops train``, every trial, the retraining, the
  report): its ``[model]`` section (:class:`ModelSection`, discriminated by
  ``family``), its declared :class:`Metric` s, the dataset kinds it trains on,
  :meth:`~Training.configure` (a point, or a record of one, as constructor
  arguments, training settings and what MLflow records), ``build`` and an
  analytic ``parameter_count``, its data (``load_data``) and its
  :class:`Objective` (batches, loss, per-sample errors, and optionally its
  own phases and optimisers), its report figures;
- :class:`Search` (``ionops tune``): the section of each search space
  (:class:`SpaceSection`) with its defaults, a hyperopt space, the
  experiment's own configuration as the first point, optionally a fixed set
  of candidates; points never use the keys of :mod:`ionops.models.points`;
- :class:`Serving` (``ionops predict``), from :meth:`SurrogateFamily.serving`:
  its inputs, the prediction of whole trajectories in physical units, the
  solver's answer for the same inputs and the errors between the two. A
  checkpoint carries what these need as the objective's
  :meth:`Objective.describe`.

The training loop, ``ionops train``, the search, the retraining and the report
call these and never name a family. Family modules stay light at import
(pydantic and the standard library): torch is imported inside the methods
that need it, so reading an experiment never loads it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ionops.config_io import Section
from ionops.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from ionops.config import ExperimentConfig
    from ionops.training.loop import TrainSettings
    from ionops.training.optimisation import Optimisation, Phase


class ModelSection(Section):
    """Base of a family's ``[model]`` section; ``family`` is the union's discriminator."""

    family: str


class SpaceSection(Section):
    """Base of a family's search space (``[search.unconstrained]``, ``[search.constrained]``).

    ``family`` is filled in from ``[model]`` when the file does not give it.
    """

    family: str


def chosen_space(experiment: ExperimentConfig) -> SpaceSection:
    """The search space ``search.space`` picks (a family casts it to its own section)."""
    search = experiment.search
    return search.constrained if search.space == "constrained" else search.unconstrained


def check_quniform(name: str, grid: tuple[float, float, float]) -> None:
    """A quniform (low, high, step) range must have 0 < low <= high and a positive step."""
    low, high, step = grid
    if not (0 < low <= high and step > 0):
        raise ValueError(f"{name} = {[low, high, step]}: need 0 < low <= high, step > 0")


def on_grid(value: float, grid: tuple[float, float, float]) -> float:
    """A quniform value rounded back onto its grid (hyperopt returns 0.0027700000000000003)."""
    step = grid[2]
    return round(round(float(value) / step) * step, 12)


@dataclass(frozen=True)
class Metric:
    """What one of a family's per-sample errors means, and how every command shows it.

    ``name`` is the key of :meth:`Objective.evaluate` (``rel_l2``); ``label`` how
    tables name it; ``unit`` its physical unit (``"state"``: each state's own,
    ``""``: none); ``percent`` shows it as a percentage (a relative error, a
    share of samples); ``relative`` says it is relative to the truth's size;
    ``per_state`` that each sample has one value per state (else one pooled
    value); ``lower_is_better`` its direction.
    """

    name: str
    label: str
    unit: str = ""
    percent: bool = False
    relative: bool = False
    per_state: bool = True
    lower_is_better: bool = True

    def format(self, value: float | None, digits: int = 3, width: int = 0) -> str:
        """``value`` as every command prints it (``-`` when there is none, ``undefined``
        for NaN)."""
        if value is None:
            return f"{'-':>{width}}"
        if math.isnan(value):  # a score without what it needs (no spike predicted, ...)
            return f"{'undefined':>{width}}"
        text = f"{value:.{digits}%}" if self.percent else f"{value:.{digits}e}"
        return f"{text:>{width}}"


def metric_of(metrics: Sequence[Metric], key: str) -> Metric:
    """The metric of a key as runs record it (``test/rel_l2/V``, ``validation/mae``,
    ``rel_l2``); a key no family declares is shown as a plain number named by itself."""
    parts = key.split("/")
    declared = {m.name: m for m in metrics}
    for part in parts:
        if part in declared:
            return declared[part]
    return Metric(key, key)


def of_the_model(data: Any, path: Path, kind: str, experiment: ExperimentConfig) -> Any:
    """``data`` (a ``kind`` dataset read from ``path``) if it is of the experiment's ionic
    model; otherwise a UserError naming both."""
    if data.attributes["model"] != experiment.data.ionic_model:
        raise UserError(f"{path} is a {kind} dataset of {data.attributes['model']}; the "
                        f"experiment wants {experiment.data.ionic_model}")  # fmt: skip
    return data


def data_bytes(data: Any) -> int:
    """The memory a family's loaded dataset holds: its ``nbytes`` where it says, else the
    arrays and tensors found in its fields, mappings and sequences (what the search's object
    store must hold)."""
    seen: set[int] = set()

    def size(value: Any) -> int:  # noqa: PLR0911 (one case per container)
        if id(value) in seen:
            return 0
        seen.add(id(value))
        if hasattr(value, "nbytes") and not isinstance(value, type):
            return int(value.nbytes)
        if hasattr(value, "element_size") and hasattr(value, "nelement"):  # a torch tensor
            return int(value.element_size() * value.nelement())
        if isinstance(value, Mapping):
            return sum(size(v) for v in value.values())
        if isinstance(value, list | tuple):
            return sum(size(v) for v in value)
        if hasattr(value, "__dict__"):
            return sum(size(v) for v in vars(value).values())
        return 0

    return size(data)


@dataclass(frozen=True)
class TrialConfig:
    """One point of a family's space made concrete.

    ``arguments`` are the network's constructor arguments (what a checkpoint
    stores to rebuild it), ``training`` the experiment's ``[training]`` with the
    point's optimiser settings, ``record`` what MLflow and ``trials.csv`` keep
    of the trial (plain values, ``parameter_count`` among them) and
    ``learning`` what the family's objective needs beside the network (loss
    weights, say). A record is itself a point: configuring it again gives the
    same trial.
    """

    arguments: dict[str, Any]
    training: Any  # the experiment's TrainingConfig with the point's settings
    record: dict[str, Any]
    learning: dict[str, Any] = field(default_factory=dict)

    @property
    def parameter_count(self) -> int:
        return int(self.record["parameter_count"])


class Objective(ABC):
    """How a family learns from its dataset: training batches, their loss, per-sample errors.

    Built inside a trial from the family's dataset; it owns the tensors (moved
    once to the training device) and any randomness of its own (collocation
    points), which :meth:`state_dict` carries into checkpoints.
    """

    #: the per-sample errors of :meth:`evaluate`, (n,) or (n, n_states) each
    state_names: Sequence[str]

    def to(self, device: torch.device) -> None:  # noqa: B027 (a no-op unless overridden)
        """Move the tensors the objective trains and evaluates on to ``device``."""

    @abstractmethod
    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[Any]:
        """One epoch of training batches, in an order drawn from ``generator``."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The scalar loss of one batch."""

    @abstractmethod
    def evaluate(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        """Per-sample errors of ``split``: name -> (n,) or (n, n_states)."""

    @abstractmethod
    def splits(self) -> tuple[str, ...]:
        """The splits this objective can evaluate."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs beside the weights to use or resume the model."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 (no state: no-op)
        """Restore what :meth:`state_dict` returned (randomness the objective owns)."""

    # -- how it trains (the loop's defaults unless a family says otherwise) ---------------------
    def phases(self, settings: TrainSettings) -> Sequence[Phase]:
        """The passes of a run, in order (:class:`~ionops.training.optimisation.Phase`): by
        default one, ``train``, over all of ``settings.epochs``."""
        from ionops.training.optimisation import Phase

        return (Phase("train"),)

    def enter(self, phase: Phase) -> None:  # noqa: B027 (one phase: nothing to switch)
        """A phase begins (or a run resumes inside it): switch data, loss or evaluation."""

    def optimisation(self, model: nn.Module, phase: Phase,
                     settings: TrainSettings) -> Optimisation:  # fmt: skip
        """The optimisers, schedules and step of ``phase`` over the parameters it trains
        (``requires_grad``); by default those ``[training]`` names."""
        from ionops.training.optimisation import standard

        return standard((p for p in model.parameters() if p.requires_grad), settings)

    def describe(self) -> dict[str, Any]:
        """What using the trained network needs without its dataset (a checkpoint's
        ``surrogate``): ``kind`` (the dataset's), ``attributes`` (the dataset's, as JSON),
        ``time`` (the grid of predicted trajectories, a tensor), ``ranges`` (each input's
        trained [low, high]) and what the family adds. Empty: the family cannot be served."""
        return {}


class Training(ABC):
    """The part of a family that training uses (``ionops train``, every trial, the retraining,
    the report): its sections, metrics, data, network and objective."""

    name: ClassVar[str]
    section: ClassVar[type[ModelSection]]
    #: every per-sample error the objective reports, with its meaning (:class:`Metric`)
    metrics: ClassVar[tuple[Metric, ...]]
    #: the per-sample error the search minimises (its mean over the validation split)
    metric: ClassVar[str]
    #: the errors a run and a retraining summarise, mean ± std over seeds
    summary_metrics: ClassVar[tuple[str, ...]]
    #: the dataset kinds (``[data] kind``) the family can train on
    data_kinds: ClassVar[tuple[str, ...]]

    def metric_of(self, key: str) -> Metric:
        """The declared metric of a recorded key (``test/rel_l2/V``); see :func:`metric_of`."""
        return metric_of(self.metrics, key)

    def check(self, experiment: ExperimentConfig) -> None:
        """Checks across sections, at load time; raise :class:`UserError` naming the keys."""
        kind = experiment.data.kind
        if kind not in self.data_kinds:
            raise UserError(
                f"data.kind = {kind!r}: the {self.name} family trains on "
                f"{' or '.join(repr(k) for k in self.data_kinds)} datasets"
            )

    def data_kind(self, experiment: ExperimentConfig) -> str:
        """The dataset kind this experiment's model trains on."""
        return str(experiment.data.kind)

    @abstractmethod
    def configure(self, point: Mapping[str, Any], experiment: ExperimentConfig,
                  data: Any) -> TrialConfig:  # fmt: skip
        """A point (or a record) as constructor arguments, training settings and a record.
        The keys of :data:`ionops.models.points.RESERVED_KEYS` are the platform's."""

    @abstractmethod
    def own_trial(self, experiment: ExperimentConfig, data: Any) -> TrialConfig:
        """The experiment's own ``[model]`` and ``[training]`` (``ionops train``), whatever
        its search spaces hold: built from the sections, not from a point of a space (a
        point outside the space would be refused)."""

    @abstractmethod
    def build(self, arguments: Mapping[str, Any]) -> nn.Module:
        """The untrained network from its constructor arguments."""

    @abstractmethod
    def parameter_count(self, arguments: Mapping[str, Any]) -> int:
        """Trainable parameters, analytically (tested against the built network)."""

    @abstractmethod
    def load_data(self, experiment: ExperimentConfig, path: Path,
                  splits: Sequence[str] | None = None) -> Any:  # fmt: skip
        """The experiment's dataset file in memory, as :meth:`objective` takes it (its size
        is its ``nbytes`` where it has one, else :func:`data_bytes` finds its arrays)."""

    @abstractmethod
    def objective(self, data: Any, trial: TrialConfig, experiment: ExperimentConfig) -> Objective:
        """How a trial learns from ``data``."""

    @abstractmethod
    def report(self, item: Any, folder: Path) -> list[Path]:
        """The family's figures of a finished retraining (``ionops.hpo.report.Retrained``)."""


class Search(ABC):
    """The part of a family that the search uses: its spaces and the points it starts from."""

    space: ClassVar[type[SpaceSection]]

    @abstractmethod
    def default_spaces(self) -> dict[str, dict[str, Any]]:
        """Raw defaults of ``unconstrained`` and ``constrained`` for files that omit them."""

    @abstractmethod
    def hyperopt_space(self, experiment: ExperimentConfig) -> dict[str, Any]:
        """The experiment's chosen space (``search.space``) in hyperopt's terms."""

    @abstractmethod
    def default_point(self, experiment: ExperimentConfig) -> dict[str, Any]:
        """The experiment's own ``[model]`` and ``[training]`` as a point (evaluated first)."""

    def candidates(self, experiment: ExperimentConfig) -> list[dict[str, Any]]:
        """The fixed candidates of ``search.strategy = "candidates"``, in order."""
        raise UserError(
            f"search.strategy = 'candidates': the family {experiment.family!r} has no fixed "
            "candidate set; use search.strategy = 'tpe'"
        )

    def check_data(self, experiment: ExperimentConfig, data: Any) -> None:  # noqa: B027
        """Refuse a search space that no model on this dataset can hold (nothing by default)."""


class Serving(ABC):
    """Using a trained network (``ionops predict``, ``Surrogate``): ``described`` is its
    objective's :meth:`Objective.describe` with the attributes decoded. A family gives it from
    :meth:`SurrogateFamily.serving`, in a module of its own (it may import torch)."""

    @abstractmethod
    def input_names(self, described: Mapping[str, Any]) -> list[str]:
        """The columns a prediction takes, in order."""

    def fixed_inputs(self, described: Mapping[str, Any]) -> dict[str, float]:
        """Inputs the surrogate was trained with at one value (name -> value): accepted
        beside :meth:`input_names` only at that value."""
        return {}

    @abstractmethod
    def predict(self, model: nn.Module, described: Mapping[str, Any],
                inputs: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """Trajectories (n, n_states, n_t) in physical units of ``inputs`` (n, n_inputs),
        on the device and in the precision of ``model``."""

    def batch_hint(self, arguments: Mapping[str, Any], described: Mapping[str, Any],
                   device: torch.device) -> int:  # fmt: skip
        """Samples per network call that predict fastest on ``device`` by default."""
        return 256

    @abstractmethod
    def solve(self, described: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
        """The solver's trajectories of ``inputs``, as :meth:`predict` shapes them."""

    @abstractmethod
    def errors(self, predicted: torch.Tensor, truth: torch.Tensor,
               described: Mapping[str, Any]) -> dict[str, torch.Tensor]:  # fmt: skip
        """Per-sample errors of predicted trajectories, named as :meth:`Objective.evaluate`
        names them, so a prediction of a split gives the split's own errors back."""


class SurrogateFamily(Training, Search):
    """One surrogate family: its :class:`Training` and :class:`Search` parts, and its
    :class:`Serving` from :meth:`serving`; see the module docstring for what each is for."""

    #: an experiment of the family (a shipped name or a TOML path) and the ``--set`` values that
    #: make it seconds long: the conformance test (``tests/test_conformance.py``) runs every
    #: command on it for every registered family
    smoke_test: ClassVar[tuple[str, tuple[str, ...]]]

    def serving(self) -> Serving:
        """How a trained network of the family is used; a family that cannot be served yet
        keeps this default."""
        raise UserError(f"the {self.name} family cannot be used by `ionops predict` yet: it "
                        "gives no serving() (README: Adding a family)")  # fmt: skip
