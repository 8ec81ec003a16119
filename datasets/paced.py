"""The ``paced`` dataset kind: an ionic model paced at many cycle lengths, one segment each.

What the gating-RNN family (paper 004) trains on. Each segment paces the model from its
initial state at one cycle length for ``segment_ms`` (the pulse: ``stimulus_amplitude``
for ``stimulus_ms`` starting ``stimulus_offset_ms`` into each cycle; the paper's -52 pA/pF
is +52 in the project's sign convention), discards the first ``discard_ms`` (the approach
to the paced steady state) and keeps the rest sampled every ``dt_ms``. The cycle lengths
of the grid ``cycle_lengths`` (low, high, step: the paper's 300 to 800 ms in steps of 5,
101 segments) are split at random (``seed``) into ``validation`` segments and the rest for
training; the test segments are cycle lengths between the grid's points
(``test_cycle_lengths``). ``scale`` multiplies named parameters (a perturbed model: long QT
is ``{g_Kr = 0.5}``, short QT ``{g_CaL = 0.5}``, increased I_to ``{g_to = 3}``).

File layout (root attributes as every dataset's, plus these settings)::

    /<split>/cycle_length (n,) float64 ms
    /<split>/time (n_t,) float64 ms from the first kept sample
    /<split>/states (n, S, n_t) float32
    /<split>/stimulus (n, n_t) float32: the mean applied current over each sampling step
        [t, t + dt_ms) (the current a step map from one sample to the next sees)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ionops.config_io import Section
from ionops.datasets.catalog import IonicModelName
from ionops.datasets.kinds import DatasetKind

__all__ = ["KIND", "PacedDataConfig"]


class PacedDataConfig(Section):
    """Paced segments at many cycle lengths (see :mod:`ionops.datasets.paced`)."""

    kind: Literal["paced"]
    ionic_model: IonicModelName = "tt04"
    parameter_set: str | None = None
    parameters: dict[str, float] = Field(default_factory=dict)
    scale: dict[str, float] = Field(default_factory=dict)
    initial_state: str | None = None
    cycle_lengths: tuple[float, float, float] = (300.0, 800.0, 5.0)
    test_cycle_lengths: list[float] = Field(
        default_factory=lambda: [302.5 + 50.0 * k for k in range(10)]
    )
    validation: int = Field(default=25, ge=1)
    seed: int = Field(default=0, ge=0)
    segment_ms: float = Field(default=20000.0, gt=0)
    discard_ms: float = Field(default=10000.0, ge=0)
    dt_ms: float = Field(default=1.0, gt=0)
    stimulus_amplitude: float = 52.0
    stimulus_ms: float = Field(default=1.0, gt=0)
    stimulus_offset_ms: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _settings_fit(self) -> PacedDataConfig:
        from ionops.datasets.ionic import get_ionic_model
        from ionops.errors import UserError

        model = get_ionic_model(self.ionic_model)
        try:
            values = {**model.parameter_set(self.parameter_set), **self.parameters}
            unknown = sorted(set(self.scale) - set(model.parameters))
            if unknown:
                raise UserError(f"data.scale names {unknown}, not parameters of {model.name}; "
                                f"its parameters: {', '.join(model.parameters)}")  # fmt: skip
            model.parameter_vector(values)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        low, high, step = self.cycle_lengths
        if not (0 < low <= high and step > 0):
            raise ValueError(f"cycle_lengths = {list(self.cycle_lengths)}: need 0 < low <= "
                             "high and a positive step")  # fmt: skip
        shortest = min([low, *self.test_cycle_lengths])
        if shortest <= self.stimulus_ms or shortest < self.dt_ms:
            raise ValueError(f"a cycle length of {shortest:g} ms is not longer than the "
                             f"stimulus (stimulus_ms = {self.stimulus_ms:g}) and the sampling "
                             f"step (dt_ms = {self.dt_ms:g})")  # fmt: skip
        if self.discard_ms >= self.segment_ms:
            raise ValueError(f"discard_ms = {self.discard_ms:g} leaves nothing of segment_ms "
                             f"= {self.segment_ms:g}")  # fmt: skip
        return self


class PacedKind(DatasetKind):
    name = "paced"
    section = PacedDataConfig

    def spec(self, data: Any) -> Any:
        from ionops.datasets.paced_data import PacedSpec

        return PacedSpec.from_config(data)

    def plan(self, spec: Any) -> Any:
        from ionops.datasets.paced_data import make_paced_plan

        return make_paced_plan(spec)

    def split_inputs(self, group: Any, attributes: Any) -> dict[str, Any]:
        """Each segment's cycle length (``cycle_length_ms``) and the whole beats it holds
        (``beats``)."""
        import numpy as np

        cycles = group["cycle_length"][...]
        kept = float(attributes["segment_ms"]) - float(attributes["discard_ms"])
        return {"cycle_length_ms": cycles, "beats": np.floor(kept / cycles + 1e-9)}

    def file_name(self, data: Any) -> str:
        from ionops.datasets.identity import settings_digest

        digest = settings_digest(data.model_dump(mode="json"))
        return f"{data.ionic_model}_paced_s{data.seed}_{digest}.h5"


KIND = PacedKind()
