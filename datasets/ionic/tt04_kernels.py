"""The compiled right-hand side and currents of :mod:`ionops.datasets.ionic.tt04`.

States (V, Xr1, Xr2, Xs, m, h, j, d, f, fCa, s, r, Ca_i, Ca_SR, g, Na_i, K_i); parameters
in the order of :data:`ionops.datasets.ionic.tt04.PARAMETERS`. The applied current is
positive depolarising: the model's own stimulus current is -i_app (it enters dV/dt and, as
in the published model, the potassium balance). I_CaL's removable point at V = 0 goes
through z / (exp(z) - 1) with its series there.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

R, T, F = 8314.472, 310.0, 96485.3415  # mJ/(mol K), K, C/mmol
RTF = R * T / F
CM, V_C, V_SR = 0.185, 0.016404, 0.001094  # uF, um^3 (x 1e-3 as in the model's units)


@njit(cache=True, error_model="numpy")
def _z_over_expm1(z: float) -> float:
    """z / (exp(z) - 1), continuous at z = 0 where it is 1."""
    if abs(z) < 1e-6:
        return 1.0 - 0.5 * z + z * z / 12.0
    return z / math.expm1(z)


@njit(cache=True, error_model="numpy")
def currents(y: NDArray, p: NDArray, out: NDArray) -> None:
    """Every current at state ``y`` into ``out``: I_Na, I_CaL, I_Kr, I_Ks, I_K1, I_to, I_NaCa,
    I_NaK, I_pCa, I_pK, I_bNa, I_bCa (pA/pF) and I_rel, I_up, I_leak (mM/ms)."""
    v, xr1, xr2, xs, m, h, j, d, f, fca, s, r = y[0], y[1], y[2], y[3], y[4], y[5], y[6], \
        y[7], y[8], y[9], y[10], y[11]  # fmt: skip
    ca_i, ca_sr, g, na_i, k_i = y[12], y[13], y[14], y[15], y[16]
    g_na, g_k1, g_to, g_kr, g_ks, g_cal = p[1], p[2], p[3], p[4], p[5], p[6]
    k_naca, p_nak, g_pca, g_pk, g_bna, g_bca = p[7], p[8], p[9], p[10], p[11], p[12]
    na_o, k_o, ca_o, a_rel, vmax_up, v_leak = p[13], p[14], p[15], p[16], p[17], p[18]
    e_na = RTF * math.log(na_o / na_i)
    e_k = RTF * math.log(k_o / k_i)
    e_ks = RTF * math.log((k_o + 0.03 * na_o) / (k_i + 0.03 * na_i))
    e_ca = 0.5 * RTF * math.log(ca_o / ca_i)
    alpha_k1 = 0.1 / (1.0 + math.exp(0.06 * (v - e_k - 200.0)))
    beta_k1 = (3.0 * math.exp(0.0002 * (v - e_k + 100.0)) + math.exp(0.1 * (v - e_k - 10.0))) \
        / (1.0 + math.exp(-0.5 * (v - e_k)))  # fmt: skip
    root_ko = math.sqrt(k_o / 5.4)
    out[0] = g_na * m * m * m * h * j * (v - e_na)
    z = 2.0 * v / RTF
    out[1] = g_cal * d * f * fca * 2.0 * F * _z_over_expm1(z) * (ca_i * math.exp(z) - 0.341 * ca_o)
    out[2] = g_kr * root_ko * xr1 * xr2 * (v - e_k)
    out[3] = g_ks * xs * xs * (v - e_ks)
    out[4] = g_k1 * alpha_k1 / (alpha_k1 + beta_k1) * root_ko * (v - e_k)
    out[5] = g_to * r * s * (v - e_k)
    backward = math.exp(-0.65 * v / RTF)
    out[6] = k_naca * (math.exp(0.35 * v / RTF) * na_i**3 * ca_o
                       - backward * na_o**3 * ca_i * 2.5) \
        / ((87.5**3 + na_o**3) * (1.38 + ca_o) * (1.0 + 0.1 * backward))  # fmt: skip
    out[7] = p_nak * k_o / (k_o + 1.0) * na_i / (na_i + 40.0) \
        / (1.0 + 0.1245 * math.exp(-0.1 * v / RTF) + 0.0353 * math.exp(-v / RTF))  # fmt: skip
    out[8] = g_pca * ca_i / (ca_i + 0.0005)
    out[9] = g_pk * (v - e_k) / (1.0 + math.exp((25.0 - v) / 5.98))
    out[10] = g_bna * (v - e_na)
    out[11] = g_bca * (v - e_ca)
    out[12] = (a_rel * ca_sr * ca_sr / (0.25 * 0.25 + ca_sr * ca_sr) + 0.008232) * d * g
    out[13] = vmax_up / (1.0 + 0.00025 * 0.00025 / (ca_i * ca_i))
    out[14] = v_leak * (ca_sr - ca_i)


@njit(cache=True, error_model="numpy")
def rhs(t: float, y: NDArray, p: NDArray, i_app: float, dydt: NDArray) -> None:  # noqa: PLR0915
    v, xr1, xr2, xs, m, h, j, d, f, fca, s, r = y[0], y[1], y[2], y[3], y[4], y[5], y[6], \
        y[7], y[8], y[9], y[10], y[11]  # fmt: skip
    ca_i, ca_sr, g = y[12], y[13], y[14]
    out = np.empty(15)
    currents(y, p, out)
    i_na, i_cal, i_kr, i_ks, i_k1, i_to, i_naca, i_nak = out[0], out[1], out[2], out[3], \
        out[4], out[5], out[6], out[7]  # fmt: skip
    i_pca, i_pk, i_bna, i_bca, i_rel, i_up, i_leak = out[8], out[9], out[10], out[11], \
        out[12], out[13], out[14]  # fmt: skip
    i_stim = -i_app
    dydt[0] = -(i_k1 + i_to + i_kr + i_ks + i_cal + i_nak + i_na + i_bna + i_naca + i_bca
                + i_pk + i_pca + i_stim)  # fmt: skip

    # rapid delayed rectifier gates
    tau = 450.0 / (1.0 + math.exp((-45.0 - v) / 10.0)) * 6.0 / (1.0 + math.exp((v + 30.0) / 11.5))
    dydt[1] = (1.0 / (1.0 + math.exp((-26.0 - v) / 7.0)) - xr1) / tau
    tau = 3.0 / (1.0 + math.exp((-60.0 - v) / 20.0)) * 1.12 / (1.0 + math.exp((v - 60.0) / 20.0))
    dydt[2] = (1.0 / (1.0 + math.exp((v + 88.0) / 24.0)) - xr2) / tau
    tau = 1100.0 / math.sqrt(1.0 + math.exp((-10.0 - v) / 6.0)) \
        / (1.0 + math.exp((v - 60.0) / 20.0))  # fmt: skip
    dydt[3] = (1.0 / (1.0 + math.exp((-5.0 - v) / 14.0)) - xs) / tau

    # fast sodium gates
    inf = 1.0 / (1.0 + math.exp((-56.86 - v) / 9.03)) ** 2
    tau = (
        1.0
        / (1.0 + math.exp((-60.0 - v) / 5.0))
        * (0.1 / (1.0 + math.exp((v + 35.0) / 5.0)) + 0.1 / (1.0 + math.exp((v - 50.0) / 200.0)))
    )
    dydt[4] = (inf - m) / tau
    inf = 1.0 / (1.0 + math.exp((v + 71.55) / 7.43)) ** 2
    if v < -40.0:
        alpha_h = 0.057 * math.exp(-(v + 80.0) / 6.8)
        beta_h = 2.7 * math.exp(0.079 * v) + 310000.0 * math.exp(0.3485 * v)
        alpha_j = (-25428.0 * math.exp(0.2444 * v) - 6.948e-6 * math.exp(-0.04391 * v)) \
            * (v + 37.78) / (1.0 + math.exp(0.311 * (v + 79.23)))  # fmt: skip
        beta_j = 0.02424 * math.exp(-0.01052 * v) / (1.0 + math.exp(-0.1378 * (v + 40.14)))
    else:
        alpha_h = 0.0
        beta_h = 0.77 / (0.13 * (1.0 + math.exp((v + 10.66) / -11.1)))
        alpha_j = 0.0
        beta_j = 0.6 * math.exp(0.057 * v) / (1.0 + math.exp(-0.1 * (v + 32.0)))
    dydt[5] = (inf - h) * (alpha_h + beta_h)
    dydt[6] = (inf - j) * (alpha_j + beta_j)

    # L-type calcium gates
    alpha_d = 1.4 / (1.0 + math.exp((-35.0 - v) / 13.0)) + 0.25
    tau = alpha_d * 1.4 / (1.0 + math.exp((v + 5.0) / 5.0)) \
        + 1.0 / (1.0 + math.exp((50.0 - v) / 20.0))  # fmt: skip
    dydt[7] = (1.0 / (1.0 + math.exp((-5.0 - v) / 7.5)) - d) / tau
    tau = 1125.0 * math.exp(-((v + 27.0) ** 2) / 240.0) + 80.0 \
        + 165.0 / (1.0 + math.exp((25.0 - v) / 10.0))  # fmt: skip
    dydt[8] = (1.0 / (1.0 + math.exp((v + 20.0) / 7.0)) - f) / tau
    inf = (1.0 / (1.0 + (ca_i / 0.000325) ** 8) + 0.1 / (1.0 + math.exp((ca_i - 0.0005) / 0.0001))
           + 0.2 / (1.0 + math.exp((ca_i - 0.00075) / 0.0008)) + 0.23) / 1.46  # fmt: skip
    dydt[9] = 0.0 if (inf > fca and v > -60.0) else (inf - fca) / 2.0

    # transient outward gates: the endocardial s gate differs (celltype 0)
    if p[0] == 0.0:
        inf = 1.0 / (1.0 + math.exp((v + 28.0) / 5.0))
        tau = 1000.0 * math.exp(-((v + 67.0) ** 2) / 1000.0) + 8.0
    else:
        inf = 1.0 / (1.0 + math.exp((v + 20.0) / 5.0))
        tau = 85.0 * math.exp(-((v + 45.0) ** 2) / 320.0) \
            + 5.0 / (1.0 + math.exp((v - 20.0) / 5.0)) + 3.0  # fmt: skip
    dydt[10] = (inf - s) / tau
    tau = 9.5 * math.exp(-((v + 40.0) ** 2) / 1800.0) + 0.8
    dydt[11] = (1.0 / (1.0 + math.exp((20.0 - v) / 6.0)) - r) / tau

    # calcium handling
    buffer_c = 1.0 / (1.0 + 0.15 * 0.001 / (ca_i + 0.001) ** 2)
    buffer_sr = 1.0 / (1.0 + 10.0 * 0.3 / (ca_sr + 0.3) ** 2)
    inward = (i_cal + i_bca + i_pca - 2.0 * i_naca) / (2.0 * V_C * F) * CM
    dydt[12] = buffer_c * (i_leak - i_up + i_rel - inward)
    dydt[13] = buffer_sr * V_C / V_SR * (i_up - (i_rel + i_leak))
    if ca_i < 0.00035:
        inf = 1.0 / (1.0 + (ca_i / 0.00035) ** 6)
    else:
        inf = 1.0 / (1.0 + (ca_i / 0.00035) ** 16)
    dydt[14] = 0.0 if (inf > g and v > -60.0) else (inf - g) / 2.0

    # sodium and potassium
    dydt[15] = -(i_na + i_bna + 3.0 * i_nak + 3.0 * i_naca) / (V_C * F) * CM
    dydt[16] = -(i_k1 + i_to + i_kr + i_ks + i_pk + i_stim - 2.0 * i_nak) / (V_C * F) * CM
