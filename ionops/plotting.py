"""What every report figure shares: written atomically, closed after saving, and what it
draws (``facts``: its seed, states, sample counts...) beside it as JSON, for readers and
tests that check a figure by its data rather than by eye."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def save_figure(figure: Any, path: Path, dpi: int = 120, facts: dict[str, Any] | None = None,
                tight: bool = True) -> Path:  # fmt: skip
    """Save ``figure`` to ``path`` through a temporary file (never a half PNG) and close it;
    ``facts``, where given, go to ``path`` with the suffix ``.json``; ``tight``: lay it out
    tightly first (False: the caller laid it out)."""
    import matplotlib.pyplot as plt

    if facts is not None:
        from ionops.workdir import write_json

        write_json(path.with_suffix(".json"), facts)

    if tight:
        figure.tight_layout()
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        figure.savefig(temporary, dpi=dpi)
        temporary.replace(path)
    finally:
        plt.close(figure)
        temporary.unlink(missing_ok=True)
    return path


SMALL_GROUP = 2  # samples up to which a group is drawn as points: a box of one or two misleads


def draw_groups(axis: Any, groups: Sequence[Any], labels: list[str]) -> list[str]:
    """Boxes of per-sample values, one per group, each labelled with its sample count; a
    group of one or two samples is drawn as its points instead. Returns how each was drawn
    (``box``, ``points`` or ``none``)."""
    drawn = []
    boxed = [k for k, group in enumerate(groups) if len(group) > SMALL_GROUP]
    if boxed:
        axis.boxplot([groups[k] for k in boxed], positions=[k + 1 for k in boxed])
    for k, group in enumerate(groups):
        if 0 < len(group) <= SMALL_GROUP:
            axis.scatter([k + 1] * len(group), group, color="tab:orange", zorder=3, s=20)
        drawn.append("box" if k in boxed else "points" if len(group) else "none")
    axis.set_xticks(range(1, len(groups) + 1),
                    [f"{label}\nn={len(group)}" for label, group in zip(labels, groups,
                                                                        strict=True)])  # fmt: skip
    return drawn


def mean_std(values: Sequence[float]) -> str:
    """A report table's cell for one score over seeds: mean ± sample standard deviation of the
    defined (finite) values, with how many seeds leave it undefined."""
    import math

    import numpy as np

    defined = [v for v in values if math.isfinite(v)]
    if not defined:
        return f"undefined in all {len(values)} seeds"
    spread = float(np.std(defined, ddof=1)) if len(defined) > 1 else 0.0
    text = f"{float(np.mean(defined)):.4g} ± {spread:.2g}"
    missing = len(values) - len(defined)
    return text + (f" (undefined in {missing} of {len(values)} seeds)" if missing else "")
