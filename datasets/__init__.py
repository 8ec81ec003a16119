"""Ionic models, stiff data generation and dataset loading (``ionops.datasets``).

Public surface (imported on first use, so the command line starts fast):

- ionic models: ``get_ionic_model``, ``available_models``, ``IonicModel``
- solving one protocol: ``solve``, ``SolverSettings``, ``SolveFailed``
- generating a dataset (MPI-parallel, resumable): ``generate``, ``GenerationSpec``
- the paper's protocols: ``paper_counts``, ``SPLITS``
- loading: ``load_dataset``, ``Dataset``, ``Normalizer``
"""

from typing import TYPE_CHECKING

from ionops._lazy import lazy_exports

_EXPORTS = {
    "GenerationSpec": "ionops.datasets.generate",
    "generate": "ionops.datasets.generate",
    "IonicModel": "ionops.datasets.ionic",
    "get_ionic_model": "ionops.datasets.ionic",
    "available_models": "ionops.datasets.ionic",
    "Dataset": "ionops.datasets.loading",
    "Normalizer": "ionops.datasets.loading",
    "load_dataset": "ionops.datasets.loading",
    "SPLITS": "ionops.datasets.protocols",
    "paper_counts": "ionops.datasets.protocols",
    "SolveFailed": "ionops.datasets.solver",
    "SolverSettings": "ionops.datasets.solver",
    "solve": "ionops.datasets.solver",
}
__all__ = [
    "SPLITS",
    "Dataset",
    "GenerationSpec",
    "IonicModel",
    "Normalizer",
    "SolveFailed",
    "SolverSettings",
    "available_models",
    "generate",
    "get_ionic_model",
    "load_dataset",
    "paper_counts",
    "solve",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ionops.datasets.generate import GenerationSpec, generate
    from ionops.datasets.ionic import IonicModel, available_models, get_ionic_model
    from ionops.datasets.loading import Dataset, Normalizer, load_dataset
    from ionops.datasets.protocols import SPLITS, paper_counts
    from ionops.datasets.solver import SolveFailed, SolverSettings, solve
