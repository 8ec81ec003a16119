"""The compiled right-hand side of :mod:`ionops.datasets.ionic.ord` (O'Hara-Rudy 2011).

States and parameters are in the order of :data:`~ionops.datasets.ionic.ord.STATE_NAMES`
and :data:`~ionops.datasets.ionic.ord.PARAMETERS`. The applied current enters as
I_stim = -I_app (a positive I_app depolarises), in dV/dt and, as in the original code, in
dK_i/dt. The GHK-type fluxes (ICaL's three components, INab, ICab) are written with
x / expm1(x), so they are exact and smooth through their removable singularity at V = 0.
The analytic Jacobian is :mod:`ionops.datasets.ionic.ord_jacobian`, generated from this
right-hand side (``python tools/ionic_jacobian.py ord``).
"""

from __future__ import annotations

import math

from numba import njit
from numpy.typing import NDArray

from ionops.datasets.ionic.ord_currents import RTF, F, ghk, inak, ncx_fluxes
from ionops.datasets.ionic.ord_jacobian import jacobian

__all__ = ["jacobian", "rhs"]

# Cell geometry (cm, uL)
_L, _RAD = 0.01, 0.0011
_VCELL = 1000.0 * 3.14 * _RAD * _RAD * _L
_AGEO = 2.0 * 3.14 * _RAD * _RAD + 2.0 * 3.14 * _RAD * _L
_ACAP = 2.0 * _AGEO
_VMYO, _VNSR, _VJSR, _VSS = 0.68 * _VCELL, 0.0552 * _VCELL, 0.0048 * _VCELL, 0.02 * _VCELL
_KMCAMK = 0.15


@njit(cache=True, error_model="numpy")
def _gate(steady: float, value: float, tau: float) -> float:
    return (steady - value) / tau


@njit(cache=True, error_model="numpy")
def _by_celltype(celltype: float, endo: float, epi: float, mid: float) -> float:
    """The value of a cell-type-dependent factor (an expression, so the Jacobian's generator can
    differentiate through it)."""
    return epi if celltype == 1.0 else mid if celltype == 2.0 else endo


@njit(cache=True, error_model="numpy")
def rhs(t: float, y: NDArray, p: NDArray, i_app: float, dydt: NDArray) -> None:  # noqa: PLR0915
    # the states, in STATE_NAMES order
    v, nai, nass, ki, kss = y[0], y[1], y[2], y[3], y[4]
    cai, cass, cansr, cajsr = y[5], y[6], y[7], y[8]
    m, hf, hs, j, hsp, jp = y[9], y[10], y[11], y[12], y[13], y[14]
    ml, hl, hlp = y[15], y[16], y[17]
    a, i_f, i_s, ap, i_fp, i_sp = y[18], y[19], y[20], y[21], y[22], y[23]
    d, ff, fs, fcaf, fcas = y[24], y[25], y[26], y[27], y[28]
    jca, nca, ffp, fcafp = y[29], y[30], y[31], y[32]
    xrf, xrs, xs1, xs2, xk1 = y[33], y[34], y[35], y[36], y[37]
    jrelnp, jrelp, camkt = y[38], y[39], y[40]
    celltype, nao, cao, ko = p[0], p[1], p[2], p[3]
    i_stim = -i_app
    vfrt = v / RTF

    # CaMKII
    camkb = 0.05 * (1.0 - camkt) / (1.0 + 0.0015 / cass)
    camka = camkb + camkt
    f_camk = 1.0 / (1.0 + _KMCAMK / camka)

    ena = RTF * math.log(nao / nai)
    ek = RTF * math.log(ko / ki)
    eks = RTF * math.log((ko + 0.01833 * nao) / (ki + 0.01833 * nai))

    # INa
    mss = 1.0 / (1.0 + math.exp(-(v + 39.57) / 9.871))
    tm = 1.0 / (6.765 * math.exp((v + 11.64) / 34.77) + 8.552 * math.exp(-(v + 77.42) / 5.955))
    hss = 1.0 / (1.0 + math.exp((v + 82.90) / 6.086))
    thf = 1.0 / (1.432e-5 * math.exp(-(v + 1.196) / 6.285) + 6.149 * math.exp((v + 0.5096) / 20.27))
    ths = 1.0 / (0.009794 * math.exp(-(v + 17.95) / 28.05) + 0.3343 * math.exp((v + 5.730) / 56.66))
    tj = 2.038 + 1.0 / (
        0.02136 * math.exp(-(v + 100.6) / 8.281) + 0.3052 * math.exp((v + 0.9941) / 38.45)
    )
    hssp = 1.0 / (1.0 + math.exp((v + 89.1) / 6.086))
    h = 0.99 * hf + 0.01 * hs
    hp = 0.99 * hf + 0.01 * hsp
    i_na = p[4] * (v - ena) * m * m * m * ((1.0 - f_camk) * h * j + f_camk * hp * jp)

    # INaL
    mlss = 1.0 / (1.0 + math.exp(-(v + 42.85) / 5.264))
    hlss = 1.0 / (1.0 + math.exp((v + 87.61) / 7.488))
    hlssp = 1.0 / (1.0 + math.exp((v + 93.81) / 7.488))
    g_nal = p[5] * _by_celltype(celltype, 1.0, 0.6, 1.0)
    i_nal = g_nal * (v - ena) * ml * ((1.0 - f_camk) * hl + f_camk * hlp)

    # Ito
    ass = 1.0 / (1.0 + math.exp(-(v - 14.34) / 14.82))
    ta = 1.0515 / (
        1.0 / (1.2089 * (1.0 + math.exp(-(v - 18.4099) / 29.3814)))
        + 3.5 / (1.0 + math.exp((v + 100.0) / 29.3814))
    )
    iss = 1.0 / (1.0 + math.exp((v + 43.94) / 5.711))
    delta_epi = _by_celltype(celltype, 1.0, 1.0 - 0.95 / (1.0 + math.exp((v + 70.0) / 5.0)), 1.0)
    tif = (
        4.562
        + 1.0 / (0.3933 * math.exp(-(v + 100.0) / 100.0) + 0.08004 * math.exp((v + 50.0) / 16.59))
    ) * delta_epi
    tis = (
        23.62
        + 1.0
        / (0.001416 * math.exp(-(v + 96.52) / 59.05) + 1.780e-8 * math.exp((v + 114.1) / 8.079))
    ) * delta_epi
    aif = 1.0 / (1.0 + math.exp((v - 213.6) / 151.2))
    i_gate = aif * i_f + (1.0 - aif) * i_s
    assp = 1.0 / (1.0 + math.exp(-(v - 24.34) / 14.82))
    dti_develop = 1.354 + 1.0e-4 / (math.exp((v - 167.4) / 15.89) + math.exp(-(v - 12.23) / 0.2154))
    dti_recover = 1.0 - 0.5 / (1.0 + math.exp((v + 70.0) / 20.0))
    tifp = dti_develop * dti_recover * tif
    tisp = dti_develop * dti_recover * tis
    ip = aif * i_fp + (1.0 - aif) * i_sp
    g_to = p[6] * _by_celltype(celltype, 1.0, 4.0, 4.0)
    i_to = g_to * (v - ek) * ((1.0 - f_camk) * a * i_gate + f_camk * ap * ip)

    # ICaL, ICaNa, ICaK
    dss = 1.0 / (1.0 + math.exp(-(v + 3.940) / 4.230))
    td = 0.6 + 1.0 / (math.exp(-0.05 * (v + 6.0)) + math.exp(0.09 * (v + 14.0)))
    fss = 1.0 / (1.0 + math.exp((v + 19.58) / 3.696))
    tff = 7.0 + 1.0 / (0.0045 * math.exp(-(v + 20.0) / 10.0) + 0.0045 * math.exp((v + 20.0) / 10.0))
    tfs = 1000.0 + 1.0 / (
        0.000035 * math.exp(-(v + 5.0) / 4.0) + 0.000035 * math.exp((v + 5.0) / 6.0)
    )
    f = 0.6 * ff + 0.4 * fs
    tfcaf = 7.0 + 1.0 / (0.04 * math.exp(-(v - 4.0) / 7.0) + 0.04 * math.exp((v - 4.0) / 7.0))
    tfcas = 100.0 + 1.0 / (0.00012 * math.exp(-v / 3.0) + 0.00012 * math.exp(v / 7.0))
    afcaf = 0.3 + 0.6 / (1.0 + math.exp((v - 10.0) / 10.0))
    fca = afcaf * fcaf + (1.0 - afcaf) * fcas
    fp = 0.6 * ffp + 0.4 * fs
    fcap = afcaf * fcafp + (1.0 - afcaf) * fcas
    anca = 1.0 / (1000.0 / jca + (1.0 + 0.002 / cass) ** 4)
    phi_ca = ghk(2.0, vfrt, cass, 0.341 * cao)
    phi_na = ghk(1.0, vfrt, 0.75 * nass, 0.75 * nao)
    phi_k = ghk(1.0, vfrt, 0.75 * kss, 0.75 * ko)
    pca = p[7] * _by_celltype(celltype, 1.0, 1.2, 2.5)
    open_np = d * (f * (1.0 - nca) + jca * fca * nca) * (1.0 - f_camk)
    open_p = d * (fp * (1.0 - nca) + jca * fcap * nca) * f_camk * 1.1
    i_cal = pca * phi_ca * (open_np + open_p)
    i_cana = 0.00125 * pca * phi_na * (open_np + open_p)
    i_cak = 3.574e-4 * pca * phi_k * (open_np + open_p)

    # IKr
    xrss = 1.0 / (1.0 + math.exp(-(v + 8.337) / 6.789))
    txrf = 12.98 + 1.0 / (
        0.3652 * math.exp((v - 31.66) / 3.869) + 4.123e-5 * math.exp(-(v - 47.78) / 20.38)
    )
    txrs = 1.865 + 1.0 / (
        0.06629 * math.exp((v - 34.70) / 7.355) + 1.128e-5 * math.exp(-(v - 29.74) / 25.94)
    )
    axrf = 1.0 / (1.0 + math.exp((v + 54.81) / 38.21))
    xr = axrf * xrf + (1.0 - axrf) * xrs
    rkr = 1.0 / (1.0 + math.exp((v + 55.0) / 75.0)) / (1.0 + math.exp((v - 10.0) / 30.0))
    g_kr = p[8] * _by_celltype(celltype, 1.0, 1.3, 0.8)
    i_kr = g_kr * math.sqrt(ko / 5.4) * xr * rkr * (v - ek)

    # IKs
    xs1ss = 1.0 / (1.0 + math.exp(-(v + 11.60) / 8.932))
    txs1 = 817.3 + 1.0 / (
        2.326e-4 * math.exp((v + 48.28) / 17.80) + 0.001292 * math.exp(-(v + 210.0) / 230.0)
    )
    txs2 = 1.0 / (0.01 * math.exp((v - 50.0) / 20.0) + 0.0193 * math.exp(-(v + 66.54) / 31.0))
    ksca = 1.0 + 0.6 / (1.0 + (3.8e-5 / cai) ** 1.4)
    g_ks = p[9] * _by_celltype(celltype, 1.0, 1.4, 1.0)
    i_ks = g_ks * ksca * xs1 * xs2 * (v - eks)

    # IK1
    xk1ss = 1.0 / (1.0 + math.exp(-(v + 2.5538 * ko + 144.59) / (1.5692 * ko + 3.8115)))
    txk1 = 122.2 / (math.exp(-(v + 127.2) / 20.36) + math.exp((v + 236.8) / 69.33))
    rk1 = 1.0 / (1.0 + math.exp((v + 105.8 - 2.6 * ko) / 9.493))
    g_k1 = p[10] * _by_celltype(celltype, 1.0, 1.2, 1.3)
    i_k1 = g_k1 * math.sqrt(ko) * rk1 * xk1 * (v - ek)

    # INaCa (myoplasm 80 %, subspace 20 %)
    g_ncx = p[11] * _by_celltype(celltype, 1.0, 1.1, 1.4)
    j_na_i, j_ca_i = ncx_fluxes(vfrt, nai, cai, nao, cao)
    allo_i = 1.0 / (1.0 + (150.0e-6 / cai) ** 2)
    i_naca_i = 0.8 * g_ncx * allo_i * (j_na_i + 2.0 * j_ca_i)
    j_na_ss, j_ca_ss = ncx_fluxes(vfrt, nass, cass, nao, cao)
    allo_ss = 1.0 / (1.0 + (150.0e-6 / cass) ** 2)
    i_naca_ss = 0.2 * g_ncx * allo_ss * (j_na_ss + 2.0 * j_ca_ss)

    # INaK, background currents, sarcolemmal pump
    i_nak = inak(vfrt, nai, ki, nao, ko, p[12] * _by_celltype(celltype, 1.0, 0.9, 0.7))
    xkb = 1.0 / (1.0 + math.exp(-(v - 14.48) / 18.34))
    i_kb = p[13] * _by_celltype(celltype, 1.0, 0.6, 1.0) * xkb * (v - ek)
    i_nab = p[14] * ghk(1.0, vfrt, nai, nao)
    i_cab = p[15] * ghk(2.0, vfrt, cai, 0.341 * cao)
    i_pca = p[16] * cai / (0.0005 + cai)

    # Ca release (RyR), uptake (SERCA), transfer and diffusion
    release_scale = _by_celltype(celltype, 1.0, 1.0, 1.7)
    jrel_inf = 0.5 * 4.75 * -i_cal / (1.0 + (1.5 / cajsr) ** 8) * release_scale
    tau_rel = max(4.75 / (1.0 + 0.0123 / cajsr), 0.001)
    jrel_infp = 0.5 * 1.25 * 4.75 * -i_cal / (1.0 + (1.5 / cajsr) ** 8) * release_scale
    tau_relp = max(1.25 * 4.75 / (1.0 + 0.0123 / cajsr), 0.001)
    j_rel = (1.0 - f_camk) * jrelnp + f_camk * jrelp
    serca_scale = _by_celltype(celltype, 1.0, 1.3, 1.0)
    j_upnp = serca_scale * 0.004375 * cai / (cai + 0.00092)
    j_upp = serca_scale * 2.75 * 0.004375 * cai / (cai + 0.00092 - 0.00017)
    j_leak = 0.0039375 * cansr / 15.0
    j_up = (1.0 - f_camk) * j_upnp + f_camk * j_upp - j_leak
    j_tr = (cansr - cajsr) / 100.0
    j_diff_na = (nass - nai) / 2.0
    j_diff_k = (kss - ki) / 2.0
    j_diff = (cass - cai) / 0.2

    # Buffers
    cmdnmax = 0.05 * _by_celltype(celltype, 1.0, 1.3, 1.0)
    b_cai = 1.0 / (
        1.0 + cmdnmax * 0.00238 / (0.00238 + cai) ** 2 + 0.07 * 0.0005 / (0.0005 + cai) ** 2
    )
    b_cass = 1.0 / (
        1.0 + 0.047 * 0.00087 / (0.00087 + cass) ** 2 + 1.124 * 0.0087 / (0.0087 + cass) ** 2
    )
    b_cajsr = 1.0 / (1.0 + 10.0 * 0.8 / (0.8 + cajsr) ** 2)

    i_ion = (
        i_na + i_nal + i_to + i_cal + i_cana + i_cak + i_kr + i_ks + i_k1
        + i_naca_i + i_naca_ss + i_nak + i_nab + i_kb + i_pca + i_cab
    )  # fmt: skip
    a_f = _ACAP / F
    dydt[0] = -(i_ion + i_stim)
    dydt[1] = (
        -(i_na + i_nal + 3.0 * i_naca_i + 3.0 * i_nak + i_nab) * a_f / _VMYO
        + j_diff_na * _VSS / _VMYO
    )
    dydt[2] = -(i_cana + 3.0 * i_naca_ss) * a_f / _VSS - j_diff_na
    dydt[3] = (
        -(i_to + i_kr + i_ks + i_k1 + i_kb + i_stim - 2.0 * i_nak) * a_f / _VMYO
        + j_diff_k * _VSS / _VMYO
    )
    dydt[4] = -i_cak * a_f / _VSS - j_diff_k
    dydt[5] = b_cai * (
        -(i_pca + i_cab - 2.0 * i_naca_i) * a_f / (2.0 * _VMYO)
        - j_up * _VNSR / _VMYO
        + j_diff * _VSS / _VMYO
    )
    dydt[6] = b_cass * (
        -(i_cal - 2.0 * i_naca_ss) * a_f / (2.0 * _VSS) + j_rel * _VJSR / _VSS - j_diff
    )
    dydt[7] = j_up - j_tr * _VJSR / _VNSR
    dydt[8] = b_cajsr * (j_tr - j_rel)
    dydt[9] = _gate(mss, m, tm)
    dydt[10] = _gate(hss, hf, thf)
    dydt[11] = _gate(hss, hs, ths)
    dydt[12] = _gate(hss, j, tj)
    dydt[13] = _gate(hssp, hsp, 3.0 * ths)
    dydt[14] = _gate(hss, jp, 1.46 * tj)
    dydt[15] = _gate(mlss, ml, tm)
    dydt[16] = _gate(hlss, hl, 200.0)
    dydt[17] = _gate(hlssp, hlp, 600.0)
    dydt[18] = _gate(ass, a, ta)
    dydt[19] = _gate(iss, i_f, tif)
    dydt[20] = _gate(iss, i_s, tis)
    dydt[21] = _gate(assp, ap, ta)
    dydt[22] = _gate(iss, i_fp, tifp)
    dydt[23] = _gate(iss, i_sp, tisp)
    dydt[24] = _gate(dss, d, td)
    dydt[25] = _gate(fss, ff, tff)
    dydt[26] = _gate(fss, fs, tfs)
    dydt[27] = _gate(fss, fcaf, tfcaf)
    dydt[28] = _gate(fss, fcas, tfcas)
    dydt[29] = _gate(fss, jca, 75.0)
    dydt[30] = anca * 1000.0 - nca * jca
    dydt[31] = _gate(fss, ffp, 2.5 * tff)
    dydt[32] = _gate(fss, fcafp, 2.5 * tfcaf)
    dydt[33] = _gate(xrss, xrf, txrf)
    dydt[34] = _gate(xrss, xrs, txrs)
    dydt[35] = _gate(xs1ss, xs1, txs1)
    dydt[36] = _gate(xs1ss, xs2, txs2)
    dydt[37] = _gate(xk1ss, xk1, txk1)
    dydt[38] = (jrel_inf - jrelnp) / tau_rel
    dydt[39] = (jrel_infp - jrelp) / tau_relp
    dydt[40] = 0.05 * camkb * camka - 0.00068 * camkt
