"""The search: TPE (HyperOptSearch) and ASHA on Ray Tune, one MLflow run per trial, resumable.

A search lives in ``WORKDIR/searches/NAME``: ``search.json`` (the experiment
it runs and its MLflow parent run), ``asha.json`` (ASHA's rungs), ``tune/``
(Tune's experiment: trial states, checkpoints, TPE's history) and, once it
is complete, ``trials.csv`` and ``best.json``. Running the same command again
in the same place continues it; a finished search is not run twice.

The FNO paper's settings are the defaults: 200 trials, TPE with 20 random
starts and the experiment's own configuration first, ASHA on epochs with
grace period 250 and reduction factor 4 out of 1000 epochs (both scaled when
``training.epochs`` is changed), the mean validation value of the family's
search metric (``SurrogateFamily.metric``) minimised. ``search.strategy =
"candidates"`` trains the family's fixed candidate set instead, one trial per
candidate (with ``search.scheduler = "fifo"``, every one to the end).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ionops import tracking
from ionops.config import ExperimentConfig
from ionops.errors import UserError
from ionops.hpo.common import (
    check_home,
    connect_for,
    fit,
    gpus_per_trial,
    load_data,
    read_state,
    restored,
    restored_parts,
    run_config,
    start_parent,
    trainable,
)
from ionops.hpo.outcome import (
    STATE_FILE,
    SearchOutcome,
    TrialRecord,
    load_outcome,
    recorded_metric,
    write_trials,
)
from ionops.hpo.trainable import CANDIDATE, TrialPlan, search_metric, trial_point
from ionops.locks import LOCK_FILE, folder_lock
from ionops.models.points import check_points
from ionops.models.registry import get_family
from ionops.workdir import write_json

PAPER_EPOCHS = 1000


@dataclass(frozen=True)
class SearchOptions:
    """How to run a search, beside the experiment itself."""

    name: str | None = None
    overwrite: bool = False
    address: str | None = None
    device: str = "auto"
    mixed_precision: bool = False
    progress: bool = True


def search_name(experiment: ExperimentConfig, name: str | None = None) -> str:
    """``--name``, else the experiment's label and space (``fhn-fno-constrained``)."""
    if name:
        return name
    strategy = "-candidates" if experiment.search.strategy == "candidates" else ""
    return f"{experiment.label}-{experiment.search.space}{strategy}"


def search_folder(workdir: Path, name: str) -> Path:
    return workdir / "searches" / name


def asha_settings(experiment: ExperimentConfig) -> dict[str, int]:
    """ASHA's max_t, grace period and reduction factor, scaled from the paper's 1000 epochs."""
    epochs = experiment.training.epochs
    grace = experiment.search.grace_period * epochs / PAPER_EPOCHS
    grace_period = min(epochs, max(1, round(grace)))
    return {"max_t": epochs, "grace_period": grace_period,
            "reduction_factor": experiment.search.reduction_factor}  # fmt: skip


def run_search(
    experiment: ExperimentConfig, workdir: Path, options: SearchOptions = SearchOptions()
) -> SearchOutcome:
    """Run (or continue) the experiment's search and return what it has so far.

    One driver at a time: the search folder's lock refuses a second one.
    """
    name = search_name(experiment, options.name)
    folder = search_folder(workdir, name).resolve()
    with folder_lock(folder, "search"):
        if options.overwrite:
            _empty(folder)
        return _run_search(experiment, workdir, options, name, folder)


def _empty(folder: Path) -> None:
    """Remove everything in ``folder`` but its lock (which this process holds)."""
    for entry in folder.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _run_search(experiment: ExperimentConfig, workdir: Path, options: SearchOptions, name: str,
                folder: Path) -> SearchOutcome:  # fmt: skip
    from ionops.cluster.runtime import check_address
    from ionops.hpo.asha import rung_epochs, stopped_trials

    state = _read_state(folder, experiment, name)
    if state is not None and state.get("complete"):
        return load_outcome(folder)
    tracking.client(workdir)  # an MLflow server that does not answer: refused now
    check_address(options.address)  # and a Ray head that does not answer
    if state is not None:
        check_home(folder, state, workdir, "search")
        stopped_trials(folder / "asha.json")  # a damaged ASHA state: refused now, by name
    elif (folder / "tune").is_dir() and any((folder / "tune").iterdir()):
        raise UserError(
            f"the search in {folder} has Tune's state but no {STATE_FILE} (removed?): without "
            "it the search's MLflow runs cannot be found again; start it over with --overwrite"
        )
    family = get_family(experiment.family)
    data = load_data(experiment, workdir)
    family.check_data(experiment, data)
    search = experiment.search
    candidates = tuple(family.candidates(experiment)) if search.strategy == "candidates" else ()
    first_point = family.default_point(experiment) if not candidates else {}
    check_points(family, experiment, data, candidates, first_point)
    resources = connect_for(data, options.address)
    gpus = gpus_per_trial(experiment, resources.gpus)
    total = trial_count(experiment)
    concurrency = _concurrency(experiment, resources.cpus, resources.gpus, gpus)
    if state is None:  # written once the data and Ray are in place: a failed start leaves none
        state = _create_state(folder, experiment, workdir, name)
    asha = search.scheduler == "asha"
    plan = TrialPlan(
        experiment=experiment,
        checkpoint_every=search.checkpoint_every,
        threads=max(1, int(search.cpus_per_trial)),
        device=options.device,
        mixed_precision=options.mixed_precision,
        report_epochs=rung_epochs(**asha_settings(experiment)) if asha else frozenset(),
        candidates=candidates,
    )
    tuner = _tuner(experiment, folder, state, data, plan, concurrency, first_point,
                   gpus, workdir, options.progress)  # fmt: skip
    how = f"ASHA {asha_settings(experiment)}" if asha else "every trial to its last epoch"
    what = f"{len(candidates)} candidates" if candidates else f"{total} TPE trials"
    print(f"search {name}: {what}, {concurrency} at a time, {search.cpus_per_trial:g} CPU + "
          f"{gpus:g} GPU each; {how}; folder {folder}", flush=True)  # fmt: skip
    grid = fit(tuner, folder, workdir, state)
    trials = _records(grid, experiment, data, folder, candidates)
    complete = len(trials) == total and all(t.outcome != "unfinished" for t in trials)
    return _finish(folder, state, trials, complete, workdir)


def trial_count(experiment: ExperimentConfig) -> int:
    """How many trials the search runs: ``num_samples``, or the candidate set's size."""
    search = experiment.search
    return search.candidates if search.strategy == "candidates" else search.num_samples


def _concurrency(
    experiment: ExperimentConfig, cpus: float, gpus: float, gpus_per_trial: float
) -> int:
    search = experiment.search
    if search.max_concurrent != "auto":
        return int(search.max_concurrent)
    fits = math.floor(cpus / search.cpus_per_trial)
    if gpus_per_trial > 0:
        fits = min(fits, math.floor(gpus / gpus_per_trial))
    if fits < 1:
        raise UserError(
            f"a trial asks for {search.cpus_per_trial:g} CPUs and {gpus_per_trial:g} GPUs but "
            f"Ray holds {cpus:g} CPUs and {gpus:g} GPUs; lower search.cpus_per_trial or "
            "search.gpus_per_trial"
        )
    return min(fits, trial_count(experiment))


def _tuner(
    experiment: ExperimentConfig,
    folder: Path,
    state: dict[str, Any],
    data: Any,
    plan: TrialPlan,
    concurrency: int,
    first_point: dict[str, Any],
    gpus_per_trial: float,
    workdir: Path,
    progress: bool,
) -> Any:
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    from ionops.hpo.asha import FolderFIFO, PersistentASHA
    from ionops.hpo.runs import TrialRuns

    runnable = trainable(experiment, data, plan, gpus_per_trial)
    resumed = restored(folder, runnable, "search", workdir, state)
    if resumed is not None:
        kept, callbacks = restored_parts(resumed)
        runs_of = [c for c in callbacks if isinstance(c, TrialRuns)]
        if isinstance(kept, PersistentASHA) and runs_of:  # the hook is not pickled: again
            kept.before_decision = runs_of[0].log_now
        return resumed
    family = get_family(experiment.family)
    search = experiment.search
    metric = search_metric(experiment)
    scheduler = (
        PersistentASHA(folder / "asha.json", time_attr="epoch", **asha_settings(experiment))
        if search.scheduler == "asha" else FolderFIFO(folder)
    )  # fmt: skip

    def describe(config: dict[str, Any]) -> dict[str, Any]:
        return family.configure(trial_point(config, plan.candidates), experiment, data).record

    runs = TrialRuns(
        workdir, state["mlflow_experiment_id"], state["parent_run_id"],
        max_epochs=experiment.training.epochs, describe=describe, metric=metric,
        total=trial_count(experiment), show_progress=progress, stopped_file=folder / "asha.json",
    )  # fmt: skip
    if isinstance(scheduler, PersistentASHA):
        scheduler.before_decision = runs.log_now
    # reuse_actors: no new process, torch import and dataset fetch per trial
    settings: dict[str, Any] = {"metric": metric, "mode": "min", "scheduler": scheduler,
                                "reuse_actors": True}  # fmt: skip
    param_space: dict[str, Any] = {}
    if plan.candidates:
        param_space = {CANDIDATE: tune.grid_search(list(range(len(plan.candidates))))}
        settings.update(num_samples=1, max_concurrent_trials=concurrency)
    else:
        searcher = HyperOptSearch(
            space=family.hyperopt_space(experiment),
            metric=metric,
            mode="min",
            points_to_evaluate=[first_point],
            n_initial_points=max(search.n_initial_points, concurrency),
            random_state_seed=search.seed,
        )
        settings.update(search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrency),
                        num_samples=search.num_samples)  # fmt: skip
    return tune.Tuner(
        runnable,
        param_space=param_space,
        tune_config=tune.TuneConfig(**settings),
        run_config=run_config(folder, experiment, [runs]),
    )


def _open_state(
    folder: Path, experiment: ExperimentConfig, workdir: Path, name: str
) -> dict[str, Any]:
    """The search's state file: read (same experiment only) or created with its parent run."""
    return _read_state(folder, experiment, name) or _create_state(folder, experiment, workdir,
                                                                  name)  # fmt: skip


def _read_state(folder: Path, experiment: ExperimentConfig, name: str) -> dict[str, Any] | None:
    """The search's state file if there is one (refused if it ran another experiment)."""
    state = read_state(
        folder / STATE_FILE,
        "search",
        "start the search over with "
        "--overwrite (its trials are lost), or put back a copy of the file",
    )
    if state is None:
        return None
    wanted = experiment.model_dump(mode="json")
    recorded = _as_now(state["experiment"])
    if recorded != wanted:
        changed = _differences(recorded, wanted)
        raise UserError(
            f"search '{name}' in {folder} ran a different experiment ({changed}); "
            "continue it unchanged, pick another --name, or start over with --overwrite"
        )
    return state


def _as_now(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded experiment with the keys added since it was written at their defaults
    (a search started by an earlier version resumes unless a setting really differs)."""
    from pydantic import ValidationError

    try:
        return ExperimentConfig.model_validate(recorded).model_dump(mode="json")
    except (ValidationError, UserError, ValueError):
        return recorded


def _create_state(
    folder: Path, experiment: ExperimentConfig, workdir: Path, name: str
) -> dict[str, Any]:
    """A new search's state file and MLflow parent run (once everything else has started)."""
    parent = start_parent(workdir, experiment, "search", name,
                          experiment.model_dump(exclude_none=True))  # fmt: skip
    state = {"name": name, "experiment": experiment.model_dump(mode="json"), **parent,
             "complete": False, "metric": search_metric(experiment)}  # fmt: skip
    write_json(folder / STATE_FILE, state)
    return state


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _differences(a, b, f"{prefix}{key}.")
            if inner:
                changed.append(inner)
        elif a != b:
            changed.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return "; ".join(changed[:5])


def _records(grid: Any, experiment: ExperimentConfig, data: Any, folder: Path,
             candidates: tuple[dict[str, Any], ...]) -> list[TrialRecord]:  # fmt: skip
    from ionops.hpo.asha import stopped_trials

    family = get_family(experiment.family)
    metric_key = search_metric(experiment)
    epochs = experiment.training.epochs
    stopped = stopped_trials(folder / "asha.json")
    analysis = grid._experiment_analysis  # Tune's trials with their statuses
    records = []
    for trial in analysis.trials:
        last = trial.last_result or {}
        reached = int(last.get("epoch", 0))
        if trial.status == "ERROR":
            outcome = "errored"
        elif reached >= epochs:
            outcome = "completed"
        elif trial.trial_id in stopped:
            outcome = "stopped"
        else:
            outcome = "unfinished"
        metric = float(last.get(metric_key, math.nan))
        if outcome == "stopped" and math.isfinite(stopped[trial.trial_id][1]):
            reached, metric = stopped[trial.trial_id]  # as ASHA stopped it, whatever Tune kept
        point = family.configure(trial_point(trial.config, candidates), experiment, data).record
        index = int(trial.experiment_tag.split("_", 1)[0])
        seconds = float(last.get("validation/eval_seconds", math.nan))
        records.append(TrialRecord(index, trial.trial_id, outcome, reached, metric, point,
                                   seconds))  # fmt: skip
    return sorted(records, key=lambda r: r.index)


def _finish(
    folder: Path,
    state: dict[str, Any],
    trials: list[TrialRecord],
    complete: bool,
    workdir: Path,
) -> SearchOutcome:
    candidates = [t for t in trials if t.outcome in ("completed", "stopped")
                  and math.isfinite(t.metric)]  # fmt: skip
    best = min(candidates, key=lambda t: t.metric, default=None)
    metric = recorded_metric(folder, state)
    write_trials(folder / "trials.csv", trials, metric)
    if best is not None:
        write_json(folder / "best.json", asdict(best))
    if complete:
        client = tracking.client(workdir)
        parent = tracking.RunWriter(client, state["parent_run_id"])
        counts = {o: sum(t.outcome == o for t in trials)
                  for o in ("completed", "stopped", "errored")}  # fmt: skip
        parent.metrics({f"trials_{k}": v for k, v in counts.items()}, step=0)
        if best is not None:
            parent.metrics({f"best/{metric}": best.metric}, step=0)
            client.set_tag(state["parent_run_id"], "ionops.best_trial", best.trial_id)
        parent.artifact(folder / "trials.csv")
        parent.end(tracking.FINISHED)
        state["complete"] = True
        write_json(folder / STATE_FILE, state)
    return SearchOutcome(folder, complete, trials, best, state["parent_run_id"], metric)
