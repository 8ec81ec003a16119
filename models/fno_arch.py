"""The FNO's constructor arguments, their checks, the analytic parameter count and the caps.

Plain Python (no torch), so an experiment can be validated, and a search
space sized, without loading the network. :mod:`ionops.models.fno` builds it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ionops.errors import UserError

LIFT_HIDDEN = 128
PROJECT_HIDDEN = 128
LAYER_KINDS = ("classic", "mlp")
ACTIVATIONS = ("tanh", "relu", "gelu", "leaky_relu")
# The paper's constrained search keeps the spectral weights of its default
# configuration (d_v = 64, L = 4, k_max = 16) as a budget: 2 * 4 * 64^2 * 16.
SPECTRAL_BUDGET = 2 * 4 * 64 * 64 * 16


@dataclass(frozen=True)
class FNOArchitecture:
    """Constructor arguments of :class:`~ionops.models.fno.FNO` (what a checkpoint stores)."""

    d_v: int
    n_layers: int
    k_max: int
    activation: str
    n_pad: int
    layer: Literal["classic", "mlp"]
    n_states: int
    in_channels: int = 2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The paper's tuned configurations (DESIGN.md) on each model's dataset grid, with the
# parameter counts the paper reports for them.
PAPER_CONFIGURATIONS: dict[str, tuple[FNOArchitecture, int, int]] = {
    "FHN constrained": (FNOArchitecture(64, 5, 12, "gelu", 5, "mlp", 2), 571_138, 1260),
    "FHN unconstrained": (FNOArchitecture(224, 4, 20, "leaky_relu", 15, "mlp", 2), 8_691_298, 1260),
    "HH constrained": (FNOArchitecture(96, 5, 5, "gelu", 7, "mlp", 4), 626_180, 1260),
    "HH unconstrained": (FNOArchitecture(256, 4, 24, "leaky_relu", 15, "mlp", 4), 13_439_236, 1260),
    "ORd constrained": (FNOArchitecture(32, 5, 48, "gelu", 15, "classic", 41), 510_825, 10080),
    "ORd unconstrained": (FNOArchitecture(192, 5, 32, "gelu", 14, "mlp", 41), 12_407_465, 10080),
}


def validate(arch: FNOArchitecture, n_t: int | None = None) -> None:
    """Reject a configuration that cannot be built (for grids of ``n_t`` points); never clip."""
    if arch.d_v < 1:
        raise UserError(f"d_v = {arch.d_v}: must be >= 1")
    if arch.n_layers < 1:
        raise UserError(f"n_layers = {arch.n_layers}: must be >= 1")
    if arch.n_pad < 0:
        raise UserError(f"n_pad = {arch.n_pad}: must be >= 0")
    if arch.activation not in ACTIVATIONS:
        raise UserError(f"activation = {arch.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if arch.layer not in LAYER_KINDS:
        raise UserError(f"layer = {arch.layer!r}; choose one of {', '.join(LAYER_KINDS)}")
    if arch.n_states < 1:
        raise UserError(f"n_states = {arch.n_states}: must be >= 1")
    if arch.k_max < 1:
        raise UserError(f"k_max = {arch.k_max}: must be >= 1")
    if n_t is None:
        return
    available = (n_t + arch.n_pad) // 2 + 1
    if arch.k_max > available:
        raise UserError(
            f"k_max = {arch.k_max}: allowed 1..{available} for n_t = {n_t} with n_pad = "
            f"{arch.n_pad} (the real FFT of {n_t + arch.n_pad} points has {available} modes)"
        )


def parameter_count(arch: FNOArchitecture) -> int:
    """Trainable real parameters, each complex spectral weight counting as two (as the paper)."""
    d_v, n_states = arch.d_v, arch.n_states
    lift = arch.in_channels * LIFT_HIDDEN + LIFT_HIDDEN + LIFT_HIDDEN * d_v + d_v
    project = d_v * PROJECT_HIDDEN + PROJECT_HIDDEN + PROJECT_HIDDEN * n_states + n_states
    spectral = 2 * d_v * d_v * arch.k_max
    pointwise = d_v * d_v + d_v
    mlp = 2 * (d_v * d_v + d_v) if arch.layer == "mlp" else 0
    return lift + project + arch.n_layers * (spectral + pointwise + mlp)


def budget_k_max(d_v: int, n_layers: int, k_max_cap: int, budget: int = SPECTRAL_BUDGET) -> int:
    """The paper's rule: k_max = clamp(floor(B / (2 L d_v^2)), 1, k_max_cap)."""
    return max(1, min(k_max_cap, budget // (2 * n_layers * d_v * d_v)))


def total_cap_k_max(arch: FNOArchitecture, cap: int, k_max_cap: int) -> int:
    """The largest k_max <= k_max_cap whose whole model has at most ``cap`` parameters."""
    at_one = parameter_count(_with_k(arch, 1))
    if at_one > cap:
        raise UserError(
            f"parameter cap {cap:,} is below the {at_one:,} parameters of d_v = {arch.d_v}, "
            f"n_layers = {arch.n_layers} with k_max = 1; raise the cap or shrink d_v or n_layers"
        )
    per_mode = 2 * arch.d_v * arch.d_v * arch.n_layers
    return min(k_max_cap, 1 + (cap - at_one) // per_mode)


def _with_k(arch: FNOArchitecture, k_max: int) -> FNOArchitecture:
    values = arch.as_dict()
    values["k_max"] = k_max
    return FNOArchitecture(**values)


def flops_per_sample(arch: FNOArchitecture, n_t: int) -> float:
    """Approximate multiply-add FLOPs (x2) of one forward pass on ``n_t`` points."""
    n = n_t + arch.n_pad
    d_v = arch.d_v
    pointwise = 2.0 * n * (arch.in_channels * LIFT_HIDDEN + LIFT_HIDDEN * d_v)
    pointwise += 2 * n_t * (d_v * PROJECT_HIDDEN + PROJECT_HIDDEN * arch.n_states)
    per_layer = 2.0 * n * d_v * d_v * (1 + (2 if arch.layer == "mlp" else 0))
    per_layer += 8 * arch.k_max * d_v * d_v  # complex mode mixing
    per_layer += 2 * 5 * d_v * n * math.log2(max(n, 2))  # rfft + irfft
    return float(pointwise + arch.n_layers * per_layer)
