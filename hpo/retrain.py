"""Five-seed retraining of a search's best configuration, in parallel on Ray, with a summary.

A retraining lives in ``WORKDIR/retrains/NAME`` (NAME: the search's name):
``retrain.json`` (the search it retrains, the point, the seeds, the MLflow
parent run), ``tune/`` (Ray Tune's state: per-seed checkpoints, so a killed
retraining continues where it stopped), ``seed-S/`` (each seed's final
checkpoint and per-sample errors) and the summary: ``summary.md``,
``summary.csv``, ``summary.json``, as the paper's Tables 7, 10 and 12 with
relative L1, L2 and H1 and per-variable errors besides.
"""

from __future__ import annotations

import math
import shutil
import statistics
from dataclasses import dataclass
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
    run_config,
    start_parent,
    trainable,
)
from ionops.hpo.outcome import load_outcome
from ionops.hpo.runs import is_result
from ionops.hpo.search import trial_count
from ionops.hpo.trainable import PER_SAMPLE_FILE, TrialPlan, search_metric
from ionops.locks import folder_lock
from ionops.models.registry import get_family
from ionops.workdir import write_atomic, write_json

STATE_FILE = "retrain.json"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class RetrainOptions:
    seeds: int = 5
    allow_unfinished: bool = False
    address: str | None = None
    device: str = "auto"
    mixed_precision: bool = False
    progress: bool = True


@dataclass(frozen=True)
class RetrainOutcome:
    folder: Path
    complete: bool
    seeds: list[int]
    per_seed: dict[int, dict[str, float]]
    summary: dict[str, tuple[float, float]]
    model: dict[str, Any] | None = None  # the registered MLflow model of the best seed


def retrain_folder(workdir: Path, name: str) -> Path:
    return workdir / "retrains" / name


def run_retrain(
    experiment: ExperimentConfig,
    search: Path,
    workdir: Path,
    options: RetrainOptions = RetrainOptions(),
) -> RetrainOutcome:
    """Retrain the best trial of the search in ``search`` with ``options.seeds`` seeds."""
    found = load_outcome(search)
    if found.best is None:
        raise UserError(f"the search in {search} has no finished trial to retrain")
    if not found.complete and not options.allow_unfinished:
        done = sum(t.outcome != "unfinished" for t in found.trials)
        raise UserError(
            f"the search in {search} is unfinished ({done} of {trial_count(experiment)} "
            "trials); finish it with `ionops tune` (same arguments) or retrain its best trial "
            "so far with --allow-unfinished"
        )
    folder = retrain_folder(workdir, search.name).resolve()
    seeds = [experiment.training.seed + k for k in range(options.seeds)]
    with folder_lock(folder, "retraining"):
        return _run_retrain(experiment, search, workdir, options, found, folder, seeds)


def _run_retrain(experiment: ExperimentConfig, search: Path, workdir: Path,
                 options: RetrainOptions, found: Any, folder: Path,
                 seeds: list[int]) -> RetrainOutcome:  # fmt: skip
    from ionops.cluster.runtime import check_address

    existing = _existing_state(folder, found.best, seeds)
    if existing is not None and existing.get("complete"):
        return _outcome(folder, existing, complete=True)
    tracking.client(workdir)  # an MLflow server or a Ray head that does not answer: refused now
    check_address(options.address)
    if existing is not None:
        check_home(folder, existing, workdir, "retraining")
    data = load_data(experiment, workdir)
    resources = connect_for(data, options.address)
    # written once the data and Ray are in place: a failed start leaves nothing behind
    state = existing or _open_state(folder, experiment, found.best, seeds, workdir, search)
    epochs = experiment.training.epochs
    family = get_family(experiment.family)
    plan = TrialPlan(
        experiment=experiment, eval_splits=("validation", "test"), final_splits=SPLITS,
        eval_every=max(1, epochs // 100, experiment.training.eval_every),
        checkpoint_every=experiment.search.checkpoint_every,
        threads=max(1, int(experiment.search.cpus_per_trial)), keep_outputs=True,
        device=options.device, mixed_precision=options.mixed_precision,
    )  # fmt: skip
    gpus = gpus_per_trial(experiment, resources.gpus)
    tuner = _tuner(experiment, folder, state, data, plan, gpus, workdir, options)
    print(f"retraining {search.name} #{found.best.index} ({found.best.point['parameter_count']:,}"
          f" parameters) with seeds {seeds}; folder {folder}", flush=True)  # fmt: skip
    grid = fit(tuner, folder, workdir, state)
    finished = {}
    for result in grid:
        if result.error is None and result.metrics.get("final") and result.checkpoint:
            seed = int(result.config["seed"])
            with result.checkpoint.as_directory() as saved:
                target = folder / f"seed-{seed}"
                target.mkdir(parents=True, exist_ok=True)
                for name in ("checkpoint.pt", PER_SAMPLE_FILE):
                    shutil.copyfile(Path(saved) / name, target / name)
            finished[seed] = {k: float(v) for k, v in result.metrics.items()
                              if is_result(k, v)}  # fmt: skip
    errored = [r for r in grid if r.error is not None]
    if errored:
        raise UserError(f"{len(errored)} of {len(seeds)} seeds failed; first error: "
                        f"{errored[0].error}")  # fmt: skip
    state["per_seed"] = {str(s): finished[s] for s in sorted(finished)}
    complete = sorted(finished) == seeds
    if complete:
        _write_summary(folder, state, workdir, family)
    write_json(folder / STATE_FILE, state)
    return _outcome(folder, state, complete)


def _open_state(
    folder: Path,
    experiment: ExperimentConfig,
    best: Any,
    seeds: list[int],
    workdir: Path,
    search: Path,
) -> dict[str, Any]:
    """The retraining's state file: read (same trial and seeds only) or created with its
    MLflow parent run."""
    existing = _existing_state(folder, best, seeds)
    if existing is not None:
        return existing
    parent = start_parent(workdir, experiment, "retrain", search.name, {
        **best.point, "seeds": seeds, "search": str(search), "search_trial": best.trial_id,
        "epochs": experiment.training.epochs,
    })  # fmt: skip
    state = {"search": str(search), "index": best.index, "trial_id": best.trial_id,
             "point": best.point, "seeds": seeds, **parent, "complete": False}  # fmt: skip
    write_json(folder / STATE_FILE, state)
    return state


def _existing_state(folder: Path, best: Any, seeds: list[int]) -> dict[str, Any] | None:
    state = read_state(folder / STATE_FILE, "retraining", f"remove {folder} to retrain again")
    if state is None:
        return None
    if state["point"] != best.point or state["seeds"] != seeds:
        raise UserError(
            f"{folder} retrains trial #{state['index']} with seeds {state['seeds']}; the "
            f"search's best is now #{best.index} with seeds {seeds}: remove {folder} to "
            "retrain again"
        )
    return state


def _tuner(
    experiment: ExperimentConfig,
    folder: Path,
    state: dict[str, Any],
    data: Any,
    plan: TrialPlan,
    gpus_per_trial: float,
    workdir: Path,
    options: RetrainOptions,
) -> Any:
    from ray import tune

    from ionops.hpo.asha import FolderFIFO
    from ionops.hpo.runs import TrialRuns

    runnable = trainable(experiment, data, plan, gpus_per_trial)
    resumed = restored(folder, runnable, "retraining", workdir, state)
    if resumed is not None:
        return resumed
    family = get_family(experiment.family)

    def describe(point: dict[str, Any]) -> dict[str, Any]:
        return {**family.configure(point, experiment, data).record, "seed": point["seed"]}

    runs = TrialRuns(
        workdir, state["mlflow_experiment_id"], state["parent_run_id"],
        max_epochs=experiment.training.epochs, describe=describe, run_prefix="seed",
        total=len(state["seeds"]), show_progress=options.progress,
        metric=search_metric(experiment, "test"),
    )  # fmt: skip
    return tune.Tuner(
        runnable,
        param_space={**state["point"], "seed": tune.grid_search(state["seeds"])},
        tune_config=tune.TuneConfig(reuse_actors=False, scheduler=FolderFIFO(folder)),
        run_config=run_config(folder, experiment, [runs]),
    )


def summary_rows(per_seed: dict[str, dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation over seeds of every final metric."""
    keys = sorted(set.intersection(*(set(m) for m in per_seed.values())))
    out = {}
    for key in keys:
        values = [m[key] for m in per_seed.values() if math.isfinite(m[key])]
        if not values:  # undefined in every seed (no spike predicted, say): NaN, not a number
            out[key] = (math.nan, math.nan)
            continue
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        out[key] = (statistics.fmean(values), spread)
    return out


def undefined_seeds(per_seed: dict[Any, dict[str, float]], key: str) -> int:
    """How many seeds leave ``key`` undefined (NaN) or infinite: left out of its mean."""
    return sum(1 for m in per_seed.values() if key in m and not math.isfinite(m[key]))


def _write_summary(folder: Path, state: dict[str, Any], workdir: Path, family: Any) -> None:
    summary = summary_rows(state["per_seed"])
    parameters = int(state["point"]["parameter_count"])
    lines = ["| quantity | mean ± std |", "|---|---|", f"| parameters | {parameters:,} |"]
    for key, label, scale, unit in (
        ("peak_memory_bytes", "peak memory", 2**-20, " MiB"),
        ("train_seconds", "training time", 1.0, " s"),
    ):
        mean, spread = summary[key]
        lines.append(f"| {label} | {mean * scale:,.1f} ± {spread * scale:,.1f}{unit} |")
    for split in ("train", "test"):
        for name in family.summary_metrics:
            if f"{split}/{name}" not in summary:
                continue  # not an error of this split (MAE alone for training points)
            metric, (mean, spread) = family.metric_of(name), summary[f"{split}/{name}"]
            missing = undefined_seeds(state["per_seed"], f"{split}/{name}")
            note = f" (undefined in {missing} of {len(state['per_seed'])} seeds)" if missing else ""
            value = f"{metric.format(mean)} ± {metric.format(spread)}" if math.isfinite(mean) \
                else "undefined"  # fmt: skip
            lines.append(f"| {split} {metric.label} | {value}{note} |")
    main = family.metric_of(family.metric)
    variables = sorted(k.split("/", 2)[2] for k in summary if k.startswith(f"test/{main.name}/"))
    if variables:
        lines += ["", f"| state variable | test {main.label} (mean ± std) |", "|---|---|"]
        for name in variables:
            mean, spread = summary[f"test/{main.name}/{name}"]
            lines.append(f"| {name} | {main.format(mean)} ± {main.format(spread)} |")
    write_atomic(folder / "summary.md", "\n".join(lines) + "\n")
    rows = [f"{key},{mean!r},{spread!r}\n" for key, (mean, spread) in summary.items()]
    write_atomic(folder / "summary.csv",
                 f"metric,mean,std\nparameter_count,{parameters},0\n" + "".join(rows))  # fmt: skip
    write_json(folder / "summary.json", {"parameter_count": parameters, "seeds": state["seeds"],
                                          "mean_std": summary})  # fmt: skip
    state["model"] = _log_model(folder, state, workdir, main.name)
    _describe_model(tracking.client(workdir), folder, state, family, summary)
    client = tracking.client(workdir)
    parent = tracking.RunWriter(client, state["parent_run_id"])
    parent.metrics({f"{k}/mean": v[0] for k, v in summary.items()}
                   | {f"{k}/std": v[1] for k, v in summary.items()}, step=0)  # fmt: skip
    for name in ("summary.md", "summary.csv"):
        parent.artifact(folder / name)
    parent.end(tracking.FINISHED)
    state["complete"] = True


def _log_model(folder: Path, state: dict[str, Any], workdir: Path, main: str) -> dict[str, Any]:
    """The best seed's surrogate as an MLflow model on the retraining's run, registered under
    the search's name (once: a resumed retraining finds the version it registered)."""
    from ionops.serving.mlflow_model import log_surrogate, registered_name
    from ionops.serving.sources import best_seed

    seed = best_seed({int(k): v for k, v in state["per_seed"].items()}, main)
    name = registered_name(folder.name)
    run_id = state["parent_run_id"]
    client = tracking.client(workdir)
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if found:
        version = str(found[0].version)
    else:
        version = log_surrogate(tracking.tracking_uri(workdir), run_id,
                                folder / f"seed-{seed}" / "checkpoint.pt", name)  # fmt: skip
    return {"seed": seed, "name": name, "version": version, "uri": f"models:/{name}/{version}"}


def _describe_model(client: Any, folder: Path, state: dict[str, Any], family: Any,
                    summary: dict[str, tuple[float, float]]) -> None:  # fmt: skip
    """The registered model and its version say what they are in the MLflow UI: family, ionic
    model, data, the search and trial, the seed and why, and the test errors (also as tags)."""
    import json

    from ionops.training.checkpoint import load_checkpoint

    model = state["model"]
    checkpoint = load_checkpoint(folder / f"seed-{model['seed']}" / "checkpoint.pt")
    described = checkpoint.get("surrogate") or {"attributes": "{}"}
    attributes = json.loads(described["attributes"])
    ionic, states = str(attributes.get("model")), ", ".join(attributes.get("state_names", []))
    search = Path(state["search"]).name
    errors = []
    for name in family.summary_metrics:
        if f"test/{name}" in summary:
            metric, (mean, spread) = family.metric_of(name), summary[f"test/{name}"]
            errors.append(f"{metric.label} {metric.format(mean)} ± {metric.format(spread)}")
    text = (f"{family.name} surrogate of {ionic} ({states}), from the search {search}: trial "
            f"#{state['index']} ({state['trial_id']}), retrained with seeds {state['seeds']}; "
            f"this is seed {model['seed']}, the best by validation {family.metric}. Test "
            f"errors over the seeds (mean ± std): {'; '.join(errors)}.")  # fmt: skip
    client.update_model_version(model["name"], model["version"], description=text)
    tags = {"ionops.family": family.name, "ionops.ionic_model": ionic, "ionops.search": search,
            "ionops.trial": str(state["trial_id"]), "ionops.seed": str(model["seed"])}  # fmt: skip
    for key, value in tags.items():
        client.set_model_version_tag(model["name"], model["version"], key, value)
    client.update_registered_model(model["name"], description=(
        f"ionops {family.name} surrogates of {ionic} retrained from the search {search}; each "
        "version says its trial, seed and test errors"))  # fmt: skip
    for key in ("ionops.family", "ionops.ionic_model", "ionops.search"):
        client.set_registered_model_tag(model["name"], key, tags[key])


def _outcome(folder: Path, state: dict[str, Any], complete: bool) -> RetrainOutcome:
    per_seed = {int(k): v for k, v in state.get("per_seed", {}).items()}
    summary = summary_rows(state["per_seed"]) if per_seed else {}
    return RetrainOutcome(folder, complete, state["seeds"], per_seed, summary, state.get("model"))
