"""Models with resets: the solver locates each threshold crossing to its tolerance, resets
and restarts, and returns the spike times. Checked against the integrate-and-fire neuron's
closed form and, for Izhikevich's neuron, against scipy's DOP853 with its own event
location at much tighter tolerances."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from numba import njit

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.ionic.base import IonicModel
from ionops.datasets.solver import SolverSettings, solve_stimulus
from ionops.datasets.stimuli import Constant
from ionops.errors import UserError

# leaky integrate-and-fire: tau dV/dt = -(V - V_rest) + R I; V >= V_th: V <- V_reset
TAU, V_REST, V_TH, V_RESET = 10.0, -65.0, -50.0, -65.0


@njit(cache=True)
def _lif_rhs(t, y, p, i_app, dydt):  # type: ignore[no-untyped-def]
    dydt[0] = (-(y[0] - p[1]) + i_app) / p[0]


@njit(cache=True)
def _lif_event(t, y, p):  # type: ignore[no-untyped-def]
    return y[0] - p[2]


@njit(cache=True)
def _lif_reset(t, y, p):  # type: ignore[no-untyped-def]
    y[0] = p[3]


LIF = IonicModel(
    name="lif", title="leaky integrate-and-fire", state_names=("V",), state_units=("mV",),
    parameters={"tau": TAU, "v_rest": V_REST, "v_th": V_TH, "v_reset": V_RESET},
    kernels=SimpleNamespace(rhs=_lif_rhs, event=_lif_event, reset=_lif_reset),
    initial_states={"rest": lambda p: np.array([p[1]])}, current_unit="mV",
)  # fmt: skip


# Izhikevich 2003: v' = 0.04 v^2 + 5 v + 140 - u + I, u' = a (b v - u); v >= 30: v <- c, u += d
@njit(cache=True)
def _izh_rhs(t, y, p, i_app, dydt):  # type: ignore[no-untyped-def]
    dydt[0] = 0.04 * y[0] * y[0] + 5.0 * y[0] + 140.0 - y[1] + i_app
    dydt[1] = p[0] * (p[1] * y[0] - y[1])


@njit(cache=True)
def _izh_event(t, y, p):  # type: ignore[no-untyped-def]
    return y[0] - 30.0


@njit(cache=True)
def _izh_reset(t, y, p):  # type: ignore[no-untyped-def]
    y[0] = p[2]
    y[1] += p[3]


IZHIKEVICH = IonicModel(
    name="izhikevich", title="Izhikevich 2003", state_names=("v", "u"),
    state_units=("mV", "1"), parameters={"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0},
    kernels=SimpleNamespace(rhs=_izh_rhs, event=_izh_event, reset=_izh_reset),
    initial_states={"rest": lambda p: np.array([-65.0, p[1] * -65.0])}, current_unit="1",
)  # fmt: skip


def test_integrate_and_fire_spikes_at_its_closed_form_times():
    drive = 20.0  # R I in mV: the period is tau ln(R I / (R I - (V_th - V_rest)))
    period = TAU * math.log(drive / (drive - (V_TH - V_REST)))
    grid = np.linspace(0.0, 100.0, 1001)  # 0.1 ms: the spikes fall between its points
    solution = solve_stimulus(LIF, grid, Constant(drive), SolverSettings(rtol=1e-10, atol=1e-10))
    expected = period * np.arange(1, int(100.0 / period) + 1)
    assert solution.events.size == expected.size == 7
    # each interval to the tolerance (rtol |V| / dV/dt at V_th = 1e-10 * 65 / 0.5 ~ 1.3e-8 ms),
    # three orders below the grid's spacing (0.1 ms); the times accumulate the intervals
    intervals = np.diff(solution.events, prepend=0.0)
    assert np.abs(intervals - period).max() < 5e-8
    assert np.abs(solution.events - expected).max() < 7 * 5e-8
    since = grid - np.concatenate(([0.0], expected))[np.searchsorted(expected, grid, "right")]
    exact = V_REST + drive * (1.0 - np.exp(-since / TAU))  # every piece starts from V_reset
    assert np.abs(solution.states[0] - exact).max() < 1e-6
    assert solution.states[0].max() < V_TH  # no grid point after a crossing keeps its value


def _scipy_spikes(model, drive, t_end, rtol):
    from scipy.integrate import solve_ivp

    p = model.parameter_vector()

    def f(t, y):
        out = np.empty(2)
        model.rhs(t, np.ascontiguousarray(y), p, drive, out)
        return out

    def crossing(t, y):
        return y[0] - 30.0

    crossing.terminal, crossing.direction = True, 1.0
    t, y, spikes = 0.0, model.initial_state(p), []
    while t < t_end:
        done = solve_ivp(f, (t, t_end), y, method="DOP853", rtol=rtol, atol=rtol,
                         events=crossing)  # fmt: skip
        if done.status != 1:
            break
        t, y = float(done.t_events[0][0]), done.y_events[0][0].copy()
        spikes.append(t)
        y[0], y[1] = p[2], y[1] + p[3]
    return np.array(spikes)


@pytest.mark.parametrize(("name", "a", "c", "d"), [
    ("RS", 0.02, -65.0, 8.0), ("IB", 0.02, -55.0, 4.0), ("CH", 0.02, -50.0, 2.0),
    ("FS", 0.1, -65.0, 2.0),
])  # fmt: skip
def test_izhikevich_spike_times_agree_with_a_tighter_independent_solver(name, a, c, d):
    p = {"a": a, "b": 0.2, "c": c, "d": d}
    model = IonicModel(**{**IZHIKEVICH.__dict__, "parameters": p})
    grid = np.linspace(0.0, 200.0, 201)
    reference = _scipy_spikes(model, 10.0, 200.0, 1e-12)
    errors = []
    for rtol in (1e-6, 1e-9):
        solution = solve_stimulus(model, grid, Constant(10.0), SolverSettings(rtol, rtol))
        assert solution.events.size == reference.size > 3, name
        errors.append(np.abs(solution.events - reference).max())
    # measured: 3-4e-3 ms at 1e-6 and 1.0-1.3e-5 ms at 1e-9 over 200 ms of spikes and resets,
    # the error following the tolerance, every spike counted
    assert errors[1] < 5e-5 and errors[1] < errors[0] / 100, errors


def test_models_without_resets_have_no_events_and_euler_refuses_resets():
    from ionops.datasets.euler import euler

    hh = get_ionic_model("hh")
    assert not hh.has_events
    solution = solve_stimulus(hh, np.linspace(0.0, 20.0, 21), Constant(10.0), SolverSettings())
    assert solution.events.size == 0
    with pytest.raises(UserError, match=r"lif has resets.*solver = \"bdf\""):
        euler(LIF, LIF.parameter_vector(), np.array([[V_REST]]), np.array([20.0]), 0.01,
              np.array([[10]]))  # fmt: skip
