"""Stimulus protocols: the applied current I_app(t), piecewise constant in time.

Every protocol is a list of pieces (start, end, current) that covers the
horizon, one piece between two discontinuities, so the solver restarts at
every discontinuity (its step never straddles one) and each piece is solved
with a constant current. At a discontinuity, I_app takes the value of the
piece that ends there (continuous from the left), as the FNO paper's pulse
holds i for t <= T_stim. Times in ms, currents in the model's current unit
(positive depolarises).

- :class:`Pulse`: ``amplitude`` for t <= ``duration``, then 0 (the operator
  datasets' protocol, i and T_stim);
- :class:`Constant`: ``amplitude`` from t = 0;
- :class:`Step`: 0 until ``t0``, then ``amplitude``;
- :class:`Pacing`: pulses of ``amplitude`` for ``duration`` every
  ``cycle_length``, the first at ``offset``.

``[data]`` sections take one as a ``stimulus`` table (:data:`StimulusSection`,
``protocol = "pulse" | "constant" | "step" | "pacing"`` and its keys).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from ionops.config_io import Section
from ionops.errors import UserError

Piece = tuple[float, float, float]


class Stimulus(ABC):
    """A protocol of I_app(t); see the module docstring."""

    protocol: str

    @abstractmethod
    def pieces(self, t_end: float) -> list[Piece]:
        """(start, end, current) pieces covering [0, ``t_end``], split at every discontinuity."""

    def on_grid(self, time: NDArray[np.float64]) -> NDArray[np.float64]:
        """I_app at each time of ``time`` (ms): the value of the piece that holds t, the
        earlier one at a discontinuity."""
        time = np.asarray(time, dtype=np.float64)
        t_end = float(time.max()) if time.size else 0.0
        pieces = self.pieces(max(t_end, 0.0))
        ends = np.array([end for _, end, _ in pieces])
        currents = np.array([current for _, _, current in pieces])
        return currents[np.minimum(np.searchsorted(ends, time, side="left"), len(pieces) - 1)]

    def step_means(self, time: NDArray[np.float64], dt: float) -> NDArray[np.float64]:
        """The mean I_app over [t, t + ``dt``) from each time of ``time`` (ms): the current a
        step map from t to t + dt sees (a pulse between samples is not lost or moved)."""
        time = np.asarray(time, dtype=np.float64)
        if not time.size:
            return np.zeros(0)
        pieces = self.pieces(max(float(time.max()) + dt, 0.0))
        starts = np.array([start for start, _, _ in pieces])
        currents = np.array([current for _, _, current in pieces])
        ends = np.array([end for _, end, _ in pieces])
        charge = np.concatenate(([0.0], np.cumsum(currents * (ends - starts))))

        def charge_at(t: NDArray[np.float64]) -> NDArray[np.float64]:
            k = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(pieces) - 1)
            return charge[k] + currents[k] * (np.clip(t, starts[k], ends[k]) - starts[k])

        return (charge_at(time + dt) - charge_at(time)) / dt

    def record(self) -> dict[str, Any]:
        """The protocol and its settings, as a dataset records them."""
        return {"protocol": self.protocol, **asdict(self)}  # type: ignore[call-overload]

    def describe(self) -> str:
        values = ", ".join(f"{k} = {v:g}" for k, v in asdict(self).items())  # type: ignore[call-overload]
        return f"{self.protocol} ({values})"


def _finite(protocol: str, **values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise UserError(f"stimulus {protocol}: {name} = {value}; give a finite number")


def _merged(pieces: list[Piece]) -> list[Piece]:
    """Drop empty pieces and join neighbours of one current (no discontinuity between)."""
    out: list[Piece] = []
    for start, end, current in pieces:
        if end <= start:
            continue
        if out and out[-1][2] == current:
            out[-1] = (out[-1][0], end, current)
        else:
            out.append((start, end, current))
    return out


@dataclass(frozen=True)
class Pulse(Stimulus):
    """``amplitude`` for t <= ``duration`` (ms), then 0 (``duration`` may be infinite)."""

    amplitude: float
    duration: float
    protocol = "pulse"

    def __post_init__(self) -> None:
        _finite(self.protocol, amplitude=self.amplitude)
        if math.isnan(self.duration):
            raise UserError("stimulus pulse: duration = nan; give a number of ms (or inf)")

    def pieces(self, t_end: float) -> list[Piece]:
        # the operator datasets' pieces exactly (their files stay byte for byte the same)
        if self.duration <= 0.0 or self.amplitude == 0.0:
            return [(0.0, t_end, 0.0)]
        if self.duration >= t_end:
            return [(0.0, t_end, self.amplitude)]
        return [(0.0, self.duration, self.amplitude), (self.duration, t_end, 0.0)]


@dataclass(frozen=True)
class Constant(Stimulus):
    """``amplitude`` from t = 0."""

    amplitude: float
    protocol = "constant"

    def __post_init__(self) -> None:
        _finite(self.protocol, amplitude=self.amplitude)

    def pieces(self, t_end: float) -> list[Piece]:
        return [(0.0, t_end, self.amplitude)]


@dataclass(frozen=True)
class Step(Stimulus):
    """0 until ``t0`` (ms), ``amplitude`` after."""

    amplitude: float
    t0: float
    protocol = "step"

    def __post_init__(self) -> None:
        _finite(self.protocol, amplitude=self.amplitude, t0=self.t0)
        if self.t0 < 0:
            raise UserError(f"stimulus step: t0 = {self.t0:g} ms; give t0 >= 0")

    def pieces(self, t_end: float) -> list[Piece]:
        return _merged([(0.0, min(self.t0, t_end), 0.0), (self.t0, t_end, self.amplitude)]) or [
            (0.0, t_end, 0.0)
        ]


@dataclass(frozen=True)
class Pacing(Stimulus):
    """Pulses of ``amplitude`` for ``duration`` ms every ``cycle_length`` ms from ``offset``."""

    amplitude: float
    duration: float
    offset: float
    cycle_length: float
    protocol = "pacing"

    def __post_init__(self) -> None:
        _finite(self.protocol, amplitude=self.amplitude, duration=self.duration,
                offset=self.offset, cycle_length=self.cycle_length)  # fmt: skip
        if not 0 < self.duration < self.cycle_length:
            raise UserError(f"stimulus pacing: duration = {self.duration:g} ms with "
                            f"cycle_length = {self.cycle_length:g} ms; give 0 < duration < "
                            "cycle_length")  # fmt: skip
        if self.offset < 0:
            raise UserError(f"stimulus pacing: offset = {self.offset:g} ms; give offset >= 0")

    def pieces(self, t_end: float) -> list[Piece]:
        pieces: list[Piece] = [(0.0, min(self.offset, t_end), 0.0)]
        onset = self.offset
        while onset < t_end:
            off = onset + self.duration
            pieces.append((onset, min(off, t_end), self.amplitude))
            pieces.append((off, min(onset + self.cycle_length, t_end), 0.0))
            onset += self.cycle_length
        return _merged(pieces) or [(0.0, t_end, 0.0)]

    def onsets(self, t_end: float) -> NDArray[np.float64]:
        """The start of every pulse before ``t_end`` (ms)."""
        count = max(0, math.ceil((t_end - self.offset) / self.cycle_length))
        return self.offset + self.cycle_length * np.arange(count, dtype=np.float64)


class PulseSection(Section):
    """``protocol = "pulse"``: ``amplitude`` for t <= ``duration`` ms."""

    protocol: Literal["pulse"]
    amplitude: float
    duration: float = Field(ge=0)


class ConstantSection(Section):
    """``protocol = "constant"``: ``amplitude`` from t = 0."""

    protocol: Literal["constant"]
    amplitude: float


class StepSection(Section):
    """``protocol = "step"``: 0 until ``t0`` ms, then ``amplitude``."""

    protocol: Literal["step"]
    amplitude: float
    t0: float = Field(ge=0)


class PacingSection(Section):
    """``protocol = "pacing"``: ``amplitude`` for ``duration`` ms every ``cycle_length`` ms,
    the first pulse at ``offset`` ms."""

    protocol: Literal["pacing"]
    amplitude: float
    duration: float = Field(gt=0)
    offset: float = Field(default=0.0, ge=0)
    cycle_length: float = Field(gt=0)


_PROTOCOLS: dict[str, type[Stimulus]] = {
    "pulse": Pulse, "constant": Constant, "step": Step, "pacing": Pacing,
}  # fmt: skip

if TYPE_CHECKING:
    StimulusSection = PulseSection | ConstantSection | StepSection | PacingSection
else:
    StimulusSection = Annotated[
        Union[PulseSection, ConstantSection, StepSection, PacingSection],  # noqa: UP007
        Field(discriminator="protocol"),
    ]


def from_section(section: Any) -> Stimulus:
    """The protocol a ``stimulus`` table (or its plain mapping, or a record) describes."""
    values = dict(section if isinstance(section, dict) else section.model_dump())
    protocol = values.pop("protocol", None)
    if protocol not in _PROTOCOLS:
        raise UserError(f"stimulus protocol = {protocol!r}; choose one of "
                        f"{', '.join(_PROTOCOLS)}")  # fmt: skip
    try:
        stimulus: Stimulus = _PROTOCOLS[protocol](**values)
    except TypeError:
        wanted = [k for k in _PROTOCOLS[protocol].__dataclass_fields__]  # type: ignore[attr-defined]
        raise UserError(f"stimulus {protocol}: keys {sorted(values)}; it takes "
                        f"{', '.join(wanted)}") from None  # fmt: skip
    return stimulus
