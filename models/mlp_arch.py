"""The MLP surrogate's constructor arguments, shapes, parameter count and candidate sets.

Plain Python (no torch), so an experiment's space can be checked and sized
without loading the network (:mod:`ionops.models.mlp` builds it).

A network is a sequence of hidden-layer widths, one activation each. Its
shape, after the paper's classes:

- ``square``: one hidden layer;
- ``rectangle``: every hidden layer of the same width;
- ``funnel``: widths that never shrink towards the output (not all equal);
- ``bottleneck``: widths that never grow towards the output (not all equal);
- ``diamond``: wider inside than at both ends (the authors' published results
  name these; the paper's text lists the other five);
- ``bowtie``: narrower inside than at both ends;
- ``irregular``: anything else (four or more layers going up and down).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SHAPES = ("square", "rectangle", "funnel", "bottleneck", "diamond", "bowtie", "irregular")
ACTIVATIONS = ("tanh", "relu", "gelu", "leaky_relu", "elu", "sigmoid", "silu")


@dataclass(frozen=True)
class MLPArchitecture:
    """Constructor arguments of :class:`~ionops.models.mlp.MLP` (what a checkpoint stores).

    ``in_low``/``in_high`` map each input to [-1, 1]; ``out_mean``/``out_std``
    scale the outputs back to physical units; with ``residual`` the first
    ``n_out`` inputs are added to the output (an update rule y -> y + f).
    """

    n_in: int
    widths: tuple[int, ...]
    activations: tuple[str, ...]
    n_out: int
    residual: bool = False
    in_low: tuple[float, ...] = ()
    in_high: tuple[float, ...] = ()
    out_mean: tuple[float, ...] = ()
    out_std: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_in": self.n_in, "widths": list(self.widths), "activations": list(self.activations),
            "n_out": self.n_out, "residual": self.residual, "in_low": list(self.in_low),
            "in_high": list(self.in_high), "out_mean": list(self.out_mean),
            "out_std": list(self.out_std),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MLPArchitecture:
        def floats(key: str) -> tuple[float, ...]:
            return tuple(float(v) for v in values.get(key, ()))

        return cls(
            n_in=int(values["n_in"]), widths=tuple(int(w) for w in values["widths"]),
            activations=tuple(str(a) for a in values["activations"]),
            n_out=int(values["n_out"]), residual=bool(values.get("residual", False)),
            in_low=floats("in_low"), in_high=floats("in_high"), out_mean=floats("out_mean"),
            out_std=floats("out_std"),
        )  # fmt: skip


def parameter_count(n_in: int, widths: Sequence[int], n_out: int) -> int:
    """Weights and biases of every linear layer: sum of (fan_in + 1) * fan_out."""
    sizes = [n_in, *widths, n_out]
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def shape_of(widths: Sequence[int]) -> str:  # noqa: PLR0911 (one return per shape)
    """The shape class of a sequence of hidden-layer widths (see the module docstring)."""
    widths = list(widths)
    if len(widths) == 1:
        return "square"
    steps = [b - a for a, b in itertools.pairwise(widths)]
    if all(step == 0 for step in steps):
        return "rectangle"
    if all(step >= 0 for step in steps):
        return "funnel"
    if all(step <= 0 for step in steps):
        return "bottleneck"
    inner, ends = widths[1:-1], (widths[0], widths[-1])
    if max(inner) > max(ends) and _unimodal(widths, peak=True):
        return "diamond"
    if min(inner) < min(ends) and _unimodal(widths, peak=False):
        return "bowtie"
    return "irregular"


def _unimodal(widths: list[int], peak: bool) -> bool:
    """Rises then falls (``peak``), or falls then rises."""
    signs = [b > a if peak else b < a for a, b in itertools.pairwise(widths) if b != a]
    turned = False
    for rising in signs:
        if not rising:
            turned = True
        elif turned:
            return False
    return True


def layouts(
    depths: Sequence[int],
    widths: Sequence[int],
    shapes: Sequence[str],
    max_neurons: int | None = None,
    fits: Any = None,
) -> list[tuple[int, ...]]:
    """Every width sequence of the given depths, widths and shapes, in a fixed order.

    ``max_neurons`` caps the sum of the widths; ``fits(layout)`` (a parameter
    cap, say) filters further.
    """
    found = []
    for depth in sorted(set(depths)):
        for layout in itertools.product(sorted(set(widths)), repeat=depth):
            if shape_of(layout) not in shapes:
                continue
            if max_neurons is not None and sum(layout) > max_neurons:
                continue
            if fits is not None and not fits(layout):
                continue
            found.append(layout)
    return found


def spread_candidates(
    layouts_: Sequence[tuple[int, ...]],
    activations: Sequence[str],
    count: int,
    seed: int,
) -> list[tuple[tuple[int, ...], tuple[str, ...]]]:
    """``count`` architectures spread evenly over shape and size (neuron count).

    Architectures (a layout and one activation per layer) are grouped by
    (shape, neurons). The groups are visited in turn, each giving one
    architecture drawn at random (``seed``) that was not drawn before, until
    ``count`` are chosen or none is left: shapes alternate, and each shape's
    sizes come in an order that halves the gaps (smallest, largest, middle,
    quarters...), so even a few candidates cover every shape and the range of
    sizes, and every group is as well represented as its size allows.
    """
    rng = random.Random(seed)
    groups: dict[tuple[str, int], list[tuple[tuple[int, ...], tuple[str, ...]]]] = {}
    for layout in layouts_:
        key = (shape_of(layout), sum(layout))
        members = groups.setdefault(key, [])
        members.extend((layout, acts) for acts in
                       itertools.product(activations, repeat=len(layout)))  # fmt: skip
    by_shape: dict[str, list[int]] = {}
    for shape, neurons in groups:
        by_shape.setdefault(shape, []).append(neurons)
    orders = {shape: [sorted(sizes)[i] for i in _spread_order(len(sizes))]
              for shape, sizes in by_shape.items()}  # fmt: skip
    shapes = [s for s in SHAPES if s in orders]
    keys = [(shape, orders[shape][level]) for level in range(max(map(len, orders.values())))
            for shape in shapes if level < len(orders[shape])]  # fmt: skip
    pools = [groups[key] for key in keys]
    for pool in pools:
        rng.shuffle(pool)
    chosen: list[tuple[tuple[int, ...], tuple[str, ...]]] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(pool.pop())
    return chosen


def _spread_order(n: int) -> list[int]:
    """0 .. n-1 ordered so that every prefix spreads evenly: ends first, then halving the gaps."""
    if n <= 2:
        return list(range(n))
    order, seen = [0, n - 1], {0, n - 1}
    parts = 2
    while len(order) < n:
        for k in range(1, parts, 2):
            index = round(k * (n - 1) / parts)
            if index not in seen:
                order.append(index)
                seen.add(index)
        parts *= 2
    return order


def joined(values: Sequence[Any]) -> str:
    """A layer sequence as one value for MLflow and CSV: (64, 32) -> "64-32"."""
    return "-".join(str(v) for v in values)


def split_widths(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in str(value).split("-"))


def split_activations(value: Any) -> tuple[str, ...]:
    return tuple(str(value).split("-"))
