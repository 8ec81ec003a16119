"""What every report figure shares: written atomically, closed after saving, and what it
draws (``facts``: its seed, states, sample counts...) beside it as JSON, for readers and
tests that check a figure by its data rather than by eye."""

from __future__ import annotations

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
