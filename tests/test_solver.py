"""The compiled BDF solver against exact solutions and an independent tight-tolerance solve."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.solver import SolveFailed, SolverSettings, solve, stimulus_segments


def radau_reference(model, t_grid, amplitude, t_stim):
    """scipy's Radau at rtol = atol = 1e-12, restarted at t_stim, as the independent truth."""
    p = model.parameter_vector()
    y = model.initial_state(p)
    pieces = []
    for start, end, current in stimulus_segments(amplitude, t_stim, t_grid[-1]):
        mask = (
            (t_grid >= start) & (t_grid <= end)
            if start == 0
            else (t_grid > start) & (t_grid <= end)
        )
        result = solve_ivp(
            lambda t, state, i=current: model.derivative(t, state, i, p),
            (start, end), y, method="Radau", rtol=1e-12, atol=1e-12,
            t_eval=t_grid[mask], dense_output=True,
        )  # fmt: skip
        pieces.append(result.y)
        y = result.sol(end)
    return np.concatenate(pieces, axis=1)


def test_stimulus_is_split_at_t_stim():
    assert stimulus_segments(2.0, 10.0, 100.0) == [(0.0, 10.0, 2.0), (10.0, 100.0, 0.0)]
    assert stimulus_segments(2.0, 0.0, 100.0) == [(0.0, 100.0, 0.0)]
    assert stimulus_segments(2.0, 100.0, 100.0) == [(0.0, 100.0, 2.0)]
    assert stimulus_segments(0.0, 50.0, 100.0) == [(0.0, 100.0, 0.0)]


@pytest.mark.parametrize(
    ("name", "amplitude", "t_stim"),
    [("fhn", 1.0, 20.0), ("fhn", 0.005, 80.0), ("hh", 5.0, 50.0), ("hh", 120.0, 2.0)],
)
def test_agrees_with_an_independent_tight_solve(name, amplitude, t_stim):
    model = get_ionic_model(name)
    t_grid = np.linspace(0.0, 100.0, 301)
    solution = solve(model, t_grid, amplitude, t_stim, SolverSettings(rtol=1e-8, atol=1e-10))
    reference = radau_reference(model, t_grid, amplitude, t_stim)
    assert solution.states.shape == (model.n_states, t_grid.size)
    error = np.abs(solution.states - reference).max(axis=1) / np.ptp(reference, axis=1)
    assert error.max() < 1e-5, error


def test_error_shrinks_with_the_tolerance():
    model = get_ionic_model("hh")
    t_grid = np.linspace(0.0, 100.0, 201)
    reference = radau_reference(model, t_grid, 8.0, 60.0)
    errors = [
        np.abs(
            solve(model, t_grid, 8.0, 60.0, SolverSettings(rtol=r, atol=r * 1e-2)).states
            - reference
        ).max()
        for r in (1e-4, 1e-6, 1e-8)
    ]
    assert errors[0] > 10 * errors[1] > 100 * errors[2]


def test_linear_decay_matches_the_exact_solution():
    # FHN with b = 0 and c = 0 is linear: V' = I, w' = e (V - gamma w).
    model = get_ionic_model("fhn")
    p = model.parameter_vector({"b": 0.0, "c": 0.0})
    t_grid = np.linspace(0.0, 50.0, 101)
    solution = solve(model, t_grid, 0.0, 0.0, SolverSettings(rtol=1e-10, atol=1e-12),
                     p=p, y0=np.array([1.0, 0.0]))  # fmt: skip
    e, gamma = 0.1, 0.25
    exact_w = (1.0 - np.exp(-e * gamma * t_grid)) / gamma
    np.testing.assert_allclose(solution.states[0], 1.0, atol=1e-12)
    np.testing.assert_allclose(solution.states[1], exact_w, rtol=1e-7, atol=1e-10)


def test_grid_point_at_t_stim_sees_the_stimulus():
    model = get_ionic_model("fhn")
    t_grid = np.linspace(0.0, 10.0, 11)
    p = model.parameter_vector({"b": 0.0, "c": 0.0})
    solution = solve(model, t_grid, 1.0, 5.0, SolverSettings(rtol=1e-10, atol=1e-12), p=p)
    # V' = I_app: V rises linearly to 5 at t = 5 and stays there.
    np.testing.assert_allclose(solution.states[0], np.minimum(t_grid, 5.0), atol=1e-9)


def test_failure_names_the_sample_the_stimulus_and_each_attempt():
    model = get_ionic_model("hh")
    tiny_budget = SolverSettings(rtol=1e-6, atol=1e-8, max_steps=5)
    with pytest.raises(SolveFailed) as info:
        solve(model, np.linspace(0, 100, 11), 7.5, 42.0, tiny_budget, label="train sample 17")
    message = str(info.value)
    assert "train sample 17 of hh failed (stimulus i = 7.5 uA/cm^2 for t <= 42 ms)" in message
    assert "attempt 1 (rtol=1e-06, atol=1e-08, max_steps=5" in message
    assert "attempt 2 (rtol=1e-07, atol=1e-09, max_steps=20" in message
    assert "step budget" in message
    assert "Try a smaller stimulus range" in message


def test_a_failure_under_changed_parameters_names_them_first():
    model = get_ionic_model("fhn")
    p = model.parameter_vector({"e": -1e9})
    with pytest.raises(SolveFailed) as info:
        solve(model, np.linspace(0, 100, 11), 2.5, 1.0, SolverSettings(), p=p)
    assert "differ from its defaults: e = -1e+09 (default 0.1); check them" in str(info.value)


def test_retry_rescues_a_too_tight_first_budget():
    model = get_ionic_model("fhn")
    tight_budget, retry = SolverSettings(max_steps=50), SolverSettings(max_steps=100_000)
    solution = solve(model, np.linspace(0, 100, 11), 1.0, 30.0, tight_budget, retries=[retry])
    assert solution.attempts == 2
    assert np.isfinite(solution.states).all()
    assert solution.stats["steps"] > 50
