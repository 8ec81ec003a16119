"""Surrogate families by name: an unknown name is an error listing the known ones.

Each name maps to the module that defines the family's ``FAMILY`` object,
imported on first use. Family modules are light (no torch at import), so the
experiment schema can list every family's sections in its discriminated union.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Any

from ionops.errors import UserError

if TYPE_CHECKING:
    from torch import nn

    from ionops.models.family import SurrogateFamily

_MODULES = {
    "fno": "ionops.models.families.fno",
    "mlp": "ionops.models.families.mlp",
}


def surrogate_families() -> list[str]:
    """The names of every registered family."""
    return sorted(_MODULES)


@cache
def get_family(name: str) -> SurrogateFamily:
    """The family registered under ``name``."""
    if name not in _MODULES:
        raise UserError(
            f"unknown surrogate family {name!r}; known: {', '.join(surrogate_families())}"
        )
    family: SurrogateFamily = importlib.import_module(_MODULES[name]).FAMILY
    return family


def all_families() -> list[SurrogateFamily]:
    return [get_family(name) for name in surrogate_families()]


def build_surrogate(family: str, arguments: dict[str, Any]) -> nn.Module:
    """Instantiate ``family`` from its constructor arguments (as stored in a checkpoint)."""
    return get_family(family).build(arguments)
