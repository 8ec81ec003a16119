"""What an experiment needs to know of each ionic model before compiling it.

Reading an experiment must not compile the models (numba), so the facts the
schema and the families check at load time live here; a test keeps them
equal to the registry in :mod:`ionops.datasets.ionic`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFacts:
    n_states: int
    stimulus_name: str = "i_app"


IONIC_MODELS = {
    "fhn": ModelFacts(2),
    "fhn_werneck": ModelFacts(2, stimulus_name="k"),
    "hh": ModelFacts(4),
    "ord": ModelFacts(41),
}
