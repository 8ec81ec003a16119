"""The experiment schema: one typed file per ionic model, overridable from the command line.

An experiment file (TOML) has one table per concern::

    name = "fhn"
    [data]      # what dataset to generate or read
    [fno]       # the surrogate's architecture
    [training]  # optimiser, schedule, epochs

Shipped files live in ``configs/`` (importable as ``ionops.configs``) and are
selected by name (``fhn``, ``hh``, ``ord``); any other argument is a path.
Overrides are ``section.key=value`` strings whose value is read as a TOML
value (``training.epochs=10``, ``fno.activation=gelu``). Unknown keys, bad
types and out-of-range values are errors that name the key, the value and
what is allowed.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ionops.errors import ConfigError

Activation = Literal["tanh", "relu", "gelu", "leaky_relu"]
LayerKind = Literal["classic", "mlp"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SubsetConfig(_Section):
    """A stimulus family: i and T_stim ranges [low, high] and the sample count of each split."""

    i: tuple[float, float]
    t_stim: tuple[float, float]
    train: int = Field(ge=0)
    validation: int = Field(default=0, ge=0)
    test: int = Field(default=0, ge=0)


class DataConfig(_Section):
    """Which ionic model to simulate and on what grid.

    ``t_end_ms`` is the horizon T in ms; the grid is ``n_t`` uniform points on
    [0, T]. ``fraction`` scales every subset count of the paper's tables (1.0:
    3000 train / 375 validation / 375 test). ``parameters`` override the ionic
    model's parameters by name, ``initial_state`` picks one of its initial
    states, and ``rtol``/``atol`` its solver tolerances (default: the model's).
    ``subsets`` replaces the paper's stimulus protocol with your own table
    (``[data.subsets.NAME]`` with ``i``, ``t_stim``, ``train``, ``validation``,
    ``test``); ``fraction`` scales it too.
    """

    ionic_model: Literal["fhn", "hh", "ord"]
    n_t: int = Field(ge=8, le=1_000_000)
    t_end_ms: float = Field(gt=0)
    fraction: float = Field(default=1.0, gt=0, le=1)
    seed: int = Field(default=0, ge=0)
    parameters: dict[str, float] = Field(default_factory=dict)
    initial_state: str | None = None
    rtol: float | None = Field(default=None, gt=0, lt=1)
    atol: float | None = Field(default=None, gt=0)
    subsets: dict[str, SubsetConfig] | None = None


class FNOConfig(_Section):
    """Architecture of the Fourier neural operator (see ``ionops.models``)."""

    d_v: int = Field(ge=1, le=4096)
    n_layers: int = Field(ge=1, le=64)
    k_max: int = Field(ge=1)
    activation: Activation
    n_pad: int = Field(ge=0)
    layer: LayerKind


Normalisation = Literal["per_time", "per_variable", "none"]


class TrainingConfig(_Section):
    """AdamW with a StepLR schedule (factor ``gamma`` every ``step_size`` epochs).

    ``normalisation`` of inputs and targets, with training-split statistics:
    ``per_time`` (the paper's z-score at every time point), ``per_variable``,
    or ``none``.
    """

    learning_rate: float = Field(gt=0, le=1)
    weight_decay: float = Field(ge=0, le=1)
    gamma: float = Field(gt=0, le=1)
    step_size: int = Field(default=10, ge=1)
    batch_size: int = Field(default=32, ge=1)
    epochs: int = Field(default=1000, ge=1)
    seed: int = Field(default=0, ge=0)
    normalisation: Normalisation = "per_time"


class SpaceConfig(_Section):
    """One search space (the paper's Table 2 hyperparameters).

    ``learning_rate``, ``weight_decay`` and ``gamma`` are quniform (low, high,
    step); ``n_pad`` is an integer range (low, high); the others are choices.
    ``k_max`` is searched in the unconstrained space only: the constrained
    space derives it from the parameter cap, with the largest entry as its cap.
    """

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

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> SpaceConfig:
        for name in ("learning_rate", "weight_decay", "gamma"):
            low, high, step = getattr(self, name)
            if not (0 < low <= high and step > 0):
                raise ValueError(f"{name} = {[low, high, step]}: need 0 < low <= high, step > 0")
        if not 0 <= self.n_pad[0] <= self.n_pad[1]:
            raise ValueError(f"n_pad = {list(self.n_pad)}: need 0 <= low <= high")
        return self


class SearchConfig(_Section):
    """The hyperparameter search: TPE (HyperOptSearch) with ASHA, the paper's settings.

    ``space`` picks ``unconstrained`` or ``constrained``. The constrained
    space caps parameters by ``parameter_cap``: ``"budget"`` is the paper's
    rule (spectral weights limited to ``spectral_budget``, k_max derived per
    sampled d_v and L); an integer caps the whole model's parameter count.

    Resources: each trial holds ``cpus_per_trial`` cores and
    ``gpus_per_trial`` GPUs (``"auto"``: half a GPU, as the paper did, where
    the cluster has GPUs, else none). ``max_concurrent`` trials run at once
    (``"auto"``: as many as the resources hold), so TPE sees results before
    it proposes more. A trial checkpoints every ``checkpoint_every`` epochs and
    a trial whose worker dies is retried ``max_failures`` times from there.
    """

    space: Literal["unconstrained", "constrained"] = "unconstrained"
    num_samples: int = Field(default=200, ge=1)
    seed: int = Field(default=0, ge=0)
    n_initial_points: int = Field(default=20, ge=1)
    grace_period: int = Field(default=250, ge=1)
    reduction_factor: int = Field(default=4, ge=2)
    parameter_cap: Literal["budget"] | Annotated[int, Field(ge=1)] = "budget"
    spectral_budget: int = Field(default=524_288, ge=1)
    cpus_per_trial: float = Field(default=1.0, gt=0)
    gpus_per_trial: Literal["auto"] | Annotated[float, Field(ge=0)] = "auto"
    max_concurrent: Literal["auto"] | Annotated[int, Field(ge=1)] = "auto"
    checkpoint_every: int = Field(default=10, ge=1)
    max_failures: int = Field(default=3, ge=0)
    unconstrained: SpaceConfig = SpaceConfig(d_v=[8, 16, 32, 64, 96, 128, 160, 192, 224, 256])
    constrained: SpaceConfig = SpaceConfig(d_v=[4, 8, 16, 32, 48, 64, 96, 128])


class ExperimentConfig(_Section):
    """A whole experiment: data, architecture, training and search for one ionic model."""

    name: str = Field(min_length=1)
    data: DataConfig
    fno: FNOConfig
    training: TrainingConfig
    search: SearchConfig = SearchConfig()


def shipped_experiments() -> list[str]:
    """Names of the experiment files that ship with ionops (``configs/*.toml``)."""
    root = resources.files("ionops.configs")
    return sorted(p.name.removesuffix(".toml") for p in root.iterdir() if p.name.endswith(".toml"))


def load_experiment(source: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read an experiment (shipped name or path), apply ``section.key=value`` overrides."""
    raw, origin = _read_source(source)
    for item in overrides:
        _apply_override(raw, item)
    return validate_experiment(raw, origin)


def validate_experiment(raw: Mapping[str, Any], origin: str = "<config>") -> ExperimentConfig:
    """Validate a plain mapping against the schema; errors list every problem at once."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(err)}" for err in exc.errors())
        raise ConfigError(f"{origin}: invalid experiment\n{problems}") from None


def dump_toml(config: BaseModel) -> str:
    """Render a config as TOML, the same format the loader reads (unset optional keys omitted)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in config.model_dump(exclude_none=True).items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


def _read_source(source: str | Path) -> tuple[dict[str, Any], str]:
    text_source = str(source)
    shipped = shipped_experiments()
    if text_source in shipped:
        text = resources.files("ionops.configs").joinpath(f"{text_source}.toml").read_text()
        origin = f"shipped experiment '{text_source}'"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(
                f"experiment '{text_source}' is neither a shipped name ({', '.join(shipped)}) "
                "nor an existing file"
            )
        text, origin = path.read_text(), str(path)
    try:
        return tomllib.loads(text), origin
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"override '{item}' is not of the form section.key=value (e.g. training.epochs=10)"
        )
    *sections, leaf = key.split(".")
    table = raw
    for depth, section in enumerate(sections):
        child = table.setdefault(section, {})
        if not isinstance(child, dict):
            where = ".".join(sections[: depth + 1])
            raise ConfigError(f"override '{item}': '{where}' is a value, not a table")
        table = child
    table[leaf] = _parse_value(text.strip())


def _parse_value(text: str) -> Any:
    """A TOML value if the text is one (10, 1e-3, true, [1, 2]), else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _describe(err: Any) -> str:
    loc = ".".join(str(part) for part in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key '{loc}'; {_valid_keys(err['loc'][:-1])}"
    if err["type"] == "missing":
        return f"'{loc}' is required; {_valid_keys(err['loc'][:-1])}"
    return f"{loc} = {err['input']!r}: {err['msg']}"


def _valid_keys(parent: tuple[Any, ...]) -> str:
    model: type[BaseModel] = ExperimentConfig
    for part in parent:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    where = f"[{'.'.join(map(str, parent))}]" if parent else "the top level"
    keys = []
    for name, field in model.model_fields.items():
        default = "required" if field.is_required() else f"default {field.default!r}"
        keys.append(f"{name} ({default})")
    return f"valid keys at {where}: {', '.join(keys)}"


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))
