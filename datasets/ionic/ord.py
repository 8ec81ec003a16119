"""O'Hara-Rudy 2011 human ventricular myocyte (41 states), endocardial by default.

Equations of O'Hara, Virag, Varro and Rudy, PLoS Comput Biol 7(5):e1002061
(2011), as in the authors' original code (the original INaK formulation, ICaL
gates d and nca starting at 0). ``celltype`` selects the variant: 0
endocardial (default), 1 epicardial, 2 M cell. States are in the Rudy-lab
order (see :data:`STATE_NAMES`); V in mV, concentrations in mM, gates
dimensionless, Jrel fluxes in mM/ms; time in ms; currents in uA/uF. The
compiled equations are in :mod:`ionops.datasets.ionic.ord_kernels`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic.base import IonicModel, check_celltype
from ionops.datasets.ionic.paced import paced_steady_state

STATE_NAMES = (
    "v", "nai", "nass", "ki", "kss", "cai", "cass", "cansr", "cajsr",
    "m", "hf", "hs", "j", "hsp", "jp", "mL", "hL", "hLp",
    "a", "iF", "iS", "ap", "iFp", "iSp",
    "d", "ff", "fs", "fcaf", "fcas", "jca", "nca", "ffp", "fcafp",
    "xrf", "xrs", "xs1", "xs2", "xk1", "Jrelnp", "Jrelp", "CaMKt",
)  # fmt: skip
_CONCENTRATIONS = {"nai", "nass", "ki", "kss", "cai", "cass", "cansr", "cajsr", "CaMKt"}
STATE_UNITS = tuple(
    "mV" if name == "v"
    else "mM" if name in _CONCENTRATIONS
    else "mM/ms" if name.startswith("Jrel")
    else "1"
    for name in STATE_NAMES
)  # fmt: skip

# Parameter vector, in this order. Conductances are the endocardial bases; the
# cell-type factors of the original model apply on top of them.
PARAMETERS = {
    "celltype": 0.0,  # 0 endo, 1 epi, 2 M
    "nao": 140.0,  # mM
    "cao": 1.8,  # mM
    "ko": 5.4,  # mM
    "GNa": 75.0,  # mS/uF
    "GNaL": 0.0075,
    "Gto": 0.02,
    "PCa": 0.0001,  # cm/s
    "GKr": 0.046,
    "GKs": 0.0034,
    "GK1": 0.1908,
    "Gncx": 0.0008,
    "Pnak": 30.0,
    "GKb": 0.003,
    "PNab": 3.75e-10,
    "PCab": 2.5e-8,
    "GpCa": 0.0005,
}
CELLTYPES = {0.0: "endocardial", 1.0: "epicardial", 2.0: "M cell"}

ORIGINAL_INITIAL_STATE = (
    -87.0, 7.0, 7.0, 145.0, 145.0, 1.0e-4, 1.0e-4, 1.2, 1.2,
    0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0,
    0.0, 1.0, 1.0, 0.0, 1.0, 1.0,
    0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0,
    0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0,
)  # fmt: skip


def check_parameters(values: dict[str, float]) -> None:
    """Reject a cell type other than 0 (endo), 1 (epi) or 2 (M)."""
    check_celltype("ord", values, CELLTYPES)


def _original(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array(ORIGINAL_INITIAL_STATE)


def _paced(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return paced_steady_state(model(), p, np.array(ORIGINAL_INITIAL_STATE))


# The datasets' tolerances: rtol 2e-7 and per-state absolute tolerances of 2e-6 mV for V,
# 2e-11 mM for the calcium concentrations, 2e-9 for the rest. They keep V within 1e-2 mV and
# every state within 1e-3 of its range of CVODES at 1e-12 / 1e-10 on stimuli drawn from the
# paper's subsets (five times looser left 3.6e-2 mV); see tests/test_ord_accuracy.py.
_RTOL = 2e-7
_ATOL = tuple(
    2e-6 if name == "v" else 2e-11 if name in {"cai", "cass"} else 2e-9
    for name in STATE_NAMES
)  # fmt: skip


# the states of the form dx/dt = (x_inf(V) - x) / tau(V) (nca, driven by its own calcium
# balance, is not one)
GATES = ("m", "hf", "hs", "j", "hsp", "jp", "mL", "hL", "hLp", "a", "iF", "iS", "ap", "iFp",
         "iSp", "d", "ff", "fs", "fcaf", "fcas", "jca", "ffp", "fcafp", "xrf", "xrs", "xs1",
         "xs2", "xk1")  # fmt: skip


def model() -> IonicModel:
    return IonicModel(
        name="ord",
        title="O'Hara-Rudy 2011 (endocardial by default)",
        state_names=STATE_NAMES,
        state_units=STATE_UNITS,
        parameters=PARAMETERS,
        kernels="ionops.datasets.ionic.ord_kernels",
        initial_states={"paced": _paced, "original": _original},
        current_unit="uA/uF",
        tolerances=(_RTOL, _ATOL),
        parameter_check=check_parameters,
        gates=GATES,
        observables=("v", "cai"),
        notes={
            "celltype": "0 endocardial, 1 epicardial, 2 M cell",
            "paced": "1 Hz paced steady state: 1000 beats of 80 uA/uF for 0.5 ms from the "
            "original initial values",
        },
    )
