"""Stimulus protocols: their pieces by definition, their values on a grid, and solves that
follow the closed-form response of a passive membrane through every discontinuity."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from numba import njit
from pydantic import TypeAdapter, ValidationError

from ionops.datasets.ionic.base import IonicModel
from ionops.datasets.ionic.signatures import RHS_SIGNATURE
from ionops.datasets.solver import SolverSettings, solve_stimulus, stimulus_segments
from ionops.datasets.stimuli import (
    Constant,
    Pacing,
    Pulse,
    Step,
    StimulusSection,
    from_section,
)
from ionops.errors import UserError

TAU = 2.0  # ms


@njit(RHS_SIGNATURE, cache=True)
def _passive(t, y, p, i_app, dydt):  # type: ignore[no-untyped-def]
    dydt[0] = (i_app - y[0]) / p[0]


PASSIVE = IonicModel(
    name="passive", title="passive membrane, tau dV/dt = I - V", state_names=("V",),
    state_units=("mV",), parameters={"tau": TAU}, kernels=SimpleNamespace(rhs=_passive),
    initial_states={"rest": lambda p: np.zeros(1)},
)  # fmt: skip


def _exact(stimulus, time):
    """V(t) of tau dV/dt = I - V from V(0) = 0, piece by piece in closed form."""
    out = np.empty_like(time)
    v = 0.0
    for start, end, current in stimulus.pieces(float(time[-1])):
        inside = (time >= start) & (time <= end)
        out[inside] = current + (v - current) * np.exp(-(time[inside] - start) / TAU)
        v = current + (v - current) * math.exp(-(end - start) / TAU)
    return out


def test_pieces_follow_the_definitions():
    assert Pulse(2.0, 10.0).pieces(100.0) == stimulus_segments(2.0, 10.0, 100.0)
    assert Pulse(2.0, 10.0).pieces(100.0) == [(0.0, 10.0, 2.0), (10.0, 100.0, 0.0)]
    assert Constant(10.0).pieces(100.0) == [(0.0, 100.0, 10.0)]
    assert Pulse(10.0, math.inf).pieces(100.0) == Constant(10.0).pieces(100.0)
    assert Step(3.0, 40.0).pieces(100.0) == [(0.0, 40.0, 0.0), (40.0, 100.0, 3.0)]
    assert Step(3.0, 0.0).pieces(100.0) == [(0.0, 100.0, 3.0)]
    assert Step(3.0, 150.0).pieces(100.0) == [(0.0, 100.0, 0.0)]
    paced = Pacing(-52.0, 1.0, 10.0, 1000.0).pieces(2500.0)
    assert paced == [(0.0, 10.0, 0.0), (10.0, 11.0, -52.0), (11.0, 1010.0, 0.0),
                     (1010.0, 1011.0, -52.0), (1011.0, 2010.0, 0.0), (2010.0, 2011.0, -52.0),
                     (2011.0, 2500.0, 0.0)]  # fmt: skip
    assert Pacing(5.0, 2.0, 0.0, 10.0).pieces(21.0) == [
        (0.0, 2.0, 5.0), (2.0, 10.0, 0.0), (10.0, 12.0, 5.0), (12.0, 20.0, 0.0),
        (20.0, 21.0, 5.0)]  # fmt: skip
    assert list(Pacing(5.0, 2.0, 3.0, 10.0).onsets(30.0)) == [3.0, 13.0, 23.0]


def test_values_on_a_grid_hold_from_the_left_at_each_discontinuity():
    time = np.array([0.0, 1.0, 2.0, 2.5, 10.0, 11.0, 12.0, 12.5])
    assert list(Pacing(5.0, 2.0, 0.0, 10.0).on_grid(time)) == [5, 5, 5, 0, 0, 5, 5, 0]
    assert list(Step(3.0, 1.0).on_grid(np.array([0.0, 1.0, 1.5]))) == [0, 0, 3]
    assert list(Pulse(4.0, 1.0).on_grid(np.array([0.0, 1.0, 1.5]))) == [4, 4, 0]


@pytest.mark.parametrize(
    "stimulus",
    [Constant(10.0), Step(3.0, 7.3), Pacing(-52.0, 1.0, 10.0, 25.0), Pulse(2.0, 4.15)],
    ids=lambda s: s.protocol,
)
def test_a_solve_follows_the_closed_form_through_every_discontinuity(stimulus):
    time = np.linspace(0.0, 100.0, 1001)
    settings = SolverSettings(rtol=1e-10, atol=1e-12)
    solution = solve_stimulus(PASSIVE, time, stimulus, settings)
    exact = _exact(stimulus, time)
    scale = max(1.0, float(np.abs(exact).max()))
    assert np.abs(solution.states[0] - exact).max() < 1e-7 * scale


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Pacing(1.0, 5.0, 0.0, 5.0), "duration = 5 ms with cycle_length = 5 ms"),
        (lambda: Pacing(1.0, 1.0, -1.0, 5.0), "offset = -1 ms; give offset >= 0"),
        (lambda: Step(1.0, -2.0), "t0 = -2 ms; give t0 >= 0"),
        (lambda: Constant(float("nan")), "amplitude = nan; give a finite number"),
        (lambda: from_section({"protocol": "ramp", "amplitude": 1.0}), "choose one of pulse"),
        (lambda: from_section({"protocol": "step", "amplitude": 1.0}), "it takes amplitude, t0"),
    ],
)
def test_bad_protocols_name_the_setting_and_what_is_allowed(make, message):
    with pytest.raises(UserError, match=message):
        make()


def test_a_stimulus_table_reads_as_its_protocol():
    table = TypeAdapter(StimulusSection)
    section = table.validate_python({"protocol": "pacing", "amplitude": -52.0, "duration": 1.0,
                                     "offset": 10.0, "cycle_length": 1000.0})  # fmt: skip
    assert from_section(section) == Pacing(-52.0, 1.0, 10.0, 1000.0)
    assert from_section(from_section(section).record()) == Pacing(-52.0, 1.0, 10.0, 1000.0)
    with pytest.raises(ValidationError, match="'pulse', 'constant', 'step', 'pacing'"):
        table.validate_python({"protocol": "ramp"})
