"""Dataset kinds: what an experiment's ``[data]`` section can describe, one plug-in each.

A kind gives its ``[data]`` schema (a pydantic section with a ``kind``
literal, the discriminator of the experiment's union), the generation spec of
a section (everything that determines the content), the plan that draws and
solves it over the MPI, journal and HDF5 path of
:func:`ionops.datasets.generate.generate`, and the default file name. Kinds
are found by entry point (group ``ionops.dataset_kinds``, see
:mod:`ionops.plugins`); the built-in ones are ``operator``
(:mod:`ionops.datasets.operator`) and ``point``, ``transition``,
``trajectory`` (:mod:`ionops.datasets.problem_kinds`). A kind module stays
light at import: reading an experiment loads every kind's section, so solvers
and numba are imported inside :meth:`DatasetKind.plan`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ionops import plugins

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ionops.datasets.generate import GenerationPlan


class DatasetKind(ABC):
    """One dataset kind; see the module docstring."""

    name: str
    section: ClassVar[type[BaseModel]]

    @abstractmethod
    def spec(self, data: Any) -> Any:
        """The generation spec of a validated ``[data]`` section of this kind: a frozen,
        picklable value with a ``kind`` and a ``manifest()`` of every setting."""

    @abstractmethod
    def plan(self, spec: Any) -> GenerationPlan:
        """Validate ``spec`` and draw its samples; every problem a :class:`UserError`."""

    @abstractmethod
    def file_name(self, data: Any) -> str:
        """The default file name of ``data``'s dataset: every setting of the content in it,
        spelled out or as a digest, so two settings never share a file."""

    def split_inputs(self, group: Any, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Each sample's inputs in one split of a file of this kind, by name: what
        ``ionops predict --inputs FILE`` reads. ``group`` is the split's open HDF5 group,
        ``attributes`` the file's root attributes. By default a table ``inputs`` whose
        columns the root attribute ``input_names`` names; none where the split has none."""
        if "inputs" not in group:
            return {}
        table = group["inputs"][...]
        return {str(name): table[:, k] for k, name in enumerate(attributes.get("input_names", []))}


def dataset_kinds() -> list[str]:
    """The names of every declared dataset kind."""
    return list(plugins.declared(plugins.DATASET_KINDS))


def get_kind(name: str) -> DatasetKind:
    """The dataset kind ``name``; an unknown one is an error listing the known ones."""
    kind: DatasetKind = plugins.load(plugins.DATASET_KINDS, name)
    return kind


def all_kinds() -> list[DatasetKind]:
    return [get_kind(name) for name in dataset_kinds()]
