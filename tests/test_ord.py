"""O'Hara-Rudy 2011 against the shared reference: right-hand side, trajectories, steady state.

The reference (../shared/reference/ord/) is the CellML of the original model
and trajectories from Myokit's CVODES at rtol 1e-10. Tests that need it skip
with the reason when it is absent.
"""

import numpy as np
import pytest
from conftest import REFERENCE

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.ionic.ord import STATE_NAMES
from ionops.datasets.solver import solve
from ionops.errors import UserError

ORD = REFERENCE / "ord"
needs_reference = pytest.mark.skipif(
    not (ORD / "ord_endo_reference.npz").exists(),
    reason=f"the ORd reference data is not at {ORD} (it lives in ../shared/reference/)",
)


@pytest.fixture(scope="module")
def reference():
    return np.load(ORD / "ord_endo_reference.npz")


@pytest.fixture(scope="module")
def ord_model():
    return get_ionic_model("ord")


@needs_reference
def test_state_order_is_the_reference_order(reference):
    assert tuple(reference["state_names"]) == STATE_NAMES


@needs_reference
def test_right_hand_side_matches_the_cellml_to_1e_9(reference, ord_model):
    pytest.importorskip("myokit", reason="myokit (the dev extra) evaluates the CellML")
    import myokit
    import myokit.formats

    cellml = myokit.formats.importer("cellml").model(str(ORD / "ohara_rudy_2011_endo.cellml"))
    stimulus = cellml.get("membrane.Istim")
    suffixes = [state.qname().split(".")[-1] for state in cellml.states()]
    to_cellml = [suffixes.index(name) for name in STATE_NAMES]
    worst = 0.0
    cases = [("states", 0.0), ("states_ss", 0.0), ("states_i20_Tstim5", 20.0),
             ("states_i1_Tstim500", 1.0)]  # fmt: skip
    for key, i_app in cases:
        stimulus.set_rhs(myokit.Number(-i_app))
        expected, ours = [], []
        for k in range(0, 1001, 50):
            y = reference[key][k]
            state = np.empty(41)
            state[to_cellml] = y
            expected.append(np.array(cellml.evaluate_derivatives(list(state)))[to_cellml])
            ours.append(ord_model.derivative(0.0, y, i_app))
        expected_a, ours_a = np.array(expected), np.array(ours)
        # A derivative near zero is the difference of terms of the variable's working size
        # (dm/dt at rest: alpha (1 - m) - beta m); rounding in them depends on the CPU's
        # instructions, so each difference is judged against a millionth of that size too
        # (2.8e-10 of it on an AMD EPYC; under 1e-10 on the machines of earlier runs).
        scale = np.maximum(np.abs(expected_a), 1e-6 * np.abs(expected_a).max(axis=0))
        significant = scale > 1e-14
        worst = max(worst, (np.abs(ours_a - expected_a)[significant] / scale[significant]).max())
    assert worst < 1e-9


@needs_reference
@pytest.mark.parametrize(
    ("key", "amplitude", "t_stim"),
    [("states", 80.0, 0.5), ("states_i20_Tstim5", 20.0, 5.0), ("states_i1_Tstim500", 1.0, 500.0)],
)
def test_reference_cases_agree_on_the_1_ms_grid(reference, ord_model, key, amplitude, t_stim):
    solution = solve(ord_model, reference["t_ms"], amplitude, t_stim,
                     settings=_settings(ord_model), y0=reference["y0"])  # fmt: skip
    expected = reference[key].T
    assert np.abs(solution.states[0] - expected[0]).max() < 1e-2  # mV
    ranges = np.ptp(expected, axis=1)
    error = np.abs(solution.states - expected).max(axis=1)
    assert (error <= 1e-3 * np.where(ranges > 0, ranges, 1.0)).all()


@needs_reference
def test_upstroke_agrees_on_the_0_1_ms_grid(reference, ord_model):
    solution = solve(ord_model, reference["t_fine_ms"], 80.0, 0.5, _settings(ord_model),
                     y0=reference["y0"])  # fmt: skip
    assert np.abs(solution.states[0] - reference["V_fine"]).max() < 1e-2


@needs_reference
@pytest.mark.slow
def test_paced_steady_state_matches_the_reference(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("IONOPS_CACHE_DIR", str(tmp_path))
    model = get_ionic_model("ord")
    steady = model.initial_state()  # the default: 1000 beats at 1 Hz, computed here
    relative = np.abs(steady - reference["y0_ss"]) / np.abs(reference["y0_ss"]).clip(1e-12)
    assert relative.max() < 1e-4
    assert list(tmp_path.glob("ord-paced-*.npy")), "the steady state was not cached"
    np.testing.assert_array_equal(model.initial_state(), steady)  # from the cache


def test_original_initial_state_is_an_option(ord_model):
    y0 = ord_model.initial_state(kind="original")
    assert y0[0] == -87.0 and y0[STATE_NAMES.index("ki")] == 145.0


def test_ghk_fluxes_are_smooth_through_zero_voltage(ord_model):
    y = ord_model.initial_state(kind="original")
    values = []
    for v in (-1e-7, 0.0, 1e-7):
        y[0] = v
        values.append(ord_model.derivative(0.0, y))
    assert np.isfinite(values).all()
    np.testing.assert_allclose(values[1], values[0], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(values[1], values[2], rtol=1e-6, atol=1e-12)


def test_stimulus_enters_the_potassium_balance(ord_model):
    y = ord_model.initial_state(kind="original")
    ki = STATE_NAMES.index("ki")
    change = ord_model.derivative(0.0, y, 10.0) - ord_model.derivative(0.0, y, 0.0)
    assert change[0] == pytest.approx(10.0)  # dV/dt = -(I_ion + I_stim), I_stim = -i
    assert change[ki] == pytest.approx(10.0 * 6.1e-5, rel=0.01)  # mM per (uA/uF ms)


def test_cell_types_differ_and_unknown_ones_are_refused(ord_model):
    y = ord_model.initial_state(kind="original")
    y[0] = -20.0
    endo = ord_model.derivative(0.0, y, p=ord_model.parameter_vector({"celltype": 0}))
    epi = ord_model.derivative(0.0, y, p=ord_model.parameter_vector({"celltype": 1}))
    mid = ord_model.derivative(0.0, y, p=ord_model.parameter_vector({"celltype": 2}))
    assert not np.allclose(endo[0], epi[0]) and not np.allclose(endo[0], mid[0])
    with pytest.raises(UserError, match=r"celltype = 3; allowed: 0 \(endocardial\), 1"):
        ord_model.parameter_vector({"celltype": 3})


def _settings(model):
    from ionops.datasets.solver import SolverSettings

    rtol, atol = model.tolerances
    return SolverSettings(rtol=rtol, atol=atol)
