"""Surrogate families: the Fourier neural operator, its parameter count, caps (``ionops.models``).

Public surface (imported on first use):

- ``FNO``, ``FNOArchitecture``: the paper's FNO and its constructor arguments
- ``parameter_count``: the analytic count (complex weights count twice)
- ``budget_k_max``, ``total_cap_k_max``, ``SPECTRAL_BUDGET``: the parameter caps
- ``validate``: configuration checks that name the bad value and the allowed range
- ``build_surrogate``, ``surrogate_families``: the registry of surrogate families
"""

from typing import TYPE_CHECKING

from ionops._lazy import lazy_exports

_EXPORTS = {
    "FNO": "ionops.models.fno",
    "FNOArchitecture": "ionops.models.fno",
    "SPECTRAL_BUDGET": "ionops.models.fno",
    "budget_k_max": "ionops.models.fno",
    "parameter_count": "ionops.models.fno",
    "total_cap_k_max": "ionops.models.fno",
    "validate": "ionops.models.fno",
    "build_surrogate": "ionops.models.registry",
    "surrogate_families": "ionops.models.registry",
}
__all__ = [
    "FNO",
    "SPECTRAL_BUDGET",
    "FNOArchitecture",
    "budget_k_max",
    "build_surrogate",
    "parameter_count",
    "surrogate_families",
    "total_cap_k_max",
    "validate",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ionops.models.fno import (
        FNO,
        SPECTRAL_BUDGET,
        FNOArchitecture,
        budget_k_max,
        parameter_count,
        total_cap_k_max,
        validate,
    )
    from ionops.models.registry import build_surrogate, surrogate_families
