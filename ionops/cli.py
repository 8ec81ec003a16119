"""The ``ionops`` command line: one console script, one subcommand per capability.

Each subcommand lives beside the code it drives and registers itself here
through a ``register(subparsers)`` function; heavy imports (torch, Ray,
MLflow) happen inside the handlers so ``ionops --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ionops import __version__
from ionops.errors import IonopsError, disk_full

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _subcommands() -> list[Register]:
    from ionops import config_cli
    from ionops.cluster import cli as cluster_cli
    from ionops.datasets import cli as datasets_cli
    from ionops.hpo import cli as hpo_cli
    from ionops.serving import cli as serving_cli
    from ionops.training import cli as training_cli

    return [
        datasets_cli.register,
        training_cli.register,
        hpo_cli.register,
        serving_cli.register,
        cluster_cli.register,
        config_cli.register,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ionops",
        description=(
            "Neural surrogates of stiff ionic models (cardiac and neuronal cells): generate "
            "datasets with a stiff solver, train, search hyperparameters (TPE with ASHA on "
            "Ray), retrain the best with several seeds, report, and predict, every run in "
            "MLflow. Surrogate families: " + ", ".join(_families()) + "."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ionops {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for register in _subcommands():
        register(subparsers)
    return parser


def _families() -> list[str]:
    """The surrogate families installed (entry points; nothing heavy is imported)."""
    from ionops.plugins import FAMILIES, declared

    return list(declared(FAMILIES))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input ends with its message and status 2, no traceback."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except IonopsError as exc:
        if not getattr(exc, "quiet", False):
            print(f"ionops: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ionops: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        where = disk_full(exc)
        if where is None:
            raise
        print(f"ionops: error: disk full{where or _fullest(argv)}: free some space and run the "
              "same command again (it continues where it stopped)", file=sys.stderr)  # fmt: skip
        return 2
    return status


def _fullest(argv: Sequence[str] | None) -> str:
    """`` at PATH (N kB free)``: of the places this command writes (the working folder, the
    paths it was given, the temporary folder), the one with the least room, where the error
    itself did not say which file it was writing."""
    import shutil
    import tempfile

    from ionops.workdir import default_workdir

    given = [Path(a.partition("=")[2] or a) for a in (sys.argv[1:] if argv is None else argv)
             if "/" in a or a.endswith((".h5", ".pt", ".png"))]  # fmt: skip
    room = {}
    for place in [default_workdir(), *given, Path(tempfile.gettempdir())]:
        existing = place.absolute()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        try:
            room[place] = shutil.disk_usage(existing).free
        except OSError:
            continue
    if not room:
        return ""
    place = min(room, key=lambda p: room[p])
    return f" at {place} ({room[place] // 1024} kB free)"


if __name__ == "__main__":
    sys.exit(main())
