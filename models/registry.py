"""Surrogate families by name: an unknown name is an error listing the known ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ionops.errors import UserError
from ionops.models.fno import FNO, FNOArchitecture

_FAMILIES: dict[str, Callable[..., nn.Module]] = {
    "fno": lambda **kwargs: FNO(FNOArchitecture(**kwargs)),
}


def surrogate_families() -> list[str]:
    return sorted(_FAMILIES)


def build_surrogate(family: str, arguments: dict[str, Any]) -> nn.Module:
    """Instantiate ``family`` from its constructor arguments (as stored in a checkpoint)."""
    if family not in _FAMILIES:
        raise UserError(
            f"unknown surrogate family {family!r}; known: {', '.join(surrogate_families())}"
        )
    return _FAMILIES[family](**arguments)
