"""``ionops predict``: trajectories from a trained surrogate instead of the solver."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from ionops.config_cli import add_override_option
from ionops.errors import UserError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict trajectories with a trained surrogate (optionally against the solver)",
        description=(
            "Load a trained surrogate and predict the trajectories of the given inputs, in "
            "physical units, into a dataset file (its test split). The surrogate comes from "
            "the retraining of EXPERIMENT (same --set values as `ionops retrain`; its best "
            "seed by validation error unless --seed), or --from a retraining folder, a "
            "checkpoint file or an MLflow model URI (runs:/RUN_ID/surrogate, "
            "models:/NAME/VERSION). Inputs: --stimulus AMPLITUDE,T_STIM (operator "
            "surrogates), --input VALUES (any surrogate, in its input order or as "
            "name=value pairs), or --inputs FILE (CSV with a header, or a dataset file)."
        ),
    )
    parser.add_argument("experiment", nargs="?", metavar="EXPERIMENT",
                        help="shipped experiment or TOML file whose retraining to use")  # fmt: skip
    add_override_option(parser)
    parser.add_argument("--name", help="the search's name (default: EXPERIMENT-FAMILY-SPACE)")
    parser.add_argument("--from", dest="source", metavar="SOURCE",
                        help="retraining folder, checkpoint file or MLflow model URI")  # fmt: skip
    parser.add_argument("--seed", type=int, help="the retraining's seed (default: the best)")
    parser.add_argument("--stimulus", action="append", default=[], metavar="AMPLITUDE,T_STIM",
                        help="one stimulus protocol (repeatable)")  # fmt: skip
    parser.add_argument(
        "--input",
        dest="rows",
        action="append",
        default=[],
        metavar="VALUES",
        help="one sample's inputs: 0.5,0.02,0.3 or u0=0.5,w0=0.02,k=0.3",
    )
    parser.add_argument("--inputs", type=Path, metavar="FILE",
                        help="a CSV file (header: input names) or a dataset file")  # fmt: skip
    parser.add_argument("--split", help="the split of a dataset --inputs file (default: test)")
    parser.add_argument("--output", "-o", type=Path,
                        help="the prediction file (default: WORKDIR/predictions/...)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing prediction file")  # fmt: skip
    parser.add_argument("--compare", action="store_true",
                        help="also solve the inputs and print the errors")  # fmt: skip
    parser.add_argument("--plot", type=Path, metavar="FILE",
                        help="draw predictions (against the solver with --compare)")  # fmt: skip
    parser.add_argument(
        "--batch-size", type=int, help="samples per network call (default: fastest for the device)"
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--precision", default="float32",
                        help="float32 (default), float64 or bfloat16 (fastest on a GPU and on "
                             "a CPU with AMX; about 0.4%% from float32)")  # fmt: skip
    parser.add_argument("--ionic-model", help="refuse a surrogate of another ionic model")
    parser.add_argument("--n-t", type=int, help="refuse a surrogate on another number of points")
    parser.add_argument("--n-states", type=int, help="refuse a surrogate of another state count")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from ionops.serving.sources import load_surrogate
    from ionops.serving.surrogate import ExtrapolationWarning, keep_freed_memory

    source = _source(args)
    if args.plot is not None:
        _check_writable(args.plot, "--plot")
    surrogate = load_surrogate(source, seed=args.seed, tracking_uri=_tracking_uri(source))
    surrogate.check(args.ionic_model, args.n_t, args.n_states)
    rows, stored = _rows(args, surrogate)
    output = args.output or _default_output(source, surrogate)
    _check_writable(output, "--output")
    if output.exists() and not args.overwrite:
        raise UserError(f"--output {output} exists: give --overwrite to replace it, or another "
                        "--output")  # fmt: skip
    print(surrogate.describe())
    keep_freed_memory()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExtrapolationWarning)
        warnings.simplefilter("always", UserWarning)
        prediction = surrogate.predict(rows, batch_size=args.batch_size, device=args.device,
                                       precision=args.precision)  # fmt: skip
    for warning in caught:
        print(f"ionops: warning: {warning.message}", file=sys.stderr)
    if args.compare:
        same = stored is not None and stored.shape == prediction.states.shape
        surrogate.compare(prediction, stored if same else None)
        print(_error_table(prediction, "the dataset's solver trajectories" if same
                           else "the solver, run now", surrogate.family))  # fmt: skip
    options = {"batch_size": args.batch_size, "device": args.device, "precision": args.precision}
    surrogate.write(output, prediction, options)
    print(f"{len(prediction)} trajectories of {', '.join(prediction.state_names)} on "
          f"{prediction.time.size} points: {output}")  # fmt: skip
    if args.plot is not None:
        from ionops.serving.plots import prediction_figure

        prediction_figure(prediction, args.plot)
        print(f"figure: {args.plot}")
    return 0


def _source(args: argparse.Namespace) -> str:
    if (args.experiment is None) == (args.source is None):
        raise UserError("give an EXPERIMENT (its retraining) or --from SOURCE, not both")
    if args.source is not None:
        if args.overrides or args.name:
            raise UserError("--set and --name choose an experiment's retraining; with --from "
                            "the source says which surrogate")  # fmt: skip
        return str(args.source)
    from ionops.config import load_experiment
    from ionops.hpo.retrain import retrain_folder
    from ionops.hpo.search import search_name
    from ionops.workdir import default_workdir

    experiment = load_experiment(args.experiment, args.overrides)
    folder = retrain_folder(default_workdir(), search_name(experiment, args.name))
    if not (folder / "retrain.json").exists():
        raise UserError(f"no retraining in {folder}: run `ionops retrain` with the same "
                        "arguments first, or give --from")  # fmt: skip
    return str(folder)


def _tracking_uri(source: str) -> str | None:
    """The store an MLflow URI is read from: the working folder's (or $MLFLOW_TRACKING_URI)."""
    from ionops.serving.sources import MLFLOW_SCHEMES

    if not source.startswith(MLFLOW_SCHEMES):
        return None
    from ionops import tracking
    from ionops.workdir import default_workdir

    return tracking.tracking_uri(default_workdir())  # checked, not created, where it is read


def _rows(args: argparse.Namespace, surrogate: Any) -> tuple[Any, Any]:
    """The inputs asked for as rows in the surrogate's input order, and stored solver
    trajectories. A surrogate of no inputs predicts its one trajectory when none are given."""
    import numpy as np

    names = surrogate.input_names
    given = [bool(args.stimulus), bool(args.rows), args.inputs is not None]
    if not names and not any(given):
        return np.zeros((1, 0)), None
    if sum(given) != 1:
        raise UserError("give the inputs one way: --stimulus, --input or --inputs")
    if args.split is not None and args.inputs is None:
        raise UserError(f"--split {args.split}: it chooses the split of a dataset --inputs "
                        "file, and no --inputs was given")  # fmt: skip
    if args.inputs is not None:
        from ionops.serving.sources import read_inputs

        return read_inputs(
            args.inputs, names, args.split, surrogate.fixed_inputs, surrogate=surrogate
        )
    if args.stimulus and names != ["amplitude", "t_stim"]:
        raise UserError(f"--stimulus is for operator surrogates; this one takes "
                        f"{', '.join(names)}: use --input")  # fmt: skip
    texts = args.stimulus or args.rows
    flag = "--stimulus" if args.stimulus else "--input"
    rows = [_row(text, names, flag, surrogate.fixed_inputs) for text in texts]
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(names)), None


def _row(text: str, names: list[str], flag: str, fixed: dict[str, float]) -> list[float]:
    from ionops.serving.surrogate import check_fixed

    parts = [p.strip() for p in text.split(",") if p.strip()]
    if parts and all("=" in p for p in parts):
        pairs = dict(p.split("=", 1) for p in parts)
        pairs = {k.strip(): v.strip() for k, v in pairs.items()}
        held = {k: v for k, v in pairs.items() if k in fixed and k not in names}
        if sorted(set(pairs) - set(held)) != sorted(names):
            wanted = ", ".join(f"{n}=..." for n in names) or "no inputs"
            also = f" (it holds {', '.join(f'{k}={v:g}' for k, v in fixed.items())} fixed)"
            raise UserError(f"{flag} {text!r}: give {wanted}" + (also if fixed else ""))
        try:
            check_fixed(fixed, {k: float(v) for k, v in held.items()}, f"{flag} {text!r}")
        except ValueError:
            raise UserError(f"{flag} {text!r}: {','.join(held)} must be numbers") from None
        parts = [pairs[n] for n in names]
    if len(parts) != len(names):
        raise UserError(f"{flag} {text!r}: give {len(names)} values ({','.join(names)})")
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise UserError(f"{flag} {text!r}: {','.join(names)} must be numbers") from None


def _default_output(source: str, surrogate: Any) -> Path:
    from ionops.workdir import default_workdir

    label = Path(source.rstrip("/")).name.replace(":", "-") or surrogate.family.name
    return default_workdir() / "predictions" / f"{label}.h5"


def _check_writable(path: Path, flag: str) -> None:
    """Refuse an output that cannot be written before any work is done."""
    import os

    folder = path.parent if str(path.parent) else Path()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot create {folder} ({exc.strerror})") from None
    if path.is_dir() or not os.access(folder, os.W_OK):
        raise UserError(f"{flag} {path}: not a writable file path")


def _error_table(prediction: Any, against: str, family: Any) -> str:
    """Each error's mean over samples: over every state, then per state (rows); each shown as
    its family declares it."""
    means = prediction.error_means()
    keys = [k for k in means if "/" not in k]
    metrics = {k: family.metric_of(k) for k in keys}
    lines = [f"errors against {against} (mean over {len(prediction)} samples; "
             + "; ".join(f"{k}: {m.label}" for k, m in metrics.items()) + "):",
             "| state | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys),
             "| all | " + " | ".join(metrics[k].format(means[k]) for k in keys) + " |"]  # fmt: skip
    for name in prediction.state_names:
        cells = [metrics[k].format(means.get(f"{k}/{name}")) if metrics[k].per_state else ""
                 for k in keys]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    import numpy as np

    for key in keys:
        values = prediction.errors[key]
        if metrics[key].relative and np.isnan(values).any():
            undefined = int(np.isnan(values).any(axis=tuple(range(1, values.ndim))).sum())
            lines.append(f"{key}: undefined for {undefined} of {len(prediction)} samples (a "
                         "truth near zero: below 1% of a typical trajectory in some state), "
                         "left out of its mean; the absolute errors measure every "
                         "sample")  # fmt: skip
    return "\n".join(lines)
