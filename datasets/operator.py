"""The ``operator`` dataset kind: stimulus protocols -> whole trajectories (the FNO paper's).

Its ``[data]`` section (:class:`OperatorDataConfig`), its generation spec
(:class:`~ionops.datasets.generate.GenerationSpec`) and plan
(:func:`~ionops.datasets.generate.make_operator_plan`), and its default file
name. Light at import: the solver is imported when a plan is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from ionops.config_io import Section
from ionops.datasets.catalog import IonicModelName, settings_error
from ionops.datasets.kinds import DatasetKind

__all__ = ["KIND", "OperatorDataConfig", "SubsetConfig"]

# an operator dataset's settings beyond those its file name spells out
_CHOICES = ("parameters", "initial_state", "rtol", "atol", "subsets")


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
        problem = settings_error(self.ionic_model, self.parameters, self.initial_state)
        if problem is not None:
            raise ValueError(problem)
        if self.subsets is not None:
            if not self.subsets:
                raise ValueError("subsets is empty: give at least one subset, or omit it")
            if sum(s.train for s in self.subsets.values()) == 0:
                raise ValueError("subsets has no training samples: give some subset train > 0")
        return self


class OperatorKind(DatasetKind):
    name = "operator"
    section = OperatorDataConfig

    def spec(self, data: Any) -> Any:
        from ionops.datasets.generate import GenerationSpec

        return GenerationSpec.from_config(data)

    def plan(self, spec: Any) -> Any:
        from ionops.datasets.generate import make_operator_plan

        return make_operator_plan(spec)

    def split_inputs(self, group: Any, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Each sample's pulse: its amplitude and duration (t_stim)."""
        if "amplitude" not in group:
            return {}
        return {"amplitude": group["amplitude"][...], "t_stim": group["t_stim"][...]}

    def file_name(self, data: Any) -> str:
        """Fraction, grid, horizon and seed spelled out, and a digest of the parameters,
        initial state, tolerances and subsets where any is set (the paper's settings keep
        the short name of files written before the digest)."""
        from ionops.datasets.identity import settings_digest

        name = (f"{data.ionic_model}_f{data.fraction:g}_nt{data.n_t}_T{data.t_end_ms:g}"
                f"_s{data.seed}")  # fmt: skip
        chosen = {key: value for key, value in data.model_dump(mode="json").items()
                  if key in _CHOICES and value not in (None, {})}  # fmt: skip
        return name + (f"_{settings_digest(chosen)}.h5" if chosen else ".h5")


KIND = OperatorKind()
