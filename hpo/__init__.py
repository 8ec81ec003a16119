"""Hyperparameter search on Ray Tune with MLflow tracking (``ionops.hpo``).

Public surface so far (the search service itself is being built):

- ``hyperopt_space``, ``default_point``, ``configure``, ``check_space``,
  ``TrialConfig``: the unconstrained and constrained search spaces of an
  experiment, and a sampled point as a buildable FNO with its derived k_max
  and parameter count
"""

from typing import TYPE_CHECKING

from ionops._lazy import lazy_exports

_EXPORTS = {
    "TrialConfig": "ionops.hpo.spaces",
    "check_space": "ionops.hpo.spaces",
    "configure": "ionops.hpo.spaces",
    "default_point": "ionops.hpo.spaces",
    "hyperopt_space": "ionops.hpo.spaces",
}
__all__ = ["TrialConfig", "check_space", "configure", "default_point", "hyperopt_space"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ionops.hpo.spaces import (
        TrialConfig,
        check_space,
        configure,
        default_point,
        hyperopt_space,
    )
