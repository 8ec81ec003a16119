"""Generate an ionic model's analytic Jacobian from its compiled right-hand side.

The right-hand side stays the one source of the equations: its Python body
(numba's ``py_func``) runs once on SymPy symbols, with ``math`` and the
compiled helpers it calls swapped for symbolic twins, SymPy differentiates
every output by every state, and the entries, after common-subexpression
elimination, become a numba function of the solver's Jacobian signature.

    python tools/ionic_jacobian.py ord            # writes datasets/ionic/ord_jacobian.py
    python tools/ionic_jacobian.py ord --check    # exit 1 if the file is stale

What the tracing needs of a right-hand side: straight-line arithmetic on the
states and parameters, ``math`` functions, ``max``, helpers that are numba
functions of the same kind, and cell-type switches written as
``_by_celltype(celltype, endo, epi, mid)`` (a Python ``if`` on a state or a
parameter cannot be traced). ``x_over_expm1`` keeps its own compiled series
near 0 and gets a compiled derivative of the same care.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path
from typing import Any

import sympy
from sympy.printing.pycode import PythonCodePrinter

from ionops.datasets.ionic import get_ionic_model

ROOT = Path(__file__).resolve().parents[1]


class XOverExpm1(sympy.Function):
    """x / (exp(x) - 1), evaluated by ``ord_currents.x_over_expm1`` (exact through 0)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return XOverExpm1Prime(self.args[0])


class XOverExpm1Prime(sympy.Function):
    """The derivative of x / (exp(x) - 1), evaluated by ``ord_currents.x_over_expm1_prime``."""


SYMBOLIC_MATH = types.SimpleNamespace(
    exp=sympy.exp,
    log=sympy.log,
    sqrt=sympy.sqrt,
    expm1=lambda x: sympy.exp(x) - 1,
)


def _by_celltype(celltype: Any, endo: Any, epi: Any, mid: Any) -> Any:
    return sympy.Piecewise(
        (epi, sympy.Eq(celltype, 1.0)), (mid, sympy.Eq(celltype, 2.0)), (endo, True)
    )


def _max(a: Any, b: Any) -> Any:
    return sympy.Piecewise((a, a >= b), (b, True))


SPECIAL = {"x_over_expm1": XOverExpm1, "_by_celltype": _by_celltype}


def symbolic_twin(function: Any) -> Any:
    """``function``'s Python body with its numba helpers, ``math`` and ``max`` made symbolic."""
    python = getattr(function, "py_func", function)
    names = dict(python.__globals__)
    for name in python.__code__.co_names:
        value = names.get(name)
        if name in SPECIAL:
            names[name] = SPECIAL[name]
        elif name == "math":
            names[name] = SYMBOLIC_MATH
        elif hasattr(value, "py_func"):
            names[name] = symbolic_twin(value)
    names["max"] = _max
    return types.FunctionType(python.__code__, names, python.__name__, python.__defaults__)


def trace(rhs: Any, n_states: int, n_parameters: int) -> tuple[list[Any], list[Any], list[Any]]:
    """(outputs, state symbols, parameter symbols) of one symbolic call of ``rhs``."""
    y = list(sympy.symbols(f"y0:{n_states}", real=True))
    p = list(sympy.symbols(f"p0:{n_parameters}", real=True))
    dydt: list[Any] = [None] * n_states
    symbolic_twin(rhs)(sympy.Symbol("t", real=True), y, p, sympy.Symbol("i_app", real=True), dydt)
    return [sympy.sympify(f) for f in dydt], y, p


class _Printer(PythonCodePrinter):  # type: ignore[misc]
    """Plain scalar Python that numba compiles: ``math`` calls, float literals, helpers by name."""

    def _print_XOverExpm1(self, expr: Any) -> str:
        return f"x_over_expm1({self._print(expr.args[0])})"

    def _print_XOverExpm1Prime(self, expr: Any) -> str:
        return f"x_over_expm1_prime({self._print(expr.args[0])})"

    def _print_Symbol(self, expr: Any) -> str:
        name = expr.name
        for prefix, array in (("y", "y"), ("p", "p")):
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                return f"{array}[{name[len(prefix) :]}]"
        return str(super()._print_Symbol(expr))


def generate(model_name: str) -> str:
    """The source of ``datasets/ionic/<model>_jacobian.py``."""
    model = get_ionic_model(model_name)
    outputs, y, _ = trace(model.rhs, model.n_states, len(model.parameters))
    entries = []
    for i, f in enumerate(outputs):
        free = f.free_symbols
        for j, state in enumerate(y):
            if state in free:
                derivative = sympy.diff(f, state)
                if derivative != 0:
                    entries.append((i, j, derivative))
    shared, reduced = sympy.cse([e for _, _, e in entries], symbols=sympy.numbered_symbols("x"))
    printer = _Printer({"fully_qualified_modules": True, "standard": "python3"})
    body = [f"    {name} = {printer.doprint(value)}" for name, value in shared]
    body += [
        f"    jac[{i}, {j}] = {printer.doprint(value)}"
        for (i, j, _), value in zip(entries, reduced, strict=True)
    ]
    return TEMPLATE.format(
        model=model_name,
        n_entries=len(entries),
        n_shared=len(shared),
        body="\n".join(body),
    )


TEMPLATE = '''"""The analytic Jacobian of the {model} right-hand side; generated, do not edit.

Written by ``python tools/ionic_jacobian.py {model}`` from the compiled
right-hand side in :mod:`ionops.datasets.ionic.{model}_kernels` ({n_entries} nonzero
entries, {n_shared} shared subexpressions); a test regenerates it and fails
when the equations changed without it.
"""

# ruff: noqa
# fmt: off
# mypy: ignore-errors
import math

from numba import njit

from ionops.datasets.ionic.ord_currents import x_over_expm1, x_over_expm1_prime


@njit(cache=True, error_model="numpy")
def jacobian(t, y, p, i_app, jac):
    jac[:, :] = 0.0
{body}
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an ionic model module under ionops.datasets.ionic")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    target = ROOT / "datasets" / "ionic" / f"{args.model}_jacobian.py"
    start = time.perf_counter()
    source = generate(args.model)
    if args.check:
        if not target.exists() or target.read_text() != source:
            print(f"{target} is stale: run python tools/ionic_jacobian.py {args.model}")
            return 1
        return 0
    target.write_text(source)
    print(f"wrote {target} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
