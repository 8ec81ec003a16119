"""Stimulus protocols: the paper's subsets per ionic model, and the samples drawn from them.

Every sample is I_app(t) = i for t <= T_stim, 0 afterwards, with i and T_stim
drawn uniformly in its subset's ranges (a fixed range like T_stim = 100 has
equal ends). Training counts are the paper's (3000 per model). The paper's
validation and test tables (its Tables 6, 9, 11: 375 samples each) use the
same subsets; their per-subset counts are derived here from the training
proportions by the largest-remainder rule, and FHN's extra ``t_fin`` subset
(i 0.3-3, T_stim = 100) has 50 samples in each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ionops.errors import UserError

SPLITS = ("train", "validation", "test")
PAPER_SPLIT_SIZES = {"train": 3000, "validation": 375, "test": 375}


@dataclass(frozen=True)
class Subset:
    """A family of protocols: i in [i_low, i_high], T_stim in [t_stim_low, t_stim_high] (ms)."""

    name: str
    i_low: float
    i_high: float
    t_stim_low: float
    t_stim_high: float

    def validate(self, t_end_ms: float) -> None:
        """Reject empty, reversed or out-of-horizon ranges, naming the subset and the value."""
        for label, low, high in (
            ("i", self.i_low, self.i_high),
            ("T_stim", self.t_stim_low, self.t_stim_high),
        ):
            if not (math.isfinite(low) and math.isfinite(high)):
                raise UserError(
                    f"subset '{self.name}': {label} range [{low}, {high}] is not finite"
                )
            if low > high:
                raise UserError(
                    f"subset '{self.name}': {label} range [{low}, {high}] is reversed; "
                    f"give it as low-high with low <= high"
                )
        if self.t_stim_low < 0:
            raise UserError(f"subset '{self.name}': T_stim {self.t_stim_low} ms is negative")
        if self.t_stim_high > t_end_ms:
            raise UserError(
                f"subset '{self.name}': T_stim up to {self.t_stim_high} ms lies beyond the "
                f"horizon T = {t_end_ms} ms; allowed: 0 <= T_stim <= T"
            )


def _no_stimulus(name: str = "t0") -> Subset:
    return Subset(name, 0.0, 0.0, 0.0, 0.0)


# (subset, training count) per model, in the paper's order.
PAPER_SUBSETS: dict[str, list[tuple[Subset, int]]] = {
    "fhn": [
        (_no_stimulus(), 20),
        (Subset("General", 0.1, 2.0, 0.01, 100.0), 2480),
        (Subset("nap", 1e-4, 0.01, 0.01, 100.0), 500),
    ],
    "hh": [
        (_no_stimulus(), 20),
        (Subset("General", 2.0, 10.0, 0.01, 100.0), 2380),
        (Subset("nap", 1e-4, 2.0, 0.01, 100.0), 100),
        (Subset("i_high", 50.0, 200.0, 0.01, 100.0), 300),
        (Subset("t_fin", 2.0, 30.0, 100.0, 100.0), 200),
    ],
    "ord": [
        (_no_stimulus(), 50),
        (Subset("General", 0.0, 20.0, 2.0, 5.0), 2050),
        (Subset("i_Mid", 1.1, 10.0, 2.0, 10.0), 300),
        (Subset("i_low", 0.0, 1.1, 0.0, 500.0), 300),
        (Subset("t_fin", 0.7, 1.1, 500.0, 500.0), 300),
    ],
}
# Subsets that exist only in FHN's validation and test sets, with their fixed counts.
EVALUATION_ONLY: dict[str, list[tuple[Subset, int]]] = {
    "fhn": [(Subset("t_fin", 0.3, 3.0, 100.0, 100.0), 50)],
}


def largest_remainder(weights: Sequence[float], total: int) -> list[int]:
    """Counts proportional to ``weights`` summing exactly to ``total`` (ties: first wins)."""
    if total <= 0 or sum(weights) <= 0:
        return [0] * len(weights)
    exact = [w * total / sum(weights) for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in order[: total - sum(counts)]:
        counts[k] += 1
    return counts


def paper_counts(model: str) -> dict[str, list[tuple[Subset, int]]]:
    """Per split, the (subset, count) list of the paper's dataset for ``model``."""
    if model not in PAPER_SUBSETS:
        raise UserError(f"no paper protocol for '{model}'; known: {', '.join(PAPER_SUBSETS)}")
    train = PAPER_SUBSETS[model]
    extra = EVALUATION_ONLY.get(model, [])
    tables = {"train": list(train)}
    for split in ("validation", "test"):
        remaining = PAPER_SPLIT_SIZES[split] - sum(count for _, count in extra)
        counts = largest_remainder([count for _, count in train], remaining)
        tables[split] = [(s, c) for (s, _), c in zip(train, counts, strict=True)] + list(extra)
    return tables


def scale_counts(
    tables: Mapping[str, list[tuple[Subset, int]]], fraction: float
) -> dict[str, list[tuple[Subset, int]]]:
    """Scale every count by ``fraction`` (rounded; a subset present stays present)."""
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"fraction = {fraction}: must be in (0, 1]")
    return {
        split: [(s, max(1, round(count * fraction)) if count else 0) for s, count in rows]
        for split, rows in tables.items()
    }


@dataclass(frozen=True)
class SampleTable:
    """The protocols of one split: per sample its subset index, i and T_stim (ms)."""

    subset: NDArray[np.int16]
    amplitude: NDArray[np.float64]
    t_stim: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.subset.size)


def draw_samples(
    tables: Mapping[str, list[tuple[Subset, int]]], subset_names: Sequence[str], seed: int
) -> dict[str, SampleTable]:
    """Draw i and T_stim uniformly per subset, one independent stream per split from ``seed``.

    Samples are grouped by subset in table order; ``subset_names`` fixes the
    label of each subset (the same across splits).
    """
    streams = np.random.SeedSequence(seed).spawn(len(SPLITS))
    samples = {}
    for split, stream in zip(SPLITS, streams, strict=True):
        rng = np.random.default_rng(stream)
        labels, amplitudes, t_stims = [], [], []
        for subset, count in tables[split]:
            labels.append(np.full(count, subset_names.index(subset.name), dtype=np.int16))
            amplitudes.append(rng.uniform(subset.i_low, subset.i_high, count))
            t_stims.append(rng.uniform(subset.t_stim_low, subset.t_stim_high, count))
        samples[split] = SampleTable(
            np.concatenate(labels), np.concatenate(amplitudes), np.concatenate(t_stims)
        )
    return samples


def stimulus_on_grid(
    amplitude: NDArray[np.float64], t_stim: NDArray[np.float64], t_grid: NDArray[np.float64]
) -> NDArray[np.float32]:
    """I_app on the grid for each sample: (n_samples, n_t), i where t <= T_stim, else 0."""
    on = t_grid[None, :] <= t_stim[:, None]
    return np.where(on, amplitude[:, None], 0.0).astype(np.float32)
