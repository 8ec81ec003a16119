"""The ``point``, ``transition`` and ``trajectory`` dataset kinds: an initial-value problem.

One ``[data]`` section serves the three (:class:`ProblemDataConfig`); the
samples are drawn and solved by :mod:`ionops.datasets.problems`, imported
when a plan is made so that reading an experiment stays light.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ionops.config_io import Section
from ionops.datasets.catalog import IonicModelName, problem_error, settings_error
from ionops.datasets.kinds import DatasetKind

__all__ = ["POINT", "TRAJECTORY", "TRANSITION", "ProblemDataConfig"]


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
        problem = problem_error(self.ionic_model, self.vary, self.fixed) or settings_error(
            self.ionic_model, self.parameters
        )
        if problem is not None:
            raise ValueError(problem)
        for name in ("eval_dt_ms", "transition_ms", "solver_dt_ms", "save_dt_ms"):
            if getattr(self, name) > self.t_end_ms:
                raise ValueError(f"{name} = {getattr(self, name)} exceeds t_end_ms = "
                                 f"{self.t_end_ms}")  # fmt: skip
        return self


class ProblemKind(DatasetKind):
    section = ProblemDataConfig

    def __init__(self, name: str) -> None:
        self.name = name

    def spec(self, data: Any) -> Any:
        from ionops.datasets.problems import ProblemSpec

        return ProblemSpec.from_config(data)

    def plan(self, spec: Any) -> Any:
        from ionops.datasets.problems import make_problem_plan

        return make_problem_plan(spec)

    def file_name(self, data: Any) -> str:
        """Counts, horizon and seed spelled out, and a digest of every setting."""
        from ionops.datasets.identity import settings_digest

        digest = settings_digest(data.model_dump(mode="json"))
        counts = f"n{data.train}-{data.validation}-{data.test}_T{data.t_end_ms:g}"
        return f"{data.ionic_model}_{data.kind}_{counts}_s{data.seed}_{digest}.h5"


POINT, TRANSITION, TRAJECTORY = (ProblemKind(n) for n in ("point", "transition", "trajectory"))
