"""``ionops generate``: a dataset of an ionic model's trajectories, in parallel under MPI."""

from __future__ import annotations

import argparse
from pathlib import Path

from ionops.config import load_experiment
from ionops.config_cli import add_experiment_argument, add_override_option
from ionops.errors import UserError
from ionops.workdir import dataset_path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate a dataset with the stiff solver (MPI-parallel under mpiexec)",
        description=(
            "Solve an experiment's [data] into an HDF5 file: the FNO paper's stimulus "
            "protocols of one ionic model (operator datasets), or an initial-value problem's "
            "point, transition or trajectory samples. Run under `mpiexec -n K` to use K ranks; "
            "the file is the same whatever K. An interrupted run continues when the same "
            "command is run again. --fraction, --n-t, --t-end, --seed, --rtol, --atol, --param and "
            "--initial-state set [data] keys of operator datasets; --set sets any."
        ),
    )
    add_experiment_argument(parser)
    parser.add_argument("--output", type=Path, help="HDF5 file (default: WORKDIR/data/NAME.h5)")
    parser.add_argument("--fraction", type=float, help="scale every subset count (0, 1]")
    parser.add_argument("--n-t", type=int, dest="n_t", help="grid points on [0, T]")
    parser.add_argument("--t-end", type=float, dest="t_end_ms", help="horizon T in ms")
    parser.add_argument("--seed", type=int, help="seed of the stimulus draws")
    parser.add_argument("--rtol", type=float, help="solver relative tolerance")
    parser.add_argument("--atol", type=float, help="solver absolute tolerance")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="override an ionic-model parameter, e.g. --param e=1.0 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--initial-state", help="one of the model's named initial states")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume", action="store_true",
        help="insist on continuing (a finished file is reported complete; rerunning without "
        "this continues too)",
    )  # fmt: skip
    mode.add_argument("--overwrite", action="store_true", help="discard what exists and start over")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_override_option(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from ionops.datasets.generate import generate, spec_from_config
    from ionops.datasets.parallel import world

    overrides = list(args.overrides)
    for option in ("fraction", "n_t", "t_end_ms", "seed", "rtol", "atol"):
        value = getattr(args, option)
        if value is not None:
            overrides.append(f"data.{option}={value}")
    if args.initial_state is not None:
        overrides.append(f'data.initial_state="{args.initial_state}"')
    for item in args.param:
        name, _, value = (part.strip() for part in item.partition("="))
        if not (name and value):
            raise UserError(f"--param {item!r}: give --param NAME=VALUE, e.g. --param e=1.0")
        overrides.append(f"data.parameters.{name}={value}")
    data = load_experiment(args.experiment, overrides).data
    spec = spec_from_config(data)
    output = args.output or dataset_path(data)
    report = generate(
        spec, output, overwrite=args.overwrite, resume=args.resume, progress=not args.no_progress
    )
    comm = world()
    if comm is None or comm.Get_rank() == 0:
        what = "trajectories" if report.unit == "traj" else "samples"
        if not report.written:
            print(f"{report.path}: complete ({report.n_samples} {what}), nothing to do")
        else:
            resumed = report.tasks - report.solved_now
            note = f", {resumed} taken from an interrupted run" if resumed else ""
            print(
                f"{report.path}: {report.n_samples} {what} ({report.solved_now} "
                f"{report.unit}s solved now{note}) in {report.seconds:.2f} s"
            )
    return 0
