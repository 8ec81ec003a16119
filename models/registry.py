"""Surrogate families by name: an unknown name is an error listing the known ones.

Families are plug-ins (:mod:`ionops.plugins`): each is the ``FAMILY`` object
of a module, declared as an entry point in the group ``ionops.families``
(ionops's own in its ``pyproject.toml``) and imported on first use. Family
modules are light (no torch at import), so the experiment schema can list
every family's sections in its discriminated union.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ionops import plugins

if TYPE_CHECKING:
    from torch import nn

    from ionops.models.family import SurrogateFamily


def surrogate_families() -> list[str]:
    """The names of every declared family."""
    return list(plugins.declared(plugins.FAMILIES))


def get_family(name: str) -> SurrogateFamily:
    """The family declared under ``name``."""
    family: SurrogateFamily = plugins.load(plugins.FAMILIES, name)
    return family


def all_families() -> list[SurrogateFamily]:
    return [get_family(name) for name in surrogate_families()]


def build_surrogate(family: str, arguments: dict[str, Any]) -> nn.Module:
    """Instantiate ``family`` from its constructor arguments (as stored in a checkpoint)."""
    return get_family(family).build(arguments)
