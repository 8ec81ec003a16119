"""Compiled current kernels of the O'Hara-Rudy 2011 model (used by :mod:`.ord`).

The Na/Ca exchanger (Kang-Hilgemann form, shared by the myoplasm and the
subspace), the Na/K pump (original 2011 formulation) and the GHK-type flux,
written with x / expm1(x) so it is exact and smooth through V = 0.
"""

from __future__ import annotations

import math

from numba import njit

R, T, F = 8314.0, 310.0, 96485.0  # mJ/(mol K), K, C/mol
RTF = R * T / F  # mV


@njit(cache=True, error_model="numpy")
def x_over_expm1(x: float) -> float:
    """x / (exp(x) - 1), continuous at 0 where it equals 1."""
    if abs(x) < 1e-6:
        return 1.0 - 0.5 * x + x * x / 12.0
    return x / math.expm1(x)


@njit(cache=True, error_model="numpy")
def x_over_expm1_prime(x: float) -> float:
    """The derivative of :func:`x_over_expm1`, by its series where the quotient would cancel."""
    if abs(x) < 1e-4:
        return -0.5 + x / 6.0 - x * x * x / 180.0
    if x > 700.0:  # exp overflows; the derivative has vanished long before
        return 0.0
    em1 = math.expm1(x)
    return (em1 - x * math.exp(x)) / (em1 * em1)


@njit(cache=True, error_model="numpy")
def ghk(z: float, vfrt: float, inside: float, outside: float) -> float:
    """z^2 V F^2/(RT) (c_in e^{z V F/RT} - c_out) / (e^{z V F/RT} - 1), exact at V = 0."""
    return z * F * x_over_expm1(z * vfrt) * (inside * math.exp(z * vfrt) - outside)


@njit(cache=True, error_model="numpy")
def ncx_fluxes(v_frt, na_in, ca_in, nao, cao):
    """Na and Ca transport rates of the Na/Ca exchanger (Kang & Hilgemann form)."""
    kna1, kna2, kna3, kasymm = 15.0, 5.0, 88.12, 12.5
    wna, wca, wnaca, kcaon, kcaoff = 6.0e4, 6.0e4, 5.0e3, 1.5e6, 5.0e3
    hca = math.exp(0.167 * v_frt)
    hna = math.exp(0.5224 * v_frt)
    h1 = 1.0 + na_in / kna3 * (1.0 + hna)
    h2 = na_in * hna / (kna3 * h1)
    h3 = 1.0 / h1
    h4 = 1.0 + na_in / kna1 * (1.0 + na_in / kna2)
    h5 = na_in * na_in / (h4 * kna1 * kna2)
    h6 = 1.0 / h4
    h7 = 1.0 + nao / kna3 * (1.0 + 1.0 / hna)
    h8 = nao / (kna3 * hna * h7)
    h9 = 1.0 / h7
    h10 = kasymm + 1.0 + nao / kna1 * (1.0 + nao / kna2)
    h11 = nao * nao / (h10 * kna1 * kna2)
    h12 = 1.0 / h10
    k1 = h12 * cao * kcaon
    k2 = kcaoff
    k3p, k3pp = h9 * wca, h8 * wnaca
    k3 = k3p + k3pp
    k4p, k4pp = h3 * wca / hca, h2 * wnaca
    k4 = k4p + k4pp
    k5 = kcaoff
    k6 = h6 * ca_in * kcaon
    k7 = h5 * h2 * wna
    k8 = h8 * h11 * wna
    x1 = k2 * k4 * (k7 + k6) + k5 * k7 * (k2 + k3)
    x2 = k1 * k7 * (k4 + k5) + k4 * k6 * (k1 + k8)
    x3 = k1 * k3 * (k7 + k6) + k8 * k6 * (k2 + k3)
    x4 = k2 * k8 * (k4 + k5) + k3 * k5 * (k1 + k8)
    total = x1 + x2 + x3 + x4
    e1, e2, e3, e4 = x1 / total, x2 / total, x3 / total, x4 / total
    j_na = 3.0 * (e4 * k7 - e1 * k8) + e3 * k4pp - e2 * k3pp
    j_ca = e2 * k2 - e1 * k1
    return j_na, j_ca


@njit(cache=True, error_model="numpy")
def inak(v_frt, nai, ki, nao, ko, pnak):
    """Na/K pump current (uA/uF), original 2011 formulation."""
    k1p, k1m, k2p, k2m = 949.5, 182.4, 687.2, 39.4
    k3p, k3m, k4p, k4m = 1899.0, 79300.0, 639.0, 40.0
    knai = 9.073 * math.exp(-0.1550 * v_frt / 3.0)
    knao = 27.78 * math.exp((1.0 + 0.1550) * v_frt / 3.0)
    kki, kko, mgadp, mgatp, kmgatp = 0.5, 0.3582, 0.05, 9.8, 1.698e-7
    h, ep, khp, knap, kxkur = 1.0e-7, 4.2, 1.698e-7, 224.0, 292.0
    p = ep / (1.0 + h / khp + nai / knap + ki / kxkur)
    inner = (1.0 + nai / knai) ** 3 + (1.0 + ki / kki) ** 2 - 1.0
    outer = (1.0 + nao / knao) ** 3 + (1.0 + ko / kko) ** 2 - 1.0
    a1 = k1p * (nai / knai) ** 3 / inner
    b1 = k1m * mgadp
    a2 = k2p
    b2 = k2m * (nao / knao) ** 3 / outer
    a3 = k3p * (ko / kko) ** 2 / outer
    b3 = k3m * p * h / (1.0 + mgatp / kmgatp)
    a4 = k4p * mgatp / kmgatp / (1.0 + mgatp / kmgatp)
    b4 = k4m * (ki / kki) ** 2 / inner
    x1 = a4 * a1 * a2 + b2 * b4 * b3 + a2 * b4 * b3 + b3 * a1 * a2
    x2 = b2 * b1 * b4 + a1 * a2 * a3 + a3 * b1 * b4 + a2 * a3 * b4
    x3 = a2 * a3 * a4 + b3 * b2 * b1 + b2 * b1 * a4 + a3 * a4 * b1
    x4 = b4 * b3 * b2 + a3 * a4 * a1 + b2 * a4 * a1 + b3 * b2 * a1
    total = x1 + x2 + x3 + x4
    e1, e2, e3, e4 = x1 / total, x2 / total, x3 / total, x4 / total
    j_na = 3.0 * (e1 * a3 - e2 * b3)
    j_k = 2.0 * (e4 * b1 - e3 * a1)
    return pnak * (j_na + j_k)
