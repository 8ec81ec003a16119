"""The solver's sparse LU of I - c J against numpy's dense solve."""

import numpy as np
import pytest

from ionops.datasets import _sparse_lu
from ionops.datasets.ionic import get_ionic_model


def factor_and_solve(jac, c, b):
    factors = _sparse_lu.new_sparse_lu(jac.shape[0])
    _sparse_lu.choose_order(jac, factors.order)
    assert _sparse_lu.factor(jac, c, factors)
    x = b.copy()
    _sparse_lu.solve(factors, x)
    return x, factors


def ord_jacobian():
    """A finite-difference Jacobian of ORd mid-upstroke, where every gate couples to V."""
    model = get_ionic_model("ord")
    p = model.parameter_vector()
    y = model.initial_state(p)
    y[9] = 0.5  # m half open: INa couples m, h, j and V
    return np.column_stack([
        (model.derivative(0.0, y + step, 0.0, p) - model.derivative(0.0, y, 0.0, p)) / step[j]
        for j, step in enumerate(np.diag(1e-7 * np.maximum(np.abs(y), 1e-3)))
    ])  # fmt: skip


@pytest.mark.parametrize("c", [1e-3, 0.1, 10.0])
def test_solves_the_ord_newton_system(c):
    jac = ord_jacobian()
    b = np.random.default_rng(0).normal(size=jac.shape[0])
    x, factors = factor_and_solve(jac, c, b)
    np.testing.assert_allclose(x, np.linalg.solve(np.eye(jac.shape[0]) - c * jac, b), rtol=1e-9)
    # The hub, V (state 0), is eliminated last and the factors stay sparse.
    assert factors.order[-1] == 0
    assert factors.starts[0, -1] + factors.starts[1, -1] < 0.3 * jac.size


def test_pivots_where_the_diagonal_vanishes():
    # I - c J with c = 1 has zeros on the diagonal: only a row swap can factor it.
    jac = np.array([[1.0, 2.0, 0.0], [3.0, 1.0, 0.0], [0.0, 4.0, 2.0]])
    b = np.array([1.0, -2.0, 0.5])
    x, factors = factor_and_solve(jac, 1.0, b)
    np.testing.assert_allclose(x, np.linalg.solve(np.eye(3) - jac, b), rtol=1e-12)
    assert (factors.piv != np.arange(3)).any()


def test_random_sparse_systems():
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 17):
        jac = rng.normal(size=(n, n)) * (rng.random((n, n)) < 0.3)
        b = rng.normal(size=n)
        x, _ = factor_and_solve(jac, 0.7, b)
        np.testing.assert_allclose(x, np.linalg.solve(np.eye(n) - 0.7 * jac, b), atol=1e-10)


def test_a_singular_matrix_is_reported():
    factors = _sparse_lu.new_sparse_lu(2)
    assert not _sparse_lu.factor(np.eye(2), 1.0, factors)  # I - 1 * I = 0
