"""Models with Caputo derivatives: the L1 scheme against the Mittag-Leffler closed form, its
observed order on smooth data, pycaputo (an independent implementation of the same scheme,
and its second-order product-integration method), and the integer-order model at alpha = 1."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from numba import njit

from ionops.datasets.euler import euler
from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.ionic.base import IonicModel
from ionops.datasets.solver import SolverSettings, caputo_step, solve, solve_stimulus
from ionops.datasets.stimuli import Constant
from ionops.errors import UserError

pycaputo = pytest.importorskip("pycaputo", reason="pycaputo (the dev extra) cross-checks L1")
mittag_leffler = pytest.importorskip("pymittagleffler").mittag_leffler


def _settings(h: float) -> SolverSettings:
    return SolverSettings(rtol=1e-12, atol=1e-13, max_step=h)


@njit(cache=True)
def _relaxation_rhs(t, y, p, i_app, dydt):  # type: ignore[no-untyped-def]
    dydt[0] = -p[0] * y[0]


@njit(cache=True)
def _smooth_rhs(t, y, p, i_app, dydt):  # type: ignore[no-untyped-def]
    """Exact solution y0 = 1 + t^2 (D^a t^2 = 2 t^(2 - a) / Gamma(3 - a)), y1 = sin t."""
    a = p[0]
    dydt[0] = 2.0 * t ** (2.0 - a) / math.gamma(3.0 - a) - (y[0] - 1.0 - t * t) + 0.5 * y[1]
    dydt[1] = math.cos(t) - y[1] + math.sin(t) + 0.1 * (y[0] - 1.0 - t * t)
    dydt[0] -= 0.5 * math.sin(t)


@njit(cache=True)
def _fitzhugh_rhs(t, y, p, i_app, dydt):  # type: ignore[no-untyped-def]
    dydt[0] = y[0] - y[0] ** 3 / 3.0 - y[1] + i_app
    dydt[1] = 0.08 * (y[0] + 0.7 - 0.8 * y[1])


def _model(rhs, states, parameters, y0, caputo):  # type: ignore[no-untyped-def]
    return IonicModel(
        name="test", title="test", state_names=states, state_units=("1",) * len(states),
        parameters=parameters, kernels=SimpleNamespace(rhs=rhs),
        initial_states={"start": lambda p: np.array(y0)}, caputo=caputo,
    )  # fmt: skip


@pytest.mark.parametrize("alpha", [0.6, 0.8])
def test_relaxation_follows_the_mittag_leffler_function(alpha):
    # D^a y = -y, y(0) = 1: y = E_a(-t^a); not smooth at t = 0, so first order there
    model = _model(_relaxation_rhs, ("y",), {"lam": 1.0, "alpha": alpha}, [1.0], {"y": "alpha"})
    grid = np.linspace(0.0, 2.0, 21)
    exact = np.real(mittag_leffler(-(grid**alpha), alpha, 1.0))
    errors = [np.abs(solve_stimulus(model, grid, Constant(0.0), _settings(h)).states[0] - exact)
              .max() for h in (1e-2, 1e-3)]  # fmt: skip
    assert errors[1] < 1e-3
    assert errors[0] / errors[1] > 8.0


@pytest.mark.parametrize("alpha", [0.6, 0.8])
def test_the_observed_order_on_smooth_data_is_two_minus_alpha(alpha):
    # one Caputo state coupled to an ordinary one (trapezoidal, order 2): the L1 term leads
    model = _model(_smooth_rhs, ("y", "z"), {"alpha": alpha}, [1.0, 0.0], {"y": "alpha"})
    grid = np.linspace(0.0, 1.0, 11)
    exact = np.stack((1.0 + grid**2, np.sin(grid)))
    errors = np.array([np.abs(solve_stimulus(model, grid, Constant(0.0), _settings(h)).states
                              - exact).max() for h in (2e-2, 1e-2, 5e-3)])  # fmt: skip
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.allclose(orders, 2.0 - alpha, atol=0.05), orders


def _pycaputo_solve(method, orders, h, t_end, y0, grid):  # type: ignore[no-untyped-def]
    from pycaputo.controller import make_fixed_controller
    from pycaputo.derivatives import CaputoDerivative
    from pycaputo.events import StepCompleted
    from pycaputo.stepping import evolve

    def source(t, y):  # type: ignore[no-untyped-def]
        return np.array([y[0] - y[0] ** 3 / 3.0 - y[1] + 0.5, 0.08 * (y[0] + 0.7 - 0.8 * y[1])])

    def jacobian(t, y):  # type: ignore[no-untyped-def]
        return np.array([[1.0 - y[0] ** 2, -1.0], [0.08, -0.064]])

    solver = method(ds=tuple(CaputoDerivative(a) for a in orders),
                    control=make_fixed_controller(h, tstart=0.0, tfinal=t_end), source=source,
                    source_jac=jacobian, y0=(np.array(y0),))  # fmt: skip
    stride = round((grid[1] - grid[0]) / h)
    states = {}
    for event in evolve(solver, dtinit=h):
        if isinstance(event, StepCompleted) and round(event.t / h) % stride == 0:
            states[round(event.t / h) // stride] = event.y
    return np.stack([states[k] for k in range(grid.size)], axis=1)


ORDERS = (0.7, 0.9)
FITZHUGH = _model(_fitzhugh_rhs, ("v", "w"), {"a_v": ORDERS[0], "a_w": ORDERS[1]},
                  [-1.2, -0.6], {"v": "a_v", "w": "a_w"})  # fmt: skip


def test_the_l1_scheme_is_pycaputos_step_for_step():
    from pycaputo.fode.caputo import L1

    grid = np.linspace(0.0, 10.0, 101)
    ours = solve_stimulus(FITZHUGH, grid, Constant(0.5), _settings(1e-2)).states
    theirs = _pycaputo_solve(L1, ORDERS, 1e-2, 10.0, [-1.2, -0.6], grid)
    assert np.abs(ours - theirs).max() < 1e-10


def test_the_l1_scheme_converges_to_pycaputos_second_order_method():
    from pycaputo.fode.caputo import Trapezoidal

    grid = np.linspace(0.0, 5.0, 51)
    truth = _pycaputo_solve(Trapezoidal, ORDERS, 2e-3, 5.0, [-1.2, -0.6], grid)
    errors = [np.abs(solve_stimulus(FITZHUGH, grid, Constant(0.5), _settings(h)).states - truth)
              .max() for h in (1e-2, 1e-3)]  # fmt: skip
    assert errors[1] < 1e-3 and errors[0] / errors[1] > 5.0, errors


def _fractional_hh(alpha: float) -> IonicModel:
    hh = get_ionic_model("hh")
    parameters = {**hh.parameters, "alpha": alpha}
    return IonicModel(name="hh_fractional", title="", state_names=hh.state_names,
                      state_units=hh.state_units, parameters=parameters, kernels=hh.kernels,
                      initial_states=hh.initial_states, caputo={"V": "alpha"})  # fmt: skip


def test_order_one_is_the_integer_order_model():
    grid = np.linspace(0.0, 20.0, 201)
    integer = solve(get_ionic_model("hh"), grid, 20.0, 1.0, SolverSettings(rtol=1e-10, atol=1e-10))
    l1 = solve(_fractional_hh(1.0), grid, 20.0, 1.0, _settings(1e-3))
    assert integer.states[0].max() > 90.0  # it fires
    assert np.abs(l1.states - integer.states).max() < 1e-3


def test_a_fractional_membrane_fires_later_and_differently():
    grid = np.linspace(0.0, 20.0, 201)
    one = solve(_fractional_hh(1.0), grid, 20.0, 1.0, _settings(1e-2)).states[0]
    fractional = solve(_fractional_hh(0.8), grid, 20.0, 1.0, _settings(1e-2)).states[0]
    assert np.isfinite(fractional).all() and np.abs(fractional - one).max() > 5.0


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.3, math.nan])
def test_an_order_outside_zero_one_is_refused_by_name(alpha):
    with pytest.raises(UserError, match=r"alpha = .*must be in \(0, 1\]|alpha = .*finite"):
        _fractional_hh(0.8).parameter_vector({"alpha": alpha})


def test_a_grid_off_the_step_lattice_is_refused():
    grid = np.array([0.0, 0.1, 0.25])
    with pytest.raises(UserError, match="uniform step"):
        caputo_step(grid, math.inf)
    h, steps = caputo_step(np.linspace(0.0, 1.0, 11), 0.03)
    assert h == pytest.approx(0.1 / 4) and steps[-1] == 40


def test_euler_refuses_a_caputo_model():
    model = _fractional_hh(0.8)
    with pytest.raises(UserError, match="Caputo"):
        euler(model, model.parameter_vector(), model.initial_state()[None], np.zeros((1, 1)), 0.01,
              np.ones((1, 1), dtype=np.int64))  # fmt: skip
