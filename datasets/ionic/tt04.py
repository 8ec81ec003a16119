"""ten Tusscher, Noble, Noble and Panfilov 2004 human ventricular myocyte (17 states).

Am J Physiol Heart Circ Physiol 286:H1573-H1589 (2004), as in its CellML description
(the Physiome/Chaste files). States in the order the gating-RNN paper's data use: V (mV),
the gates Xr1, Xr2, Xs, m, h, j, d, f, fCa, s, r, the concentrations Ca_i, Ca_SR (mM), the
release gate g, Na_i and K_i (mM); time in ms; currents in pA/pF. ``celltype`` picks the
transient outward current's s gate (0 endocardial, 1 epicardial, 2 M cell: the epicardial and
M cells share it); the cells' conductances are parameter sets: ``M`` (g_Ks 0.062, g_to 0.294,
the default and the gating-RNN paper's code's), ``endo`` (0.245, 0.073) and ``epi`` (0.245,
0.294). fCa and g, the calcium-dependent inactivation of I_CaL and the release gate, may
not rise while V > -60 mV (the published model's rule): they are not classic gates.

The stimulus is positive depolarising (the project's convention): the paper's -52 pA/pF
pacing pulse is ``amplitude = 52`` here. The compiled equations are in
:mod:`ionops.datasets.ionic.tt04_kernels`; the same in array arithmetic (numpy or torch, the
model's ``vector_field`` and its currents) in :mod:`ionops.datasets.ionic.tt04_field`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic.base import IonicModel, check_celltype
from ionops.datasets.ionic.tt04_field import current_values, vector_field

STATE_NAMES = ("V", "Xr1", "Xr2", "Xs", "m", "h", "j", "d", "f", "fCa", "s", "r", "Ca_i",
               "Ca_SR", "g", "Na_i", "K_i")  # fmt: skip
STATE_UNITS = tuple("mV" if n == "V" else "mM" if n in {"Ca_i", "Ca_SR", "Na_i", "K_i"} else "1"
                    for n in STATE_NAMES)  # fmt: skip
PARAMETERS = {
    "celltype": 2.0,  # 0 endo, 1 epi, 2 M (the s gate)
    "g_Na": 14.838,  # nS/pF
    "g_K1": 5.405,
    "g_to": 0.294,
    "g_Kr": 0.096,
    "g_Ks": 0.062,
    "g_CaL": 0.000175,  # L/(F s)
    "K_NaCa": 1000.0,  # pA/pF
    "P_NaK": 1.362,  # pA/pF
    "g_pCa": 0.825,  # pA/pF
    "g_pK": 0.0146,
    "g_bNa": 0.00029,
    "g_bCa": 0.000592,
    "Na_o": 140.0,  # mM
    "K_o": 5.4,
    "Ca_o": 2.0,
    "a_rel": 0.016464,  # mM/ms
    "Vmax_up": 0.000425,  # mM/ms
    "V_leak": 8e-5,  # 1/ms
}
CELLTYPES = {0.0: "endocardial", 1.0: "epicardial", 2.0: "M cell"}
PARAMETER_SETS = {
    "M": {"celltype": 2.0, "g_Ks": 0.062, "g_to": 0.294},
    "endo": {"celltype": 0.0, "g_Ks": 0.245, "g_to": 0.073},
    "epi": {"celltype": 1.0, "g_Ks": 0.245, "g_to": 0.294},
}
# the published initial values (the CellML's)
INITIAL_STATE = (-86.2, 0.0, 1.0, 0.0, 0.0, 0.75, 0.75, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0002, 0.2,
                 1.0, 11.6, 138.3)  # fmt: skip
CURRENTS = ("I_Na", "I_CaL", "I_Kr", "I_Ks", "I_K1", "I_to", "I_NaCa", "I_NaK", "I_pCa",
            "I_pK", "I_bNa", "I_bCa", "I_rel", "I_up", "I_leak")  # fmt: skip
# Tolerances of its datasets: V to about 1e-5 mV, calcium to 1e-11 mM.
_RTOL = 1e-7
_ATOL = tuple(1e-5 if n == "V" else 1e-11 if n == "Ca_i" else 1e-9 for n in STATE_NAMES)


def check_parameters(values: dict[str, float]) -> None:
    """Reject a cell type other than 0 (endo), 1 (epi) or 2 (M)."""
    check_celltype("tt04", values, CELLTYPES)


def _published(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array(INITIAL_STATE)


def _current(index: int):  # type: ignore[no-untyped-def]
    def value(y: NDArray, p: NDArray) -> NDArray:
        states = np.asarray(y, dtype=np.float64)
        return np.asarray(current_values(states, np.asarray(p, dtype=np.float64))[index])

    return value


def model() -> IonicModel:
    return IonicModel(
        name="tt04",
        title="ten Tusscher-Noble-Noble-Panfilov 2004 (M cell by default)",
        state_names=STATE_NAMES,
        state_units=STATE_UNITS,
        parameters=PARAMETERS,
        kernels="ionops.datasets.ionic.tt04_kernels",
        initial_states={"published": _published},
        current_unit="pA/pF",
        tolerances=(_RTOL, _ATOL),
        parameter_check=check_parameters,
        gates=("m", "h", "j", "d", "f", "Xr1", "Xr2", "Xs", "r", "s"),
        observables=("V", "Ca_i"),
        vector_field=vector_field,
        currents={name: _current(k) for k, name in enumerate(CURRENTS)},
        parameter_sets=PARAMETER_SETS,
        notes={
            "celltype": "0 endocardial, 1 epicardial, 2 M cell (the s gate); the cells' "
            "conductances are the parameter sets M, endo, epi",
            "I_rel, I_up, I_leak": "fluxes in mM/ms",
        },
    )
