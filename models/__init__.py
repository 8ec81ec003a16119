"""Surrogate families and their networks (``ionops.models``).

Public surface (imported on first use):

- ``SurrogateFamily``, ``TrialConfig``, ``Objective``: the plug-in every family provides
- ``get_family``, ``surrogate_families``, ``build_surrogate``: the registry of families
- ``FNO``, ``FNOArchitecture``: the FNO paper's network and its constructor arguments
- ``parameter_count``: the FNO's analytic count (complex weights count twice)
- ``budget_k_max``, ``total_cap_k_max``, ``SPECTRAL_BUDGET``: the FNO's parameter caps
- ``validate``: FNO configuration checks that name the bad value and the allowed range
- ``MLP``, ``MLPArchitecture``: the MLP surrogate and its constructor arguments
"""

from typing import TYPE_CHECKING

from ionops._lazy import lazy_exports

_EXPORTS = {
    "SurrogateFamily": "ionops.models.family",
    "TrialConfig": "ionops.models.family",
    "Objective": "ionops.models.family",
    "get_family": "ionops.models.registry",
    "surrogate_families": "ionops.models.registry",
    "build_surrogate": "ionops.models.registry",
    "FNO": "ionops.models.fno",
    "FNOArchitecture": "ionops.models.fno_arch",
    "SPECTRAL_BUDGET": "ionops.models.fno_arch",
    "budget_k_max": "ionops.models.fno_arch",
    "parameter_count": "ionops.models.fno_arch",
    "total_cap_k_max": "ionops.models.fno_arch",
    "validate": "ionops.models.fno_arch",
    "MLP": "ionops.models.mlp",
    "MLPArchitecture": "ionops.models.mlp_arch",
}
__all__ = [
    "FNO",
    "MLP",
    "SPECTRAL_BUDGET",
    "FNOArchitecture",
    "MLPArchitecture",
    "Objective",
    "SurrogateFamily",
    "TrialConfig",
    "budget_k_max",
    "build_surrogate",
    "get_family",
    "parameter_count",
    "surrogate_families",
    "total_cap_k_max",
    "validate",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ionops.models.family import Objective, SurrogateFamily, TrialConfig
    from ionops.models.fno import FNO
    from ionops.models.fno_arch import (
        SPECTRAL_BUDGET,
        FNOArchitecture,
        budget_k_max,
        parameter_count,
        total_cap_k_max,
        validate,
    )
    from ionops.models.mlp import MLP
    from ionops.models.mlp_arch import MLPArchitecture
    from ionops.models.registry import build_surrogate, get_family, surrogate_families
