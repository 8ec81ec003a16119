"""The ``window`` dataset kind: one trajectory, a short noisy window of it to learn from.

What the neural-ODE family (paper 002) trains on: one trajectory of an ionic model under
one stimulus protocol, solved by the project's BDF at tight tolerances and sampled every
``dt_ms``; its first ``window_ms`` (the paper's 14.68 ms, 1,468 points) is the training
signal, each channel perturbed by the paper's deterministic Ornstein-Uhlenbeck process
(eq. 9)::

    xi(t + dt) = xi(t) - theta xi(t) dt + sigma sqrt(dt) N(0, 1),   xi(0) = 0

seeded, one independent stream per state, times a per-state ``scale`` (1 by default: the
paper adds xi to every channel as it is). The splits:

- ``train``: the window, noisy (``states``), clean (``clean``) and the unscaled noise
  (``noise``, so a family can train at another noise scale without regenerating);
- ``validation``: the same model and protocol from another initial state (the default one
  shifted by ``validation_offset``) over [0, ``t_end_ms``]: the search's signal. It is a
  forecast of the kind the test asks for, and the test trajectory never feeds it (a
  held-out stretch of the test trajectory would be part of what the test measures);
- ``test``: the clean trajectory itself over [0, ``long_end_ms``]: the extrapolation
  window (``window_ms``, ``t_end_ms``] and the long horizon to ``long_end_ms``.

File layout (root attributes as every dataset's, plus the window's settings)::

    /<split>/time    (n_t,) float64, ms
    /<split>/states  (S, n_t) float32 (train: the noisy window)
    /train/clean     (S, n_w) float32;  /train/noise (S, n_w) float64, before ``scale``
    /<split>/initial_state  (S,) float64
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

__all__ = ["KIND", "NoiseSection", "WindowDataConfig"]


class NoiseSection(Section):
    """The Ornstein-Uhlenbeck perturbation of the training window (paper 002, eq. 9).

    ``theta`` (1/ms) and ``sigma`` as the paper's (5 and 0.5); ``scale`` multiplies each
    state's noise (a state not named: 1); ``seed`` draws the normals, one stream per state.
    """

    theta: float = Field(default=5.0, gt=0)
    sigma: float = Field(default=0.5, ge=0)
    scale: dict[str, float] = Field(default_factory=dict)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _scales_are_finite(self) -> NoiseSection:
        for state, value in self.scale.items():
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"noise.scale.{state} = {value}: must be a finite number >= 0")
        return self


class WindowDataConfig(Section):
    """One trajectory and a noisy window of it (see :mod:`ionops.datasets.window`).

    ``stimulus`` is the protocol (default: a constant 10 from t = 0, the paper's setting
    for the modern HH model); ``parameters`` override the model's, ``initial_state``
    names one of its initial states.
    """

    kind: Literal["window"]
    ionic_model: IonicModelName
    stimulus: StimulusSection = Field(
        default_factory=lambda: {"protocol": "constant", "amplitude": 10.0},
        validate_default=True,
    )
    t_end_ms: float = Field(default=100.0, gt=0)
    long_end_ms: float = Field(default=1000.0, gt=0)
    dt_ms: float = Field(default=0.01, gt=0)
    window_ms: float = Field(default=14.68, gt=0)
    noise: NoiseSection = Field(default_factory=NoiseSection)
    validation_offset: dict[str, float] = Field(default_factory=lambda: {"V": 10.0})
    parameters: dict[str, float] = Field(default_factory=dict)
    initial_state: str | None = None

    @model_validator(mode="after")
    def _horizons_are_ordered(self) -> WindowDataConfig:
        problem = settings_error(self.ionic_model, self.parameters, self.initial_state)
        if problem is not None:
            raise ValueError(problem)
        if self.window_ms > self.t_end_ms:
            raise ValueError(f"window_ms = {self.window_ms:g} is longer than the data: t_end_ms "
                             f"= {self.t_end_ms:g}; give window_ms <= t_end_ms")  # fmt: skip
        if self.window_ms < self.dt_ms:
            raise ValueError(f"window_ms = {self.window_ms:g} holds fewer than two samples of "
                             f"dt_ms = {self.dt_ms:g}; give window_ms >= dt_ms")  # fmt: skip
        if self.long_end_ms < self.t_end_ms:
            raise ValueError(f"long_end_ms = {self.long_end_ms:g} is before t_end_ms = "
                             f"{self.t_end_ms:g}; give long_end_ms >= t_end_ms")  # fmt: skip
        if not self.validation_offset or not any(self.validation_offset.values()):
            raise ValueError("validation_offset is empty or zero: the validation trajectory "
                             "would be the test's; shift some state's initial value")  # fmt: skip
        return self


class WindowKind(DatasetKind):
    name = "window"
    section = WindowDataConfig

    def spec(self, data: Any) -> Any:
        from ionops.datasets.window_data import WindowSpec

        return WindowSpec.from_config(data)

    def plan(self, spec: Any) -> Any:
        from ionops.datasets.window_data import make_window_plan

        return make_window_plan(spec)

    def split_inputs(self, group: Any, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """The split's initial state, one column a state (``V0``, ``n0``, ...), its stimulus
        amplitude and its horizon (``horizon_ms``)."""
        start = group["initial_state"][...]
        out = {f"{name}0": start[k : k + 1] for k, name in enumerate(attributes["state_names"])}
        amplitude = float(attributes["stimulus"].get("amplitude", 0.0))
        out[str(attributes["stimulus_name"])] = np.array([amplitude])
        out["horizon_ms"] = np.array([float(group["time"][-1])])
        return out

    def file_name(self, data: Any) -> str:
        from ionops.datasets.identity import settings_digest

        digest = settings_digest(data.model_dump(mode="json"))
        return (f"{data.ionic_model}_window_W{data.window_ms:g}_T{data.t_end_ms:g}"
                f"_s{data.noise.seed}_{digest}.h5")  # fmt: skip


KIND = WindowKind()
