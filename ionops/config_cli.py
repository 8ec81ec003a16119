"""``ionops config``: show an experiment as it will run, after overrides and validation."""

from __future__ import annotations

import argparse

from ionops.config import dump_toml, load_experiment, shipped_experiments


def add_override_option(parser: argparse.ArgumentParser) -> None:
    """The ``--set section.key=value`` option shared by every command that reads an experiment."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one experiment value (repeatable), e.g. --set training.epochs=50",
    )


def add_experiment_argument(parser: argparse.ArgumentParser) -> None:
    """The positional EXPERIMENT argument: a shipped name or a TOML file."""
    parser.add_argument(
        "experiment",
        help=f"shipped experiment ({', '.join(shipped_experiments())}) or a TOML file",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show an experiment after overrides and validation",
        description="Print an experiment (a shipped name or a TOML file) as it will run.",
    )
    parser.add_argument(
        "experiment",
        nargs="?",
        help=f"shipped name ({', '.join(shipped_experiments())}) or path to a TOML file",
    )
    parser.add_argument("--list", action="store_true", help="list the shipped experiments")
    add_override_option(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(shipped_experiments()))
        return 0
    if args.experiment is None:
        print("ionops config: give an experiment (or --list)")
        return 2
    print(dump_toml(load_experiment(args.experiment, args.overrides)), end="")
    return 0
