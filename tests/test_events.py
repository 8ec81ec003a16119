"""Models with resets: the solver locates each threshold crossing to its tolerance, resets
and restarts, and returns the spike times. Checked against the integrate-and-fire neuron's
closed form and, for Izhikevich's neuron, against scipy's DOP853 with its own event
location at much tighter tolerances."""

import math

import numpy as np
import pytest

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.ionic.base import IonicModel
from ionops.datasets.solver import SolverSettings, solve_stimulus
from ionops.datasets.stimuli import Constant
from ionops.errors import UserError

# the shipped models, checked against equations written out here
LIF = get_ionic_model("lif")
IZHIKEVICH = get_ionic_model("izhikevich")
# leaky integrate-and-fire: tau dV/dt = -(V - V_rest) + R I; V >= V_th: V <- V_reset
TAU, V_REST, V_TH, V_RESET = 10.0, -65.0, -50.0, -65.0


def test_the_shipped_models_are_the_papers():
    assert dict(LIF.parameters) == {"tau_m": TAU, "v_rest": V_REST, "v_th": V_TH,
                                    "v_reset": V_RESET}  # fmt: skip
    assert LIF.has_events and IZHIKEVICH.has_events
    assert np.allclose(IZHIKEVICH.initial_state(), [-65.0, 0.2 * -65.0])
    y = np.array([-60.0, -10.0])
    expected = [0.04 * 3600 - 300 + 140 + 10 + 3.0, 0.02 * (0.2 * -60.0 + 10.0)]
    assert np.allclose(IZHIKEVICH.derivative(0.0, y, 3.0), expected)


@pytest.mark.parametrize(("model", "overrides", "message"), [
    ("lif", {"v_reset": -45.0}, "v_reset = -45 mV is not below the threshold"),
    ("izhikevich", {"c": 35.0}, "c = 35 mV is not below the spike peak"),
])  # fmt: skip
def test_a_reset_above_the_threshold_is_refused(model, overrides, message):
    with pytest.raises(UserError, match=message):
        get_ionic_model(model).parameter_vector(overrides)


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
        v, u = y
        return [0.04 * v * v + 5.0 * v + 140.0 - u + drive, p[0] * (p[1] * v - u)]

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
    from ionops.datasets.ionic.izhikevich import PARAMETER_SETS

    p = {"a": a, "b": 0.2, "c": c, "d": d}
    assert PARAMETER_SETS[name] == p
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


def test_an_operator_dataset_of_a_spiking_model_records_its_spike_times(tmp_path):
    import h5py
    from support import small_spec

    from ionops.datasets.generate import generate
    from ionops.datasets.store import read_events

    # pulses of R I in [16, 30] mV for t_stim in [20, 60] ms: tonic firing while the pulse
    # lasts (period tau ln(RI / (RI - 15))), none after it (V relaxes below threshold)
    subsets = {"drive": {"i": (16.0, 30.0), "t_stim": (20.0, 60.0), "train": 6, "test": 2},
               "rest": {"i": (0.0, 0.0), "t_stim": (0.0, 0.0), "train": 1}}  # fmt: skip
    path = tmp_path / "lif.h5"
    generate(small_spec("lif", fraction=1.0, n_t=81, t_end_ms=80.0, subsets=subsets), path,
             progress=False)  # fmt: skip
    with h5py.File(path, "r") as handle:
        assert "events" in handle.attrs
        for split in ("train", "test"):
            group = handle[split]
            spikes = read_events(group)
            assert len(spikes) == group["amplitude"].shape[0]
            for drive, t_stim, times in zip(group["amplitude"][()], group["t_stim"][()], spikes,
                                            strict=True):  # fmt: skip
                if drive == 0.0:
                    assert times.size == 0
                    continue
                period = TAU * math.log(drive / (drive - (V_TH - V_REST)))
                expected = period * np.arange(1, int(t_stim / period) + 1)
                assert times.size == expected.size > 0
                assert np.abs(times - expected).max() < 1e-5
    with h5py.File(tmp_path / "fhn.h5", "w") as other, pytest.raises(UserError, match="no event"):
        read_events(other.create_group("train"))
