"""A small CellML 1.0 evaluator for tests: a model's right-hand side read from its MathML.

An independent reading of a published model (the file, not the project's code): components'
variables with their initial values, connections resolved to each variable's source, and
every equation evaluated in plain Python floats. Enough MathML for the cardiac models at
hand (arithmetic, power, root, exp, ln, floor, comparisons, and/or, piecewise, e-notation).
Units are not converted: the files state their equations in consistent units.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CELLML = "{http://www.cellml.org/cellml/1.0#}"
MATHML = "{http://www.w3.org/1998/Math/MathML}"


class CellML:
    """One CellML file: its states (in declaration order), their initial values, and the
    right-hand side ``rhs(t, states, overrides)``; ``overrides`` fixes any variable by name
    (``"membrane.i_Stim"``, or a parameter such as ``"rapid_time_dependent_potassium_
    current.g_Kr"``)."""

    def __init__(self, path: Path) -> None:
        root = ET.parse(path).getroot()
        self.initial: dict[str, float] = {}
        interfaces: dict[str, str] = {}
        self.definitions: dict[str, ET.Element] = {}
        self.derivatives: dict[str, ET.Element] = {}
        self.bound: set[str] = set()
        order: list[str] = []
        for component in root.iter(f"{CELLML}component"):
            name = component.get("name")
            for variable in component.iter(f"{CELLML}variable"):
                key = f"{name}.{variable.get('name')}"
                if variable.get("initial_value") is not None:
                    self.initial[key] = float(variable.get("initial_value", "nan"))
                interfaces[key] = (variable.get("public_interface", "") + "/"
                                   + variable.get("private_interface", ""))  # fmt: skip
            for math_block in component.iter(f"{MATHML}math"):
                for apply in math_block.findall(f"{MATHML}apply"):
                    left, right = list(apply)[1], list(apply)[2]
                    if left.tag == f"{MATHML}ci":
                        self.definitions[f"{name}.{left.text.strip()}"] = (name, right)
                    else:  # <apply><diff/><bvar><ci>t</ci></bvar><ci>x</ci></apply>
                        state = f"{name}.{left.find(f'{MATHML}ci').text.strip()}"
                        self.bound.add(f"{name}." + left.find(f"{MATHML}bvar").find(
                            f"{MATHML}ci").text.strip())  # fmt: skip
                        self.derivatives[state] = (name, right)
                        order.append(state)
        self.source: dict[str, str] = {}
        links: dict[str, set[str]] = {}
        for connection in root.iter(f"{CELLML}connection"):
            components = connection.find(f"{CELLML}map_components")
            c1, c2 = components.get("component_1"), components.get("component_2")
            for pair in connection.iter(f"{CELLML}map_variables"):
                a, b = f"{c1}.{pair.get('variable_1')}", f"{c2}.{pair.get('variable_2')}"
                links.setdefault(a, set()).add(b)
                links.setdefault(b, set()).add(a)
        defined = set(self.definitions) | set(self.derivatives) | set(self.initial) | self.bound
        for key in interfaces:
            self.source[key] = self._find_source(key, links, defined)
        self.states = order
        self.state_names = [s.split(".", 1)[1] for s in order]

    @staticmethod
    def _find_source(key: str, links: Mapping[str, set[str]], defined: set[str]) -> str:
        seen, frontier = {key}, [key]
        while frontier:
            current = frontier.pop()
            if current in defined:
                return current
            for other in links.get(current, ()):
                if other not in seen:
                    seen.add(other)
                    frontier.append(other)
        return key

    def initial_state(self) -> list[float]:
        return [self.initial[s] for s in self.states]

    def rhs(self, t: float, y: list[float], overrides: Mapping[str, float] | None = None,
            ) -> list[float]:  # fmt: skip
        values: dict[str, float] = {s: float(v) for s, v in zip(self.states, y, strict=True)}
        for key in self.bound:
            values[key] = float(t)
        fixed = dict(overrides or {})

        def value(key: str) -> float:
            key = self.source.get(key, key)
            if key in fixed:
                return fixed[key]
            if key in values:
                return values[key]
            if key in self.definitions:
                component, expression = self.definitions[key]
                values[key] = self._evaluate(expression, component, value)
                return values[key]
            if key in self.initial:
                return self.initial[key]
            raise KeyError(key)

        return [self._evaluate(self.derivatives[s][1], self.derivatives[s][0], value)
                for s in self.states]  # fmt: skip

    def _evaluate(self, node: ET.Element, component: str, value: Any) -> float:  # noqa: PLR0911
        tag = node.tag.removeprefix(MATHML)
        if tag == "ci":
            return float(value(f"{component}.{node.text.strip()}"))
        if tag == "cn":
            if node.get("type") == "e-notation":
                mantissa, exponent = [part.strip() for part in node.itertext() if part.strip()]
                return float(mantissa) * 10.0 ** float(exponent)
            return float("".join(node.itertext()).strip())
        if tag == "piecewise":
            for piece in node.findall(f"{MATHML}piece"):
                result, condition = list(piece)
                if self._evaluate(condition, component, value):
                    return self._evaluate(result, component, value)
            otherwise = node.find(f"{MATHML}otherwise")
            return self._evaluate(next(iter(otherwise)), component, value)
        if tag == "pi":
            return math.pi
        if tag == "true":
            return 1.0
        if tag == "false":
            return 0.0
        if tag != "apply":
            raise ValueError(f"MathML <{tag}> is not supported")
        operator, *arguments = list(node)
        name = operator.tag.removeprefix(MATHML)
        if name == "root":
            degree = node.find(f"{MATHML}degree")
            operand = next(a for a in arguments if a.tag != f"{MATHML}degree")
            n = self._evaluate(next(iter(degree)), component, value) if degree is not None else 2.0
            return self._evaluate(operand, component, value) ** (1.0 / n)
        if name == "log":
            base = node.find(f"{MATHML}logbase")
            operand = next(a for a in arguments if a.tag != f"{MATHML}logbase")
            b = self._evaluate(next(iter(base)), component, value) if base is not None else 10.0
            return math.log(self._evaluate(operand, component, value), b)
        args = [self._evaluate(a, component, value) for a in arguments]
        return _OPERATORS[name](*args)


def _minus(*a: float) -> float:
    return -a[0] if len(a) == 1 else a[0] - a[1]


def _product(*a: float) -> float:
    out = 1.0
    for x in a:
        out *= x
    return out


_OPERATORS: dict[str, Any] = {
    "plus": lambda *a: sum(a), "minus": _minus, "times": _product,
    "divide": lambda a, b: a / b, "power": lambda a, b: a**b, "exp": math.exp,
    "ln": math.log, "abs": abs, "floor": math.floor, "ceiling": math.ceil,
    "eq": lambda a, b: float(a == b), "neq": lambda a, b: float(a != b),
    "lt": lambda a, b: float(a < b), "gt": lambda a, b: float(a > b),
    "leq": lambda a, b: float(a <= b), "geq": lambda a, b: float(a >= b),
    "and": lambda *a: float(all(a)), "or": lambda *a: float(any(a)),
    "not": lambda a: float(not a), "tanh": math.tanh,
}  # fmt: skip
