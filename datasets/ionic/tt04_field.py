"""ten Tusscher 2004's currents and right-hand side in array arithmetic (numpy or torch).

The same equations as the compiled :mod:`ionops.datasets.ionic.tt04_kernels`, written over
arrays of any batch shape (states along the first axis of ``y``), so that torch can
differentiate them: a learner scores its states through the model's own equations. Branches
are ``where``s whose both sides stay finite over the physiological range, and I_CaL's
removable point at V = 0 takes its series there, so neither values nor gradients are NaN.
Checked against the kernels at many states (``tests/test_tt04.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ionops.datasets.ionic.base import array_module
from ionops.datasets.ionic.tt04_kernels import CM, RTF, V_C, V_SR, F

_SERIES = 1e-6  # |z| below which z / (exp(z) - 1) is its series


def _z_over_expm1(z: Any) -> Any:
    xp = array_module(z)
    small = xp.abs(z) < _SERIES
    safe = xp.where(small, xp.ones_like(z), z)
    return xp.where(small, 1.0 - 0.5 * z + z * z / 12.0, safe / xp.expm1(safe))


def _sigmoid(xp: Any, x: Any) -> Any:
    """1 / (1 + exp(x)), the form the model's steady states take."""
    return 1.0 / (1.0 + xp.exp(x))


def current_values(y: Any, p: Any) -> tuple[Any, ...]:
    """(I_Na, I_CaL, I_Kr, I_Ks, I_K1, I_to, I_NaCa, I_NaK, I_pCa, I_pK, I_bNa, I_bCa) in pA/pF
    and (I_rel, I_up, I_leak) in mM/ms at states ``y`` (17, ...) and parameters ``p``."""
    v, xr1, xr2, xs, m, h, j, d, f, fca, s, r = (y[k] for k in range(12))
    ca_i, ca_sr, g, na_i, k_i = (y[k] for k in range(12, 17))
    g_na, g_k1, g_to, g_kr, g_ks, g_cal = (float(p[k]) for k in range(1, 7))
    k_naca, p_nak, g_pca, g_pk, g_bna, g_bca = (float(p[k]) for k in range(7, 13))
    na_o, k_o, ca_o, a_rel, vmax_up, v_leak = (float(p[k]) for k in range(13, 19))
    xp = array_module(v)
    e_na = RTF * xp.log(na_o / na_i)
    e_k = RTF * xp.log(k_o / k_i)
    e_ks = RTF * xp.log((k_o + 0.03 * na_o) / (k_i + 0.03 * na_i))
    e_ca = 0.5 * RTF * xp.log(ca_o / ca_i)
    alpha_k1 = 0.1 * _sigmoid(xp, 0.06 * (v - e_k - 200.0))
    beta_k1 = (3.0 * xp.exp(0.0002 * (v - e_k + 100.0)) + xp.exp(0.1 * (v - e_k - 10.0))) \
        * _sigmoid(xp, -0.5 * (v - e_k))  # fmt: skip
    root_ko = (k_o / 5.4) ** 0.5
    z = 2.0 * v / RTF
    backward = xp.exp(-0.65 * v / RTF)
    return (
        g_na * m**3 * h * j * (v - e_na),
        g_cal * d * f * fca * 2.0 * F * _z_over_expm1(z) * (ca_i * xp.exp(z) - 0.341 * ca_o),
        g_kr * root_ko * xr1 * xr2 * (v - e_k),
        g_ks * xs * xs * (v - e_ks),
        g_k1 * alpha_k1 / (alpha_k1 + beta_k1) * root_ko * (v - e_k),
        g_to * r * s * (v - e_k),
        k_naca
        * (xp.exp(0.35 * v / RTF) * na_i**3 * ca_o - backward * na_o**3 * ca_i * 2.5)
        / ((87.5**3 + na_o**3) * (1.38 + ca_o) * (1.0 + 0.1 * backward)),
        p_nak
        * k_o
        / (k_o + 1.0)
        * na_i
        / (na_i + 40.0)
        / (1.0 + 0.1245 * xp.exp(-0.1 * v / RTF) + 0.0353 * xp.exp(-v / RTF)),
        g_pca * ca_i / (ca_i + 0.0005),
        g_pk * (v - e_k) * _sigmoid(xp, (25.0 - v) / 5.98),
        g_bna * (v - e_na),
        g_bca * (v - e_ca),
        (a_rel * ca_sr * ca_sr / (0.25 * 0.25 + ca_sr * ca_sr) + 0.008232) * d * g,
        vmax_up / (1.0 + 0.00025 * 0.00025 / (ca_i * ca_i)),
        v_leak * (ca_sr - ca_i),
    )


def vector_field(y: Sequence[Any], i_app: Any, p: Sequence[float]) -> tuple[Any, ...]:
    """d/dt of the 17 states ``y`` (V, Xr1, Xr2, Xs, m, h, j, d, f, fCa, s, r, Ca_i, Ca_SR, g,
    Na_i, K_i) at the applied current ``i_app`` (positive depolarising, pA/pF)."""
    v, xr1, xr2, xs, m, h, j, d, f, fca, s, r = (y[k] for k in range(12))
    ca_i, ca_sr, g = y[12], y[13], y[14]
    xp = array_module(v)
    i_na, i_cal, i_kr, i_ks, i_k1, i_to, i_naca, i_nak, i_pca, i_pk, i_bna, i_bca, i_rel, \
        i_up, i_leak = current_values(y, p)  # fmt: skip
    i_stim = -i_app
    dv = -(i_k1 + i_to + i_kr + i_ks + i_cal + i_nak + i_na + i_bna + i_naca + i_bca + i_pk
           + i_pca + i_stim)  # fmt: skip

    tau = 450.0 * _sigmoid(xp, (-45.0 - v) / 10.0) * 6.0 * _sigmoid(xp, (v + 30.0) / 11.5)
    dxr1 = (_sigmoid(xp, (-26.0 - v) / 7.0) - xr1) / tau
    tau = 3.0 * _sigmoid(xp, (-60.0 - v) / 20.0) * 1.12 * _sigmoid(xp, (v - 60.0) / 20.0)
    dxr2 = (_sigmoid(xp, (v + 88.0) / 24.0) - xr2) / tau
    tau = 1100.0 / xp.sqrt(1.0 + xp.exp((-10.0 - v) / 6.0)) * _sigmoid(xp, (v - 60.0) / 20.0)
    dxs = (_sigmoid(xp, (-5.0 - v) / 14.0) - xs) / tau

    tau = _sigmoid(xp, (-60.0 - v) / 5.0) * (0.1 * _sigmoid(xp, (v + 35.0) / 5.0)
                                            + 0.1 * _sigmoid(xp, (v - 50.0) / 200.0))  # fmt: skip
    dm = (_sigmoid(xp, (-56.86 - v) / 9.03) ** 2 - m) / tau
    inf = _sigmoid(xp, (v + 71.55) / 7.43) ** 2
    low = v < -40.0
    rate_h = xp.where(low, 0.057 * xp.exp(-(v + 80.0) / 6.8) + 2.7 * xp.exp(0.079 * v)
                      + 310000.0 * xp.exp(0.3485 * v),
                      0.77 / 0.13 * _sigmoid(xp, (v + 10.66) / -11.1))  # fmt: skip
    alpha_j = (-25428.0 * xp.exp(0.2444 * v) - 6.948e-6 * xp.exp(-0.04391 * v)) * (v + 37.78) \
        * _sigmoid(xp, 0.311 * (v + 79.23))  # fmt: skip
    rate_j = xp.where(low, alpha_j + 0.02424 * xp.exp(-0.01052 * v)
                      * _sigmoid(xp, -0.1378 * (v + 40.14)),
                      0.6 * xp.exp(0.057 * v) * _sigmoid(xp, -0.1 * (v + 32.0)))  # fmt: skip
    dh = (inf - h) * rate_h
    dj = (inf - j) * rate_j

    alpha_d = 1.4 * _sigmoid(xp, (-35.0 - v) / 13.0) + 0.25
    tau = alpha_d * 1.4 * _sigmoid(xp, (v + 5.0) / 5.0) + _sigmoid(xp, (50.0 - v) / 20.0)
    dd = (_sigmoid(xp, (-5.0 - v) / 7.5) - d) / tau
    tau = 1125.0 * xp.exp(-((v + 27.0) ** 2) / 240.0) + 80.0 \
        + 165.0 * _sigmoid(xp, (25.0 - v) / 10.0)  # fmt: skip
    df = (_sigmoid(xp, (v + 20.0) / 7.0) - f) / tau
    inf = (1.0 / (1.0 + (ca_i / 0.000325) ** 8) + 0.1 * _sigmoid(xp, (ca_i - 0.0005) / 0.0001)
           + 0.2 * _sigmoid(xp, (ca_i - 0.00075) / 0.0008) + 0.23) / 1.46  # fmt: skip
    held = (inf > fca) & (v > -60.0)  # fCa and g may not rise while depolarised
    dfca = xp.where(held, 0.0 * fca, (inf - fca) / 2.0)

    if float(p[0]) == 0.0:  # the endocardial s gate
        inf = _sigmoid(xp, (v + 28.0) / 5.0)
        tau = 1000.0 * xp.exp(-((v + 67.0) ** 2) / 1000.0) + 8.0
    else:
        inf = _sigmoid(xp, (v + 20.0) / 5.0)
        tau = 85.0 * xp.exp(-((v + 45.0) ** 2) / 320.0) + 5.0 * _sigmoid(xp, (v - 20.0) / 5.0) \
            + 3.0  # fmt: skip
    ds = (inf - s) / tau
    tau = 9.5 * xp.exp(-((v + 40.0) ** 2) / 1800.0) + 0.8
    dr = (_sigmoid(xp, (20.0 - v) / 6.0) - r) / tau

    buffer_c = 1.0 / (1.0 + 0.15 * 0.001 / (ca_i + 0.001) ** 2)
    buffer_sr = 1.0 / (1.0 + 10.0 * 0.3 / (ca_sr + 0.3) ** 2)
    inward = (i_cal + i_bca + i_pca - 2.0 * i_naca) / (2.0 * V_C * F) * CM
    dca_i = buffer_c * (i_leak - i_up + i_rel - inward)
    dca_sr = buffer_sr * V_C / V_SR * (i_up - (i_rel + i_leak))
    inf = xp.where(ca_i < 0.00035, 1.0 / (1.0 + (ca_i / 0.00035) ** 6),
                   1.0 / (1.0 + (ca_i / 0.00035) ** 16))  # fmt: skip
    held = (inf > g) & (v > -60.0)
    dg = xp.where(held, 0.0 * g, (inf - g) / 2.0)

    dna_i = -(i_na + i_bna + 3.0 * i_nak + 3.0 * i_naca) / (V_C * F) * CM
    dk_i = -(i_k1 + i_to + i_kr + i_ks + i_pk + i_stim - 2.0 * i_nak) / (V_C * F) * CM
    return (dv, dxr1, dxr2, dxs, dm, dh, dj, dd, df, dfca, ds, dr, dca_i, dca_sr, dg, dna_i,
            dk_i)  # fmt: skip
