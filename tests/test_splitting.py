"""The splitting PINN's march (paper 003) against truth it did not make: the integrate-and-fire
closed form, the Mittag-Leffler function, the project's BDF at tight tolerances and the
Izhikevich neuron's located spikes; and the models it brings (fractional HH, the vector fields
of the spiking models, Izhikevich's parameter sets)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.solver import SolverSettings, solve_stimulus
from ionops.datasets.stimuli import Constant, Step
from ionops.errors import UserError
from ionops.models.collocation import gauss_newton
from ionops.models.splitting import (
    Marcher,
    WindowSettings,
    problem_of,
    relative_l2,
)

TIGHT = SolverSettings(rtol=1e-11, atol=1e-12, max_steps=10_000_000)


def _march(name, stimulus, t_end, overrides=None, **settings):  # type: ignore[no-untyped-def]
    model = get_ionic_model(name)
    p = model.parameter_vector(overrides or {})
    start = model.initial_state(p)
    problem = problem_of(model, p, start, stimulus.pieces(t_end), t_end)
    record = Marcher(problem, WindowSettings(**settings), seed=0).run()
    times, states = record.arrays()
    return model, p, start, record, times, states


@pytest.mark.parametrize("splitting, bound", [("strang", 2e-3), ("lie", 1.5e-2)])
def test_hodgkin_huxley_through_its_first_spike_matches_a_tight_bdf(splitting, bound):
    stimulus = Constant(10.0)
    model, p, start, record, times, states = _march(
        "hh_modern", stimulus, 4.0, window_ms=0.02, splitting=splitting
    )
    truth = solve_stimulus(model, times, stimulus, TIGHT, p, start).states
    assert truth[0].max() > 20.0  # the window holds the upstroke
    errors = relative_l2(states, truth)
    assert errors.max() < bound, errors
    assert max(record.residuals) < 1e-8


def test_strang_is_second_order_in_the_window():
    stimulus = Constant(10.0)
    errors = []
    for window in (0.04, 0.02):
        model, p, start, _, times, states = _march("hh_modern", stimulus, 3.0, window_ms=window)
        truth = solve_stimulus(model, times, stimulus, TIGHT, p, start).states
        errors.append(relative_l2(states, truth)[0])
    assert 3.0 < errors[0] / errors[1] < 5.0, errors


def test_integrate_and_fire_spikes_at_its_closed_form_times():
    drive, tau, gap = 20.0, 10.0, 15.0
    period = tau * math.log(drive / (drive - gap))
    _, _, _, record, times, states = _march(
        "lif", Constant(drive), 50.0, window_ms=0.1, splitting="none"
    )
    expected = period * np.arange(1, int(50.0 / period) + 1)
    assert len(record.events) == expected.size == 3
    assert np.abs(np.array(record.events) - expected).max() < 1e-6  # a time step is 0.1 ms
    since = times - np.concatenate(([0.0], expected))[np.searchsorted(expected, times, "right")]
    exact = -65.0 + drive * (1.0 - np.exp(-since / tau))
    assert np.abs(states[0] - exact).max() < 1e-6


@pytest.mark.parametrize("name", ["RS", "FS"])
def test_izhikevich_spikes_where_the_event_locating_solver_puts_them(name):
    model = get_ionic_model("izhikevich")
    overrides = model.parameter_set(name)
    stimulus = Constant(10.0)
    *_, record, _, _ = _march("izhikevich", stimulus, 40.0, overrides, window_ms=0.02)
    p = model.parameter_vector(overrides)
    truth = solve_stimulus(
        model, np.linspace(0.0, 40.0, 401), stimulus, SolverSettings(rtol=1e-10, atol=1e-10), p
    ).events
    assert len(record.events) == truth.size >= 2
    assert np.abs(np.array(record.events) - truth).max() < 0.01


def test_one_state_models_cannot_be_split_and_unknown_splittings_are_named():
    with pytest.raises(UserError, match=r"one state .*splitting = 'none'"):
        _march("lif", Constant(20.0), 1.0, window_ms=0.1, splitting="strang")
    with pytest.raises(UserError, match=r"model.splitting = 'yoshida' does not exist; known: lie"):
        WindowSettings(window_ms=0.1, splitting="yoshida")


def test_the_caputo_residual_reproduces_the_mittag_leffler_relaxation():
    mittag_leffler = pytest.importorskip("pymittagleffler").mittag_leffler
    from types import SimpleNamespace

    from ionops.datasets.ionic.base import IonicModel

    alpha = 0.7
    model = IonicModel(
        name="relax",
        title="",
        state_names=("y",),
        state_units=("1",),
        parameters={"lam": 1.0, "alpha": alpha},
        kernels=SimpleNamespace(),
        initial_states={"one": lambda p: np.array([1.0])},
        caputo={"y": "alpha"},
        vector_field=lambda y, i, p: (-p[0] * y[0],),
    )
    p = model.parameter_vector()
    problem = problem_of(model, p, np.array([1.0]), [(0.0, 2.0, 0.0)], 2.0)
    times, states = (
        Marcher(problem, WindowSettings(window_ms=0.01, splitting="none", caputo_step_ms=1e-3), 0)
        .run()
        .arrays()
    )
    exact = np.real(mittag_leffler(-(times**alpha), alpha, 1.0))
    # L1 is first order at t = 0 (the solution's t^alpha there): 1e-3 ms steps
    assert np.abs(states[0] - exact).max() < 5e-3
    assert np.abs(states[0, -1] - exact[-1]) < 2e-4


def test_fractional_hodgkin_huxley_matches_its_l1_solver_through_a_spike():
    model = get_ionic_model("hh_fractional")
    stimulus = Step(10.0, 2.0)
    p = model.parameter_vector({"alpha": 0.8})
    start = model.initial_state(p)
    problem = problem_of(model, p, start, stimulus.pieces(5.0), 5.0)
    record = Marcher(problem, WindowSettings(window_ms=0.02, caputo_step_ms=1e-3), 0).run()
    times, states = record.arrays()
    truth = solve_stimulus(
        model, times, stimulus, SolverSettings(rtol=1e-10, atol=1e-12, max_step=1e-3), p, start
    ).states
    assert truth[0].max() > 20.0
    assert relative_l2(states, truth).max() < 1e-2


def test_fractional_hh_rests_at_zero_current_and_recovers_hh_at_order_one():
    model = get_ionic_model("hh_fractional")
    p = model.parameter_vector({"alpha": 1.0})
    rest = model.initial_state(p)
    assert np.abs(model.derivative(0.0, rest, 0.0, p)).max() < 1e-10
    assert -66.0 < rest[0] < -64.0
    grid = np.linspace(0.0, 20.0, 201)
    modern = get_ionic_model("hh_modern")
    integer = solve_stimulus(modern, grid, Constant(10.0), TIGHT, modern.parameter_vector(), rest)
    order_one = solve_stimulus(model, grid, Constant(10.0), SolverSettings(max_step=5e-4), p, rest)
    assert integer.states[0].max() > 20.0
    # the L1 scheme at alpha = 1 is backward Euler (first order): 5e-4 ms steps
    assert np.abs(order_one.states[0] - integer.states[0]).max() < 1.5


@pytest.mark.parametrize("name", ["lif", "izhikevich", "hh_fractional"])
def test_the_vector_field_is_the_compiled_right_hand_side(name):
    model = get_ionic_model(name)
    p = model.parameter_vector()
    rng = np.random.default_rng(0)
    start = model.initial_state(p)
    for _ in range(5):
        y = start * (1.0 + 0.1 * rng.standard_normal(start.size))
        field = np.array(model.vector_field(list(y), 3.0, p), dtype=np.float64)
        assert np.allclose(field, model.derivative(0.0, y, 3.0, p), rtol=1e-12, atol=1e-12)


def test_izhikevich_parameter_sets_by_name():
    model = get_ionic_model("izhikevich")
    assert model.parameter_set("CH") == {"a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0}
    assert model.parameter_set(None) == {}
    with pytest.raises(UserError, match="no parameter set 'XX'; its sets: RS, IB, CH, FS"):
        model.parameter_set("XX")


def test_gauss_newton_solves_an_affine_residual_in_one_step():
    rng = np.random.default_rng(1)
    matrix, target = rng.standard_normal((12, 5)), rng.standard_normal(12)
    solution, _, used = gauss_newton(lambda c: (matrix @ c - target, matrix), np.zeros(5), 8, 1e-12)
    expected = np.linalg.lstsq(matrix, target, rcond=None)[0]
    assert np.allclose(solution, expected) and used <= 2
