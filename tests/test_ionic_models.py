"""Ionic models: registry, the paper's constants, removable singularities, Jacobians."""

import numpy as np
import pytest

from ionops.datasets.ionic import available, get_ionic_model
from ionops.datasets.ionic.hh_kernels import rates
from ionops.errors import UserError


def test_registry_lists_the_models_and_rejects_unknown_names():
    assert {"fhn", "hh"} <= set(available())
    with pytest.raises(
        UserError,
        match=r"unknown ionic model .lr91.; known models: fhn, fhn_werneck, hh, hh_fractional, "
        "hh_modern, izhikevich, lif, ord, tt04",
    ):
        get_ionic_model("lr91")


@pytest.mark.parametrize(("name", "states"), [("fhn", ("V", "w")), ("hh", ("V", "m", "h", "n"))])
def test_state_names_units_and_initial_state_agree(name, states):
    model = get_ionic_model(name)
    assert model.state_names == states
    assert len(model.state_units) == model.n_states
    assert model.initial_state().shape == (model.n_states,)


def test_fhn_defaults_to_the_published_solver_recovery_rate():
    model = get_ionic_model("fhn")
    assert model.parameters["e"] == 0.1
    assert "Table 5" in model.notes["e"]


def test_fhn_right_hand_side_is_the_paper_formula():
    model = get_ionic_model("fhn")
    v, w, i_app = 0.7, 0.2, 0.3
    b, beta, c, delta, gamma, e = 5.0, 0.1, 1.0, 1.0, 0.25, 0.1
    expected = [b * v * (v - beta) * (delta - v) - c * w + i_app, e * (v - gamma * w)]
    # 1e-12: rounding (fused multiply-adds) differs between CPUs by an ulp or two
    np.testing.assert_allclose(model.derivative(0.0, np.array([v, w]), i_app), expected, rtol=1e-12)


def test_fhn_werneck_is_the_authors_published_form():
    model = get_ionic_model("fhn_werneck")
    assert model.state_names == ("u", "w") and model.stimulus_name == "k"
    u, w, k = 0.3, 0.05, 0.7
    expected = [10 * (u * (u - 0.4) * (1 - u) - w + 0.04 * k + 0.08), 0.04 * u - 0.16 * w]
    np.testing.assert_allclose(model.derivative(0.0, np.array([u, w]), k), expected, rtol=1e-12)
    np.testing.assert_array_equal(model.initial_state(), [0.5, 0.0])  # problem A's


def test_hh_paper_initial_state_is_rest_to_its_printed_digits():
    # With VL = 10.6 (rounded from 10.613) the paper's V0 drifts by ~0.02 mV/ms; its
    # gates are the steady state at V = 0 mV to the five digits printed.
    model = get_ionic_model("hh")
    y0 = model.initial_state()
    derivative = model.derivative(0.0, y0)
    assert abs(derivative[0]) < 0.02
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = rates(0.0)
    steady = [
        alpha_m / (alpha_m + beta_m),
        alpha_h / (alpha_h + beta_h),
        alpha_n / (alpha_n + beta_n),
    ]
    np.testing.assert_allclose(y0[1:], steady, rtol=5e-5)


@pytest.mark.parametrize("v_singular", [10.0, 25.0])
def test_hh_rates_are_continuous_through_their_removable_points(v_singular):
    at = np.array(rates(v_singular))
    assert np.isfinite(at).all()
    for offset in (1e-9, 1e-7, 1e-4):
        below, above = np.array(rates(v_singular - offset)), np.array(rates(v_singular + offset))
        np.testing.assert_allclose(below, at, rtol=2 * offset)
        np.testing.assert_allclose(above, at, rtol=2 * offset)


def test_hh_alpha_limits_match_l_hopital():
    # a (x0 - V) / (exp((x0 - V)/10) - 1) -> 10 a at V = x0
    alpha_m, *_ = rates(25.0)
    *_, alpha_n, _ = rates(10.0)
    assert alpha_m == pytest.approx(1.0, rel=1e-15)
    assert alpha_n == pytest.approx(0.1, rel=1e-15)


@pytest.mark.parametrize("name", ["fhn", "fhn_werneck"])
def test_fhn_analytic_jacobian_matches_finite_differences(name):
    model = get_ionic_model(name)
    p = model.parameter_vector()
    y = np.array([0.43, 0.12])
    jac = np.empty((2, 2))
    model.jacobian(0.0, y, p, 0.5, jac)
    numeric = np.empty((2, 2))
    for j in range(2):
        step = np.zeros(2)
        step[j] = 1e-6
        numeric[:, j] = (
            model.derivative(0, y + step, 0.5) - model.derivative(0, y - step, 0.5)
        ) / 2e-6
    np.testing.assert_allclose(jac, numeric, rtol=1e-8, atol=1e-10)


def test_parameter_overrides_are_checked_by_name():
    model = get_ionic_model("fhn")
    assert model.parameter_vector({"e": 1.0})[-1] == 1.0
    with pytest.raises(UserError, match=r"fhn has no parameter 'eps'; valid: b \(default 5\)"):
        model.parameter_vector({"eps": 1.0})


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_parameter_that_is_not_finite_is_named(value):
    with pytest.raises(UserError, match=r"fhn parameter e = (nan|inf): must be a finite number"):
        get_ionic_model("fhn").parameter_vector({"e": value})


def _random_states(model, rng, count):
    """States about the model's initial one: V within ±60 of it, the gates anywhere in [0, 1]."""
    base = model.initial_state()
    states = base[None, :] * (1 + 0.2 * rng.uniform(-1, 1, (count, model.n_states)))
    states[:, 0] = base[0] + rng.uniform(-60, 60, count)
    for name in model.gates:
        states[:, model.state_names.index(name)] = rng.uniform(0, 1, count)
    return states


@pytest.mark.parametrize("name", available())
def test_declared_gates_are_hodgkin_huxley_gates(name):
    """dx/dt of a gate is alpha (1 - x) - beta x: linear in x, >= 0 at x = 0, <= 0 at x = 1
    (so a gate never leaves [0, 1]), whatever the other states."""
    model = get_ionic_model(name)
    rng = np.random.default_rng(0)
    for y in _random_states(model, rng, 20):
        for gate in model.gates:
            k = model.state_names.index(gate)
            at = [model.derivative(0.0, np.r_[y[:k], x, y[k + 1 :]])[k] for x in (0.0, 0.5, 1.0)]
            assert at[0] >= 0 >= at[2], (gate, at)
            assert at[1] == pytest.approx((at[0] + at[2]) / 2, rel=1e-9, abs=1e-12), gate
    assert set(model.observables) <= set(model.state_names)


def test_hh_currents_are_the_membrane_equation():
    """C_m dV/dt = I_app - (I_Na + I_K + I_L) at any state, the currents read from the model's
    declaration (a batch of states at once)."""
    model = get_ionic_model("hh")
    states = _random_states(model, np.random.default_rng(1), 50)
    currents = model.current_values(states.T)
    assert sorted(currents) == ["I_K", "I_L", "I_Na"]
    total = sum(currents.values())
    dvdt = np.array([model.derivative(0.0, y, i_app=5.0)[0] for y in states])
    np.testing.assert_allclose(dvdt, 5.0 - total, rtol=1e-12, atol=1e-9)
    # at rest the sodium current is inward (negative), the potassium current outward
    rest = model.current_values(model.initial_state()[:, None])
    assert rest["I_Na"][0] < 0 < rest["I_K"][0]


def test_gates_and_observables_must_be_states():
    from dataclasses import replace

    with pytest.raises(ValueError, match=r"hh: gates \['x'\] are not states"):
        replace(get_ionic_model("hh"), gates=("m", "x"))
