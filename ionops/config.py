"""The experiment schema: one typed file per experiment, overridable from the command line.

An experiment file (TOML) has one table per concern::

    name = "fhn"
    [data]      # what dataset to generate or read (kind: operator, point, transition, trajectory)
    [model]     # the surrogate: family = "fno" | "mlp", and that family's keys
    [training]  # optimiser, schedule, epochs
    [search]    # the hyperparameter search and its spaces

``[model]`` is a discriminated union over the surrogate families
(:mod:`ionops.models.registry`): ``family`` picks the section's schema, and an
unknown family or key is an error that lists the valid ones. The search
spaces ``[search.unconstrained]`` and ``[search.constrained]`` follow the
model's family (their defaults come from it); ``[data]`` is one of the
dataset kinds (``operator`` when not given).

Shipped files live in ``configs/`` (importable as ``ionops.configs``) and are
selected by name (``fhn``, ``hh``, ``ord``, ``fhn-mlp-b``...); any other
argument is a path. Overrides are ``section.key=value`` strings whose value is
read as a TOML value (``training.epochs=10``, ``model.activation=gelu``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, model_validator

from ionops.config_io import describe_error, dump_toml, read_source, set_override
from ionops.datasets.catalog import IONIC_MODELS, problem_error
from ionops.errors import ConfigError, IonopsError
from ionops.models.family import ModelSection, Section, SpaceSection
from ionops.models.registry import all_families, get_family, surrogate_families

__all__ = [
    "ExperimentConfig",
    "ProblemDataConfig",
    "dump_toml",
    "load_experiment",
    "shipped_experiments",
    "validate_experiment",
]

# the registered ionic models, as listed without compiling them (a test keeps the two equal)
if TYPE_CHECKING:
    IonicModelName = str
else:
    IonicModelName = Literal[tuple(IONIC_MODELS)]


class SubsetConfig(Section):
    """A stimulus family: i and T_stim ranges [low, high] and the sample count of each split."""

    i: tuple[float, float]
    t_stim: tuple[float, float]
    train: int = Field(ge=0)
    validation: int = Field(default=0, ge=0)
    test: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> SubsetConfig:
        for name in ("i", "t_stim"):
            low, high = getattr(self, name)
            if not low <= high:
                raise ValueError(f"{name} = {[low, high]} is reversed: give [low, high]")
        return self


class OperatorDataConfig(Section):
    """Stimulus protocols -> whole trajectories on a grid (the FNO paper's datasets).

    ``t_end_ms`` is the horizon T in ms; the grid is ``n_t`` uniform points on
    [0, T]. ``fraction`` scales every subset count of the paper's tables (1.0:
    3000 train / 375 validation / 375 test). ``parameters`` override the ionic
    model's parameters by name, ``initial_state`` picks one of its initial
    states, and ``rtol``/``atol`` its solver tolerances (default: the model's).
    ``subsets`` replaces the paper's stimulus protocol with your own table
    (``[data.subsets.NAME]`` with ``i``, ``t_stim``, ``train``, ``validation``,
    ``test``); ``fraction`` scales it too.
    """

    kind: Literal["operator"] = "operator"
    ionic_model: IonicModelName
    n_t: int = Field(ge=8, le=1_000_000)
    t_end_ms: float = Field(gt=0)
    fraction: float = Field(default=1.0, gt=0, le=1)
    seed: int = Field(default=0, ge=0)
    parameters: dict[str, float] = Field(default_factory=dict)
    initial_state: str | None = None
    rtol: float | None = Field(default=None, gt=0, lt=1)
    atol: float | None = Field(default=None, gt=0)
    subsets: dict[str, SubsetConfig] | None = None

    @model_validator(mode="after")
    def _subsets_are_usable(self) -> OperatorDataConfig:
        if self.subsets is not None:
            if not self.subsets:
                raise ValueError("subsets is empty: give at least one subset, or omit it")
            if sum(s.train for s in self.subsets.values()) == 0:
                raise ValueError("subsets has no training samples: give some subset train > 0")
        return self


class ProblemDataConfig(Section):
    """An initial-value problem over a box of inputs: point, transition and trajectory datasets.

    Inputs are the initial values of the states (``u0`` for state ``u``) and
    the stimulus amplitude (the ionic model's stimulus name, constant in
    time), each either varied over ``[low, high]`` (``vary``, drawn by Latin
    hypercube) or ``fixed``; every one must be in exactly one of the two.

    - ``point``: training samples (t, varied inputs) -> states at t, with t
      drawn with the varied inputs over [0, ``t_end_ms``] and put on the data
      solver's output grid (every ``save_dt_ms``);
    - ``transition``: training samples (states at t, varied stimulus) ->
      states at t + ``transition_ms``, from trajectories of the same box;
    - ``trajectory``: training samples are whole trajectories, like the
      validation ones (varied inputs -> states every ``eval_dt_ms``).

    Validation and test samples are whole trajectories from varied inputs,
    every ``eval_dt_ms`` over [0, ``t_end_ms``]. The data solver is explicit
    Euler with step ``solver_dt_ms`` saved every ``save_dt_ms`` (the paper's
    0.01 and 0.1 ms), or the project's BDF (``solver = "bdf"``). ``train``,
    ``validation``, ``test`` count samples.
    """

    kind: Literal["point", "transition", "trajectory"]
    ionic_model: IonicModelName
    t_end_ms: float = Field(gt=0)
    vary: dict[str, tuple[float, float]] = Field(default_factory=dict)
    fixed: dict[str, float] = Field(default_factory=dict)
    train: int = Field(ge=1)
    validation: int = Field(ge=1)
    test: int = Field(default=0, ge=0)
    eval_dt_ms: float = Field(default=1.0, gt=0)
    transition_ms: float = Field(default=1.0, gt=0)
    solver: Literal["euler", "bdf"] = "euler"
    solver_dt_ms: float = Field(default=0.01, gt=0)
    save_dt_ms: float = Field(default=0.1, gt=0)
    seed: int = Field(default=0, ge=0)
    parameters: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _inputs_are_the_models(self) -> ProblemDataConfig:
        problem = problem_error(self.ionic_model, self.vary, self.fixed)
        if problem is not None:
            raise ValueError(problem)
        for name in ("eval_dt_ms", "transition_ms", "solver_dt_ms", "save_dt_ms"):
            if getattr(self, name) > self.t_end_ms:
                raise ValueError(f"{name} = {getattr(self, name)} exceeds t_end_ms = "
                                 f"{self.t_end_ms}")  # fmt: skip
        return self


def _data_kind(value: Any) -> str:
    return str(value.get("kind", "operator") if isinstance(value, Mapping) else value.kind)


Normalisation = Literal["per_time", "per_variable", "none"]


class TrainingConfig(Section):
    """Optimiser, schedule and epochs, chosen by name.

    ``optimizer``: ``adamw`` (decoupled ``weight_decay``) or ``adam`` (L2
    ``weight_decay``). ``scheduler``: ``step`` (factor ``gamma`` every
    ``step_size`` epochs), ``plateau`` (factor ``gamma`` after ``patience``
    epochs without a lower training loss), ``cosine`` (from ``learning_rate``
    down to 0 over ``epochs``, a cosine) or ``none``. ``normalisation`` of
    inputs and targets with training-split statistics: ``per_time`` (the FNO
    paper's z-score at every time point), ``per_variable`` or ``none``; unset,
    the family's own choice. ``eval_every``: epochs between evaluations (a
    search evaluates at every epoch it reports besides).
    """

    optimizer: Literal["adamw", "adam"] = "adamw"
    scheduler: Literal["step", "plateau", "cosine", "none"] = "step"
    learning_rate: float = Field(gt=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    gamma: float = Field(gt=0, le=1)
    step_size: int = Field(default=10, ge=1)
    patience: int = Field(default=10, ge=1)
    batch_size: int = Field(default=32, ge=1)
    epochs: int = Field(default=1000, ge=1)
    eval_every: int = Field(default=1, ge=1)
    seed: int = Field(default=0, ge=0)
    normalisation: Normalisation | None = None


if TYPE_CHECKING:
    DataUnion = OperatorDataConfig | ProblemDataConfig
    ModelUnion = ModelSection
    SpaceUnion = SpaceSection
else:
    from pydantic import Discriminator, Tag

    DataUnion = Annotated[
        Annotated[OperatorDataConfig, Tag("operator")]
        | Annotated[ProblemDataConfig, Tag("point")]
        | Annotated[ProblemDataConfig, Tag("transition")]
        | Annotated[ProblemDataConfig, Tag("trajectory")],
        Discriminator(_data_kind),
    ]
    ModelUnion = Annotated[
        Union[tuple(f.section for f in all_families())],  # noqa: UP007
        Field(discriminator="family"),
    ]
    SpaceUnion = Annotated[
        Union[tuple(f.space for f in all_families())],  # noqa: UP007
        Field(discriminator="family"),
    ]


class SearchConfig(Section):
    """The hyperparameter search: TPE (HyperOptSearch) with ASHA, or a fixed candidate set.

    ``space`` picks ``unconstrained`` or ``constrained``; the constrained space
    caps parameters by ``parameter_cap`` (an integer caps the whole model's
    count; ``"budget"`` is the FNO paper's rule on its spectral weights).
    ``strategy``: ``tpe`` samples ``num_samples`` points (the experiment's own
    first, ``n_initial_points`` random starts); ``candidates`` trains the
    family's fixed set of ``candidates`` points spread over its space.
    ``scheduler``: ``asha`` stops weak trials early, ``fifo`` trains all.

    Resources: each trial holds ``cpus_per_trial`` cores and
    ``gpus_per_trial`` GPUs (``"auto"``: half a GPU, as the FNO paper did, where
    the cluster has GPUs, else none). ``max_concurrent`` trials run at once
    (``"auto"``: as many as the resources hold), so TPE sees results before
    it proposes more. A trial checkpoints every ``checkpoint_every`` epochs and
    a trial whose worker dies is retried ``max_failures`` times from there.
    """

    space: Literal["unconstrained", "constrained"] = "unconstrained"
    strategy: Literal["tpe", "candidates"] = "tpe"
    num_samples: int = Field(default=200, ge=1)
    candidates: int = Field(default=800, ge=1)
    seed: int = Field(default=0, ge=0)
    n_initial_points: int = Field(default=20, ge=1)
    scheduler: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(default=250, ge=1)
    reduction_factor: int = Field(default=4, ge=2)
    parameter_cap: Literal["budget"] | Annotated[int, Field(ge=1)] = "budget"
    cpus_per_trial: float = Field(default=1.0, gt=0)
    gpus_per_trial: Literal["auto"] | Annotated[float, Field(ge=0)] = "auto"
    max_concurrent: Literal["auto"] | Annotated[int, Field(ge=1)] = "auto"
    checkpoint_every: int = Field(default=10, ge=1)
    max_failures: int = Field(default=3, ge=0)
    unconstrained: SpaceUnion
    constrained: SpaceUnion


class ExperimentConfig(Section):
    """A whole experiment: data, surrogate, training and search."""

    name: str = Field(min_length=1)
    data: DataUnion
    model: ModelUnion
    training: TrainingConfig
    search: SearchConfig

    @model_validator(mode="before")
    @classmethod
    def _defaults_follow_the_family(cls, raw: Any) -> Any:
        """Fill ``data.kind`` and the family's search spaces (the file's keys take precedence)."""
        if not isinstance(raw, Mapping):
            return raw
        raw = dict(raw)
        if isinstance(raw.get("data"), Mapping):
            raw["data"] = {"kind": "operator", **raw["data"]}
        model = raw.get("model")
        family = model.get("family") if isinstance(model, Mapping) else None
        if family not in surrogate_families():
            return raw  # the union reports the missing or unknown family
        search = dict(raw.get("search") or {})
        defaults = get_family(str(family)).default_spaces()
        for space in ("unconstrained", "constrained"):
            given = search.get(space, {})
            if isinstance(given, Mapping):
                search[space] = {"family": family, **defaults[space], **given}
        raw["search"] = search
        return raw

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def label(self) -> str:
        """The experiment's name with its family (``fhn-fno``), unless the name already says it.

        Searches, retrainings and MLflow experiments are named by it, so two
        families of one ionic model never share a name.
        """
        return self.name if self.family in self.name.split("-") else f"{self.name}-{self.family}"


def shipped_experiments() -> list[str]:
    """Names of the experiment files that ship with ionops (``configs/*.toml``)."""
    from importlib import resources

    root = resources.files("ionops.configs")
    return sorted(p.name.removesuffix(".toml") for p in root.iterdir() if p.name.endswith(".toml"))


def load_experiment(source: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read an experiment (shipped name or path), apply ``section.key=value`` overrides."""
    raw, origin = read_source(source, shipped_experiments())
    for item in overrides:
        set_override(raw, item)
    return validate_experiment(raw, origin)


def validate_experiment(raw: Mapping[str, Any], origin: str = "<config>") -> ExperimentConfig:
    """Validate a plain mapping against the schema; errors list every problem at once.

    Beyond each section's own schema, the family checks what spans sections
    (the dataset kind it trains on, a grid that holds its configuration).
    """
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        if any(err["loc"] == ("model",) for err in errors):  # no family: its spaces cannot be read
            errors = [err for err in errors if err["loc"][:1] != ("search",)
                      or err["type"] != "union_tag_not_found"]  # fmt: skip
        problems = "\n".join(f"  - {describe_error(err, ExperimentConfig, raw)}" for err in errors)
        raise ConfigError(f"{origin}: invalid experiment\n{problems}") from None
    try:
        get_family(config.family).check(config)
    except IonopsError as exc:
        raise ConfigError(f"{origin}: invalid experiment\n  - {exc}") from None
    return config
