"""The ``reference`` dataset kind: one initial-value problem and its reference solution.

What the splitting-PINN family (paper 003) needs: a PINN learns from the equations alone, so
the file holds the problem (model, parameters, stimulus, start, horizon) and the project's own
solution of it, to score against, never to train on. The solution is the BDF at rtol 1e-11
for an ordinary model (each reset located to the solver's tolerance for integrate-and-fire or
Izhikevich, and its spike times kept), and the L1 scheme at ``caputo_step_ms`` for a model
with a Caputo derivative. The splits:

- ``validation``: the same model and protocol from another start (the default one shifted by
  ``validation_offset``; by default the first state, the membrane potential, by 5 mV): the
  search's signal, a problem the test never feeds;
- ``test``: the problem itself over [0, ``t_end_ms``], sampled every ``dt_ms``.

File layout (root attributes as every dataset's, plus these settings)::

    /<split>/time (n_t,) float64 ms;  /<split>/states (S, n_t) float64 of float32 values
    (every dataset's states are stored at float32 precision)
    /<split>/initial_state (S,) float64;  /<split>/event_times (n_events,) float64 ms
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ionops.config_io import Section
from ionops.datasets.catalog import IonicModelName, settings_error
from ionops.datasets.kinds import DatasetKind
from ionops.datasets.stimuli import StimulusSection

__all__ = ["KIND", "ReferenceDataConfig"]


class ReferenceDataConfig(Section):
    """One problem and its reference solution (see :mod:`ionops.datasets.reference`).

    ``parameter_set`` names one of the model's published sets (Izhikevich's RS, IB, CH,
    FS), ``parameters`` override single values after it; ``caputo_step_ms`` is the L1
    scheme's step for a model with a Caputo derivative (unused otherwise).
    """

    kind: Literal["reference"]
    ionic_model: IonicModelName
    stimulus: StimulusSection = Field(
        default_factory=lambda: {"protocol": "constant", "amplitude": 10.0},
        validate_default=True,
    )
    t_end_ms: float = Field(default=50.0, gt=0)
    dt_ms: float = Field(default=0.01, gt=0)
    caputo_step_ms: float = Field(default=1e-3, gt=0)
    parameter_set: str | None = None
    parameters: dict[str, float] = Field(default_factory=dict)
    initial_state: str | None = None
    validation_offset: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _settings_exist(self) -> ReferenceDataConfig:
        from ionops.datasets.ionic import get_ionic_model
        from ionops.errors import UserError

        model = get_ionic_model(self.ionic_model)
        try:
            chosen = model.parameter_set(self.parameter_set)
        except UserError as exc:
            raise ValueError(f"data.parameter_set: {exc}") from None
        problem = settings_error(self.ionic_model, {**chosen, **self.parameters},
                                 self.initial_state)  # fmt: skip
        if problem is not None:
            raise ValueError(problem)
        if self.dt_ms * 2 > self.t_end_ms:
            raise ValueError(f"t_end_ms = {self.t_end_ms:g} holds fewer than two samples of "
                             f"dt_ms = {self.dt_ms:g}; give t_end_ms >= 2 dt_ms")  # fmt: skip
        unknown = sorted(set(self.validation_offset) - set(model.state_names))
        if unknown:
            raise ValueError(f"data.validation_offset names {unknown}, not states of "
                             f"{model.name} ({', '.join(model.state_names)})")  # fmt: skip
        if self.validation_offset and not any(self.validation_offset.values()):
            raise ValueError("validation_offset is zero: the validation problem would be the "
                             "test's; shift some state's initial value")  # fmt: skip
        return self

    def overrides(self) -> dict[str, float]:
        """The parameter values this section sets: its set's, then single ones."""
        from ionops.datasets.ionic import get_ionic_model

        return {**get_ionic_model(self.ionic_model).parameter_set(self.parameter_set),
                **self.parameters}  # fmt: skip


class ReferenceKind(DatasetKind):
    name = "reference"
    section = ReferenceDataConfig

    def spec(self, data: Any) -> Any:
        from ionops.datasets.reference_data import ReferenceSpec

        return ReferenceSpec.from_config(data)

    def plan(self, spec: Any) -> Any:
        from ionops.datasets.reference_data import make_reference_plan

        return make_reference_plan(spec)

    def split_inputs(self, group: Any, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """The split's horizon (``horizon_ms``): a trained splitting PINN answers its own
        problem, over at most its horizon."""
        return {"horizon_ms": np.array([float(group["time"][-1])])}

    def file_name(self, data: Any) -> str:
        from ionops.datasets.identity import settings_digest

        digest = settings_digest(data.model_dump(mode="json"))
        return f"{data.ionic_model}_reference_T{data.t_end_ms:g}_{digest}.h5"


KIND = ReferenceKind()
