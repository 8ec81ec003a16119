"""The experiment schema: one typed file per experiment, overridable from the command line.

An experiment file (TOML) has one table per concern::

    name = "fhn"
    [data]      # what dataset to generate or read (kind: operator, point, transition, ...)
    [model]     # the surrogate: family = "fno" | "mlp", and that family's keys
    [training]  # optimiser, schedule, epochs
    [search]    # the hyperparameter search and its spaces

``[model]`` is a discriminated union over the surrogate families
(:mod:`ionops.models.registry`): ``family`` picks the section's schema, and an
unknown family or key is an error that lists the valid ones. The search
spaces ``[search.unconstrained]`` and ``[search.constrained]`` follow the
model's family (their defaults come from it); ``[data]`` is a discriminated
union over the dataset kinds (:mod:`ionops.datasets.kinds`; ``operator``
when not given). Families and kinds are plug-ins found by entry point.

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

from ionops.config_io import Section, describe_error, dump_toml, read_source, set_override
from ionops.datasets.catalog import IonicModelName
from ionops.datasets.kinds import all_kinds
from ionops.datasets.operator import OperatorDataConfig, SubsetConfig
from ionops.datasets.problem_kinds import ProblemDataConfig
from ionops.errors import ConfigError, IonopsError
from ionops.models.family import ModelSection, SpaceSection
from ionops.models.registry import all_families, get_family, surrogate_families

__all__ = [
    "ExperimentConfig",
    "IonicModelName",
    "OperatorDataConfig",
    "ProblemDataConfig",
    "SubsetConfig",
    "dump_toml",
    "load_experiment",
    "shipped_experiments",
    "validate_experiment",
]


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
    search evaluates at every epoch it reports besides). ``gradient_clip``: the
    largest global norm of the gradients at a step (unset: not clipped).
    """

    optimizer: Literal["adamw", "adam"] = "adamw"
    scheduler: Literal["step", "plateau", "cosine", "none"] = "step"
    learning_rate: float = Field(gt=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    gamma: float = Field(gt=0, le=1)
    gradient_clip: float | None = Field(default=None, gt=0)
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
        Union[tuple(Annotated[k.section, Tag(k.name)] for k in all_kinds())],  # noqa: UP007
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
