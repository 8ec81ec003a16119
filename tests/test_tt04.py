"""ten Tusscher 2004 against the shared reference: its CellML files read by an independent
MathML evaluator (tests/cellml.py) for the right-hand side at many states, and Myokit's
CVODES trajectories (5 beats at 1000 ms, M and endocardial cells) for every state. Tests
that need the reference skip with the reason when it is absent."""

import numpy as np
import pytest
from conftest import REFERENCE

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.solver import SolverSettings, solve_stimulus
from ionops.datasets.stimuli import Pacing
from ionops.errors import UserError

TT04 = REFERENCE / "tt04"
needs_reference = pytest.mark.skipif(
    not (TT04 / "tt04_reference.npz").exists(),
    reason=f"the tt04 reference data is not at {TT04} (it lives in ../shared/reference/)",
)
MODEL = get_ionic_model("tt04")
CELLS = {"M": "M", "endo": "endo", "epi": "epi"}
PACING = Pacing(52.0, 1.0, 10.0, 1000.0)  # the paper's -52 pA/pF, positive depolarising here


def _cellml_rhs(cellml, y, i_app):  # type: ignore[no-untyped-def]
    """The CellML's right-hand side in ionops' state order, its stimulus -i_app."""
    names = [s.split(".", 1)[1] for s in cellml.states]
    values = [y[MODEL.state_names.index(n)] for n in names]
    out = dict(zip(names, cellml.rhs(0.0, values, {"membrane.i_Stim": -i_app}), strict=True))
    return np.array([out[n] for n in MODEL.state_names])


def _random_states(count: int, seed: int) -> np.ndarray:
    """States over the model's physiological ranges, V across the gates' branch points."""
    rng = np.random.default_rng(seed)
    states = np.empty((count, MODEL.n_states))
    states[:, 0] = rng.uniform(-95.0, 50.0, count)
    states[:, 1:12] = rng.uniform(0.0, 1.0, (count, 11))
    states[:, 12] = 10 ** rng.uniform(-4.5, -2.5, count)  # Ca_i
    states[:, 13] = rng.uniform(0.1, 4.0, count)  # Ca_SR
    states[:, 14] = rng.uniform(0.0, 1.0, count)  # g
    states[:, 15] = rng.uniform(5.0, 20.0, count)  # Na_i
    states[:, 16] = rng.uniform(120.0, 145.0, count)  # K_i
    return states


@needs_reference
@pytest.mark.parametrize("cell", ["M", "endo", "epi"])
def test_the_right_hand_side_is_the_cellmls_at_many_states(cell):
    from tests.cellml import CellML

    cellml = CellML(TT04 / f"ten_tusscher_model_2004_{cell}.cellml")
    p = MODEL.parameter_vector(MODEL.parameter_set(cell))
    states = _random_states(300, seed=len(cell))
    states[:2, 0] = [-40.0, -60.0]  # the gates' branch points
    if cell == "epi":  # its file guards I_CaL's removable point at V = 0 (the others divide)
        states[2:5, 0] = [0.0, 1e-9, -1e-9]
    else:
        states = states[np.abs(states[:, 0]) > 1e-3]
    for k, y in enumerate(states):
        i_app = 52.0 if k % 3 == 0 else 0.0
        want = _cellml_rhs(cellml, y, i_app)
        got = MODEL.derivative(0.0, y, i_app, p)
        assert np.allclose(got, want, rtol=1e-9, atol=1e-12), (cell, y, got - want)
        field = np.array(MODEL.vector_field(y, i_app, p))  # the array form, numpy
        assert np.allclose(field, want, rtol=1e-9, atol=1e-12), (cell, y, field - want)


@pytest.mark.parametrize("cell", ["M", "endo"])
def test_the_array_field_in_torch_is_the_kernels_with_finite_gradients(cell):
    """The model's vector_field over a batch of torch tensors equals the compiled kernel's
    right-hand side state by state, at the gates' branch points and I_CaL's removable point
    (V = 0) too, and its gradient with respect to every state is finite there."""
    import torch

    p = MODEL.parameter_vector(MODEL.parameter_set(cell))
    states = _random_states(200, seed=7)
    states[:6, 0] = [-40.0, -60.0, 0.0, 1e-9, -1e-9, 1e-7]
    y = torch.tensor(states.T, dtype=torch.float64, requires_grad=True)
    current = torch.where(torch.arange(200) % 3 == 0, 52.0, 0.0).double()
    field = torch.stack(MODEL.vector_field(list(y), current, p))
    want = np.stack([MODEL.derivative(0.0, s, float(c), p)
                     for s, c in zip(states, current, strict=True)])  # fmt: skip
    assert np.allclose(field.detach().numpy().T, want, rtol=1e-9, atol=1e-12)
    (gradient,) = torch.autograd.grad(field.sum(), y)
    assert torch.isfinite(gradient).all()
    # the derivative of dV/dt with respect to V by autograd against a central difference
    at = torch.tensor(states[2:3].T, dtype=torch.float64, requires_grad=True)  # V = 0
    (slope,) = torch.autograd.grad(MODEL.vector_field(list(at), 0.0, p)[0].sum(), at)
    step = 1e-5
    up, down = states[2].copy(), states[2].copy()
    up[0] += step
    down[0] -= step
    fd = (MODEL.derivative(0.0, up, 0.0, p)[0] - MODEL.derivative(0.0, down, 0.0, p)[0]) / (
        2 * step)  # fmt: skip
    assert float(slope[0, 0]) == pytest.approx(fd, rel=1e-6)


@needs_reference
@pytest.mark.parametrize(("cell", "key"), [("M", "M__cl1000_5beats"),
                                           ("endo", "endo__cl1000_5beats")])  # fmt: skip
def test_five_paced_beats_match_cvodes_in_every_state(cell, key):
    reference = np.load(TT04 / "tt04_reference.npz")
    assert [str(n) for n in reference["state_names"]] == list(MODEL.state_names)
    grid, truth = reference["time_ms"], reference[key]
    p = MODEL.parameter_vector(MODEL.parameter_set(cell))
    rtol, atol = MODEL.tolerances
    solution = solve_stimulus(MODEL, grid, PACING, SolverSettings(rtol=rtol, atol=atol), p)
    # V within 0.5 mV everywhere, the upstroke included (measured: 4e-4 mV at the datasets'
    # tolerances on this 1 ms grid); every state within 1e-3 of its range
    assert np.abs(solution.states[0] - truth[0]).max() < 0.05
    spread = np.ptp(truth, axis=1)
    spread[spread == 0] = 1.0
    assert (np.abs(solution.states - truth).max(axis=1) / spread).max() < 1e-3
    assert truth[0].max() > 20.0  # five action potentials


def test_the_currents_add_up_to_the_membrane_equation():
    p = MODEL.parameter_vector()
    states = _random_states(20, seed=3)
    values = MODEL.current_values(states.T, p)
    membrane = [n for n in values if n not in {"I_rel", "I_up", "I_leak"}]
    total = sum(values[n] for n in membrane)
    for k, y in enumerate(states):
        assert MODEL.derivative(0.0, y, 5.0, p)[0] == pytest.approx(5.0 - total[k], rel=1e-12)
    assert set(MODEL.gates) == {"m", "h", "j", "d", "f", "Xr1", "Xr2", "Xs", "r", "s"}
    assert MODEL.observables == ("V", "Ca_i")


def test_cell_types_and_conductances_are_parameters_named_by_what_exists():
    assert MODEL.parameter_vector()[list(MODEL.parameters).index("g_Ks")] == 0.062
    endo = MODEL.parameter_vector(MODEL.parameter_set("endo"))
    assert endo[list(MODEL.parameters).index("g_to")] == 0.073
    with pytest.raises(UserError, match=r"celltype = 3; allowed: 0 \(endocardial\)"):
        MODEL.parameter_vector({"celltype": 3.0})
    with pytest.raises(UserError, match="tt04 has no parameter 'g_Kx'; valid: celltype"):
        MODEL.parameter_vector({"g_Kx": 0.5})
    with pytest.raises(UserError, match="no parameter set 'purkinje'; its sets: M, endo, epi"):
        MODEL.parameter_set("purkinje")
