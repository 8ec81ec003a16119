"""ORd's solver against CVODES at 1e-12 / 1e-10, and its generated analytic Jacobian.

The references are computed here with Myokit's CVODES (tests/cvodes.py) from
the shared CellML; the tests skip, saying why, without Myokit, Debian's
libsundials-dev or ../shared/reference/.
"""

import subprocess
import sys
from pathlib import Path

import cvodes
import numpy as np
import pytest

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.ionic.ord import ORIGINAL_INITIAL_STATE
from ionops.datasets.ionic.ord_jacobian import jacobian
from ionops.datasets.ionic.ord_kernels import rhs
from ionops.datasets.solver import SolverSettings, solve

ROOT = Path(__file__).resolve().parents[1]
WHY_NOT = cvodes.unavailable()
needs_cvodes = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))
GRID = np.linspace(0.0, 1000.0, 1001)
# The example (the old tolerances left it at 1.6e-2 mV) and draws from every subset.
STIMULI = [(12.0, 2.5), *cvodes.paper_subset_stimuli()]


@pytest.fixture(scope="module")
def ord_model():
    return get_ionic_model("ord")


@needs_cvodes
def test_default_tolerances_keep_v_within_1e_2_mv_and_states_within_1e_3(ord_model):
    rtol, atol = ord_model.tolerances
    y0 = np.array(ORIGINAL_INITIAL_STATE)
    worst_v = worst_state = 0.0
    for amplitude, t_stim in STIMULI:
        expected = cvodes.solve(amplitude, t_stim, GRID, y0)
        ours = solve(ord_model, GRID, amplitude, t_stim, SolverSettings(rtol=rtol, atol=atol),
                     y0=y0).states.T  # fmt: skip
        ranges = np.ptp(expected, axis=0)
        error = np.abs(ours - expected).max(axis=0) / np.where(ranges > 0, ranges, 1.0)
        worst_v = max(worst_v, float(np.abs(ours[:, 0] - expected[:, 0]).max()))
        worst_state = max(worst_state, float(error.max()))
    assert worst_v <= 1e-2, f"V is {worst_v:.2e} mV from CVODES"
    assert worst_state <= 1e-3, f"a state is {worst_state:.2e} of its range from CVODES"


def _central_differences(y, p, i_app):
    columns = []
    plus, minus = np.empty(y.size), np.empty(y.size)
    for j in range(y.size):
        step = 1e-6 * max(abs(y[j]), 1e-4)
        up, down = y.copy(), y.copy()
        up[j] += step
        down[j] -= step
        rhs(0.0, up, p, i_app, plus)
        rhs(0.0, down, p, i_app, minus)
        columns.append((plus - minus) / (up[j] - down[j]))
    return np.column_stack(columns)


@pytest.mark.parametrize("celltype", [0, 1, 2])
def test_generated_jacobian_matches_central_differences(ord_model, celltype):
    p = ord_model.parameter_vector({"celltype": celltype})
    y0 = np.array(ORIGINAL_INITIAL_STATE)
    states = solve(ord_model, np.linspace(0.0, 400.0, 41), 40.0, 1.0,
                   SolverSettings(rtol=1e-6, atol=1e-8), p=p, y0=y0).states.T  # fmt: skip
    at_zero = states[1].copy()
    at_zero[0] = 0.0  # the GHK fluxes' removable singularity
    near_zero = states[1].copy()
    near_zero[0] = 3e-5
    exact = np.empty((y0.size, y0.size))
    for state in [*states[::4], at_zero, near_zero]:
        y = np.ascontiguousarray(state)
        jacobian(0.0, y, p, 40.0, exact)
        approximate = _central_differences(y, p, 40.0)
        row_scale = np.abs(approximate).max(axis=1, keepdims=True) + 1e-300
        assert np.isfinite(exact).all()
        assert (np.abs(exact - approximate) / row_scale).max() < 1e-5


@pytest.mark.slow
def test_generated_jacobian_is_up_to_date_with_the_right_hand_side():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "ionic_jacobian.py"), "ord",
                           "--check"], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
