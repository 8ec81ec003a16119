"""Plug-ins found by their entry points: surrogate families, dataset kinds, ionic models.

ionops declares its own in its ``pyproject.toml`` as any other distribution
would declare one of its own: an entry point ``NAME = "package.module:OBJECT"``
in the group ``ionops.families`` (a :class:`~ionops.models.family.SurrogateFamily`),
``ionops.dataset_kinds`` (a :class:`~ionops.datasets.kinds.DatasetKind`) or
``ionops.ionic_models`` (a function returning an :class:`~ionops.datasets.ionic.IonicModel`).
Installing a package that declares one adds it; nothing in ionops is edited.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ionops.errors import IonopsError, UserError

FAMILIES = "ionops.families"
DATASET_KINDS = "ionops.dataset_kinds"
IONIC_MODELS = "ionops.ionic_models"
_WHAT = {FAMILIES: "surrogate family", DATASET_KINDS: "dataset kind", IONIC_MODELS: "ionic model"}


@cache
def declared(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group`` by name; two different ones under one name are an error."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=group):
        other = found.get(point.name)
        if other is not None and other.value != point.value:
            raise IonopsError(f"two {_WHAT[group]} plug-ins are named {point.name!r}: "
                              f"{other.value} and {point.value}; uninstall one")  # fmt: skip
        found[point.name] = point
    if not found and group in _WHAT:
        raise IonopsError(f"no {_WHAT[group]} is declared (entry points {group!r}): ionops is "
                          "not installed; install it with `pip install -e .`")  # fmt: skip
    return dict(sorted(found.items()))


@cache
def load(group: str, name: str) -> Any:
    """The object the entry point ``name`` of ``group`` names, imported on first use."""
    points = declared(group)
    if name not in points:
        what = _WHAT[group]
        raise UserError(f"unknown {what} {name!r}; known: {', '.join(points)}. A new {what} is "
                        f"an object declared as an entry point in the group {group!r} of its "
                        "package (README: Adding a family)")  # fmt: skip
    return points[name].load()
