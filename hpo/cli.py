"""``ionops tune``, ``ionops retrain`` and ``ionops report``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ionops.config import load_experiment
from ionops.config_cli import add_experiment_argument, add_override_option
from ionops.workdir import default_workdir


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tune = subparsers.add_parser(
        "tune",
        help="TPE/ASHA hyperparameter search on Ray Tune (resumable)",
        description=(
            "Search the experiment's space with TPE and ASHA on Ray Tune, one MLflow run per "
            "trial. Rerunning the same command in the same working folder continues an "
            "interrupted search (kill, Ctrl-C, SIGUSR1, a time limit); a complete one is not "
            "run again. Exit status 75: interrupted, resumable."
        ),
    )
    add_experiment_argument(tune)
    add_override_option(tune)
    _add_run_options(tune)
    tune.add_argument("--name", help="search name (default: EXPERIMENT-FAMILY-SPACE)")
    tune.add_argument(
        "--resume", action="store_true",
        help="insist on continuing an existing search (the default when one exists)",
    )  # fmt: skip
    tune.add_argument("--overwrite", action="store_true", help="start the named search over")
    tune.set_defaults(handler=_tune)

    retrain = subparsers.add_parser(
        "retrain",
        help="retrain a search's best configuration with five seeds (resumable)",
        description=(
            "Take the best trial of a finished search (same EXPERIMENT and --set as `ionops "
            "tune`), retrain it with several seeds in parallel on Ray, log one MLflow parent "
            "run with a child per seed, and print the mean ± std summary (the paper's Tables "
            "7/10/12). Rerunning continues an interrupted retraining. Exit status 75: "
            "interrupted, resumable."
        ),
    )
    add_experiment_argument(retrain)
    add_override_option(retrain)
    _add_run_options(retrain)
    retrain.add_argument("--name", help="the search's name (default: EXPERIMENT-FAMILY-SPACE)")
    retrain.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    retrain.add_argument(
        "--allow-unfinished", action="store_true",
        help="retrain the best trial so far of a search that has not finished",
    )  # fmt: skip
    retrain.set_defaults(handler=_retrain)

    report = subparsers.add_parser(
        "report",
        help="the paper's figures and tables from finished retrainings",
        description=(
            "Figures (training curves, errors by subset, example predictions, per-variable "
            "errors; with several experiments, errors/parameters/memory/time against the "
            "number of state variables) and Markdown/CSV tables from `ionops retrain`, written "
            "to a folder and logged to the retraining's MLflow run. Each EXPERIMENT takes the "
            "--set values given (the same for all)."
        ),
    )
    report.add_argument("experiments", nargs="+", metavar="EXPERIMENT",
                        help="shipped experiment names or TOML files")  # fmt: skip
    add_override_option(report)
    report.add_argument(
        "--name", action="append", default=[],
        help="each experiment's search name, in order (default: EXPERIMENT-FAMILY-SPACE)",
    )  # fmt: skip
    report.add_argument("--out", type=Path, help="output folder (default: WORKDIR/reports/...)")
    report.add_argument("--states", metavar="NAMES",
                        help="the states example figures draw, comma-separated "
                             "(default: all)")  # fmt: skip
    report.set_defaults(handler=_report)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="Ray cluster address host:port (default: local Ray)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--mixed-precision", action="store_true", help="bf16 autocast on GPU")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")


def _tune(args: argparse.Namespace) -> int:
    from ionops import tracking
    from ionops.errors import EXIT_INTERRUPTED, UserError
    from ionops.hpo.search import (
        SearchOptions,
        run_search,
        search_folder,
        search_name,
    )

    experiment = load_experiment(args.experiment, args.overrides)
    workdir = default_workdir()
    tracking.check_store(tracking.tracking_uri(workdir))  # before any folder is made
    name = search_name(experiment, args.name)
    if args.resume and not (search_folder(workdir, name) / "search.json").exists():
        raise UserError(f"--resume: no search '{name}' in {workdir / 'searches'} to continue")
    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite contradict each other; give one")
    options = SearchOptions(
        name=args.name, overwrite=args.overwrite, address=args.address, device=args.device,
        mixed_precision=args.mixed_precision, progress=not args.no_progress,
    )  # fmt: skip
    outcome = run_search(experiment, workdir, options)
    from ionops.models.registry import get_family

    print(_search_summary(outcome, get_family(experiment.family)))
    print(f"MLflow: {tracking.ui_command(workdir, *_mlflow_ids(outcome.folder / 'search.json'))}")
    if not outcome.complete:
        again = " ".join(["ionops", "tune", args.experiment,
                          *(f"--set {o}" for o in args.overrides),
                          *(["--name", args.name] if args.name else [])])  # fmt: skip
        print(f"the search stopped early; continue it with: {again}")
        return EXIT_INTERRUPTED
    return 0


def _search_summary(outcome: Any, family: Any, top: int = 5) -> str:
    counts: dict[str, int] = {}
    for trial in outcome.trials:
        counts[trial.outcome] = counts.get(trial.outcome, 0) + 1
    state = "complete" if outcome.complete else "INCOMPLETE"
    lines = ["", f"search {state}: {len(outcome.trials)} trials "
             + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))]  # fmt: skip
    ranked = sorted((t for t in outcome.trials if t.metric == t.metric), key=lambda t: t.metric)
    if ranked:
        metric = family.metric_of(outcome.metric)
        header = f"{'#':>4} {'trial':<10}{'outcome':>10}{'epochs':>8}{outcome.metric:>20}"
        lines.append(f"{header}  configuration")
        for trial in ranked[:top]:
            config = ", ".join(f"{k}={v}" for k, v in trial.point.items() if k not in _NOT_SHOWN)
            cells = f"{trial.index:>4} {trial.trial_id:<10}{trial.outcome:>10}{trial.epochs:>8}"
            value = metric.format(trial.metric, 4, 20)
            lines.append(f"{cells}{value}  {config}")
    if outcome.best is not None:
        best = outcome.best
        lines.append(f"best: #{best.index} {best.trial_id}, {best.point['parameter_count']:,} "
                     f"parameters ({outcome.folder / 'best.json'})")  # fmt: skip
    shown = min(top, len(ranked))
    if shown < len(outcome.trials):
        lines.append(f"(the best {shown} of {len(outcome.trials)} trials; every trial is "
                     "in trials.csv below, and in the MLflow UI under the search's parent "
                     "run)")  # fmt: skip
    lines.append(f"trials: {outcome.folder / 'trials.csv'}")
    return "\n".join(lines)


# recorded with every trial but no part of what distinguishes one configuration from another
_NOT_SHOWN = {"parameter_count", "k_max_derived", "weight_decay", "gamma"}


def _retrain(args: argparse.Namespace) -> int:
    from ionops import tracking
    from ionops.errors import EXIT_INTERRUPTED, UserError
    from ionops.hpo.outcome import experiment_of
    from ionops.hpo.retrain import RetrainOptions, run_retrain
    from ionops.hpo.search import search_folder, search_name

    if args.seeds < 1:
        raise UserError(f"--seeds = {args.seeds}: give at least 1")
    experiment = load_experiment(args.experiment, args.overrides)
    workdir = default_workdir()
    tracking.check_store(tracking.tracking_uri(workdir))  # before any folder is made
    folder = search_folder(workdir, search_name(experiment, args.name))
    if not (folder / "search.json").exists():
        raise UserError(f"no search in {folder}: run `ionops tune` with the same arguments first")
    searched = experiment_of(folder)
    if searched.model_dump() != experiment.model_dump():
        raise UserError(
            f"the search in {folder} ran a different experiment than the one given; pass the "
            "same EXPERIMENT and --set values as to `ionops tune` (or its --name)"
        )
    options = RetrainOptions(
        seeds=args.seeds, allow_unfinished=args.allow_unfinished, address=args.address,
        device=args.device, mixed_precision=args.mixed_precision, progress=not args.no_progress,
    )  # fmt: skip
    outcome = run_retrain(experiment, folder, workdir, options)
    if not outcome.complete:
        print(f"retraining stopped early ({len(outcome.per_seed)} of {len(outcome.seeds)} seeds "
              "done); run the same command again to continue")  # fmt: skip
        return EXIT_INTERRUPTED
    print()
    print((outcome.folder / "summary.md").read_text(), end="")
    print(f"summary: {outcome.folder / 'summary.md'} (and .csv, .json)")
    if outcome.model:
        print(f"model: {outcome.model['uri']} (seed {outcome.model['seed']}); predict with "
              f"`ionops predict --from {outcome.model['uri']} --input ...`")  # fmt: skip
    ids = _mlflow_ids(outcome.folder / "retrain.json")
    print(f"MLflow: {tracking.ui_command(workdir, *ids)}")
    return 0


def _mlflow_ids(state_file: Path) -> tuple[str | None, str | None]:
    """The MLflow experiment and parent run a search's or retraining's state names."""
    import json

    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    return state.get("mlflow_experiment_id"), state.get("parent_run_id")


def _report(args: argparse.Namespace) -> int:
    from ionops import tracking
    from ionops.errors import UserError
    from ionops.hpo.report import make_report
    from ionops.hpo.search import search_name

    if args.name and len(args.name) != len(args.experiments):
        raise UserError(f"--name given {len(args.name)} times for {len(args.experiments)} "
                        "experiments; give one per experiment or none")  # fmt: skip
    names = args.name or [None] * len(args.experiments)
    chosen = []
    for source, name in zip(args.experiments, names, strict=True):
        experiment = load_experiment(source, args.overrides)
        chosen.append((search_name(experiment, name), experiment))
    workdir = default_workdir()
    states = [name.strip() for name in args.states.split(",")] if args.states else None
    out = make_report(chosen, workdir, args.out, states)
    for summary in sorted(out.rglob("summary.md")):
        print(f"\n{summary.parent.name}: mean ± std over seeds\n{summary.read_text()}", end="")
    if (out / "models.md").exists():
        print(f"\n{(out / 'models.md').read_text()}", end="")
    print(f"\nreport: {out}")
    for path in sorted(out.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(out)}")
    print(f"MLflow (artifacts under each retraining run's report/): {tracking.ui_command(workdir)}")
    return 0
