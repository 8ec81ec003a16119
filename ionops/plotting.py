"""What every report figure shares: written atomically, closed after saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(figure: Any, path: Path, dpi: int = 120) -> Path:
    """Save ``figure`` to ``path`` through a temporary file (never a half PNG) and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        figure.savefig(temporary, dpi=dpi)
        temporary.replace(path)
    finally:
        plt.close(figure)
        temporary.unlink(missing_ok=True)
    return path
