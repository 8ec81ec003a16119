"""Type-check ionops as it installs, whatever the install mode.

The package maps top-level folders under one import name (pyproject's
``package-dir``), which a type checker cannot follow from the source tree. This
builds that installed shape as a tree of symlinks under ``build/typecheck``
and runs mypy on it, so errors read ``ionops/datasets/store.py:12``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"__pycache__"}


def build_view(view: Path) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping: dict[str, str] = pyproject["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(view, ignore_errors=True)
    for package, folder in sorted(mapping.items()):
        destination = view.joinpath(*package.split("."))
        destination.mkdir(parents=True, exist_ok=True)
        for entry in sorted((ROOT / folder).iterdir()):
            if entry.name not in SKIP and not (destination / entry.name).exists():
                (destination / entry.name).symlink_to(entry)


def main() -> int:
    view = ROOT / "build" / "typecheck"
    build_view(view)
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    return subprocess.call([*command, "-p", "ionops"], cwd=view)


if __name__ == "__main__":
    sys.exit(main())
