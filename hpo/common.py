"""What the search and the retraining share: data, Ray, the trainable, Tune, MLflow parent."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ionops.config import ExperimentConfig
from ionops.hpo.trainable import TrialPlan, run_trial


def load_data(experiment: ExperimentConfig, workdir: Path) -> Any:
    """The experiment's dataset (generated first if missing), in memory as its family takes it."""
    from ionops.models.registry import get_family
    from ionops.workdir import ensure_dataset

    return get_family(experiment.family).load_data(experiment, ensure_dataset(experiment, workdir))


def connect_for(data: Any, address: str | None) -> Any:
    """Ray for this driver, with an object store that holds the dataset twice over."""
    from ionops.cluster.runtime import connect
    from ionops.models.family import data_bytes

    return connect(address, object_store_bytes=2 * data_bytes(data) + 64 * 2**20)


def gpus_per_trial(experiment: ExperimentConfig, cluster_gpus: float) -> float:
    """``search.gpus_per_trial``; ``"auto"`` is half a GPU where the cluster has GPUs."""
    wanted = experiment.search.gpus_per_trial
    if wanted == "auto":
        return 0.5 if cluster_gpus > 0 else 0.0
    return float(wanted)


@contextmanager
def sigterm_as_sigusr1() -> Iterator[None]:
    """SIGTERM (a time limit, ``kill``) stops Tune as gracefully as SIGUSR1 does."""

    def forward(signum: int, frame: Any) -> None:
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def start_parent(
    workdir: Path, experiment: ExperimentConfig, kind: str, run_name: str, params: dict[str, Any]
) -> dict[str, str]:
    """The MLflow parent run of a search or retraining, in experiment ``ionops/LABEL/KIND``,
    and the store it is in (a resumed search must find it there: :func:`check_home`)."""
    from ionops import tracking

    client = tracking.client(workdir)
    experiment_id = tracking.experiment_id(client, f"ionops/{experiment.label}/{kind}", workdir)
    parent = tracking.RunWriter.start(client, experiment_id, run_name, {"ionops.kind": kind})
    parent.params(params)
    return {"parent_run_id": parent.run_id, "mlflow_experiment_id": experiment_id,
            "store": tracking.tracking_uri(workdir)}  # fmt: skip


def read_state(path: Path, what: str, fix: str) -> dict[str, Any] | None:
    """A search's or retraining's state file (None where there is none); a damaged one is
    refused by name with ``fix`` (its runs cannot be found again without it)."""
    import json

    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or "parent_run_id" not in state:
            raise ValueError("not a state file ionops wrote")
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        from ionops.errors import UserError

        raise UserError(f"the {what}'s state file {path} is damaged ({exc}); {fix}") from None
    return state


def check_home(folder: Path, state: dict[str, Any], workdir: Path, what: str) -> None:
    """Refuse to continue a search or retraining whose MLflow parent run is not in the store
    it runs with now (its folder was copied or moved without its working folder's store, or
    MLFLOW_TRACKING_URI changed): its trials would log to runs that are not there. A working
    folder moved or copied whole keeps its store, and continues in it."""
    from mlflow.exceptions import MlflowException

    from ionops import tracking
    from ionops.errors import UserError

    store = tracking.tracking_uri(workdir)
    try:
        run = tracking.client(workdir).get_run(state["parent_run_id"])
        found = str(run.info.experiment_id) == str(state["mlflow_experiment_id"])
    except MlflowException:
        found = False
    if not found:
        started = state.get("store", "the store it was started with")
        raise UserError(
            f"the {what} in {folder} logs to MLflow run {state['parent_run_id']} of the store "
            f"{started}, which the store it would use now ({store}) does not hold (a {what} "
            "folder copied or moved without its working folder's mlflow.db, or another "
            f"MLFLOW_TRACKING_URI): continue it with the store it was started with (move the "
            f"folder back into its working folder, or set MLFLOW_TRACKING_URI), or start it "
            "over here with --overwrite"
        )


def trainable(experiment: ExperimentConfig, data: Any, plan: TrialPlan, gpus: float) -> Any:
    """:func:`run_trial` with the dataset in the object store and each trial's resources."""
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(run_trial, data=data, plan=plan),
        {"cpu": experiment.search.cpus_per_trial, "gpu": gpus},
    )


def restored(folder: Path, runnable: Any, what: str, workdir: Path,
             state: dict[str, Any]) -> Any | None:  # fmt: skip
    """The Tuner saved in ``folder/tune``, restored to continue; None when there is none.

    Tune restores from pickles, so it reads only the snapshot ionops signed
    (:mod:`ionops.hpo.signing`); a Tune folder that was never signed and ran no
    trial (a start cut off within its first second) starts afresh.
    """
    from ray import tune

    from ionops.errors import UserError
    from ionops.hpo import signing

    path = folder / "tune"
    if not (path.exists() and tune.Tuner.can_restore(str(path))):
        return None
    replaced = signing.restore(path, folder / signing.SIGNED)
    if replaced is None:
        if any(entry.is_dir() for entry in path.iterdir()):
            raise UserError(
                f"the Tune state in {path} carries no ionops signature (an older ionops wrote "
                f"it, or someone else did) and Ray would unpickle it: start the {what} over "
                "with --overwrite"
            )
        shutil.rmtree(path)
        return None
    if replaced:
        print(f"Tune's last snapshot was not signed before the interruption ({', '.join(replaced)})"
              ": continuing from the one before", flush=True)  # fmt: skip
    _fill_missing_checkpoints(path)
    print(f"resuming the {what} in {folder}", flush=True)
    tuner = tune.Tuner.restore(str(path), runnable, resume_unfinished=True)
    scheduler, callbacks = restored_parts(tuner)
    for part in [scheduler, *callbacks]:  # the folder may have moved since Tune pickled them
        if hasattr(part, "relocate"):
            part.relocate(folder)
        if hasattr(part, "rehome"):  # and the MLflow runs are the state's, in today's store
            part.rehome(workdir, state)
    return tuner


def _fill_missing_checkpoints(tune_dir: Path) -> None:
    """Give every trial the checkpoint Tune's snapshot names, where Tune had replaced it.

    Tune keeps one checkpoint per trial: registering a trial's new checkpoint
    deletes the old one, and its snapshot of the experiment follows a moment
    later (and ionops may fall back to the snapshot before, when the last was
    not signed). A kill in between leaves a snapshot that names a deleted
    checkpoint (the trial then fails to restore, every retry), in the folder the
    search was in then, which may have moved since. The checkpoint
    that replaced it is put in its place (hard links, see :func:`_replacement`):
    the trial continues from there, as it would have without the kill. Run
    only on the signed snapshot (:func:`ionops.hpo.signing.restore`), which
    makes reading it safe.
    """
    import functools
    import json

    from ray.tune.utils.serialization import TuneFunctionDecoder

    states = sorted(tune_dir.glob("experiment_state-*.json"))
    if not states:
        return
    decoder = functools.partial(TuneFunctionDecoder, allow_cloudpickle=True)  # signed: ours
    for trial in json.loads(states[-1].read_text()).get("trial_data", []):
        manager = json.loads(trial[1], cls=decoder).get("checkpoint_manager")  # type: ignore[arg-type]
        latest = getattr(manager, "latest_checkpoint_result", None)
        if latest is None or latest.checkpoint is None:
            continue
        # the snapshot names the folder where Tune wrote it; a moved or copied search folder
        # restores each trial from its own folder here (Tune relocates the paths itself)
        recorded = Path(latest.checkpoint.path)
        trial_dir = tune_dir / recorded.parent.name
        named = trial_dir / recorded.name
        if named.exists() or not trial_dir.is_dir():
            continue
        replacement = _replacement(named)
        if replacement is not None:
            shutil.copytree(replacement, named, copy_function=os.link)
            print(f"{trial_dir.name.split('_')[2]}: continuing from {replacement.name} (Tune's "
                  f"snapshot names {named.name}, which it had replaced)", flush=True)  # fmt: skip


def _replacement(named: Path) -> Path | None:
    """The checkpoint Tune registered in place of the deleted ``named``: the oldest one left.

    A trial's folder holds at most two checkpoints: the one Tune registered
    last, whose report MLflow took before Tune registered it (Tune calls its
    callbacks first), and one the trial saved with a report that Tune had not
    processed yet. Continuing from the newer would skip the epochs of that
    lost report in MLflow; the older is the one Tune's next snapshot would
    have named.
    """
    left = sorted(path for path in named.parent.glob("checkpoint_*") if path.name > named.name)
    return left[0] if left else None


def restored_parts(tuner: Any) -> tuple[Any, list[Any]]:
    """A restored Tuner's scheduler and callbacks, as Tune unpickled them from its snapshot."""
    local = tuner._local_tuner
    if local is None:
        return None, []
    return local._tune_config.scheduler, list(local.get_run_config().callbacks or [])


def run_config(folder: Path, experiment: ExperimentConfig, callbacks: list[Any]) -> Any:
    """Tune's settings shared by searches and retrainings: one checkpoint kept per trial, and
    Tune's state signed after each snapshot."""
    from ray import tune

    from ionops.hpo.signing import StateSigner

    return tune.RunConfig(
        name="tune",
        storage_path=str(folder),
        callbacks=[*callbacks, StateSigner(folder)],
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        failure_config=tune.FailureConfig(max_failures=experiment.search.max_failures),
        verbose=0,
    )


def fit(tuner: Any, folder: Path, workdir: Path, state: dict[str, Any]) -> Any:
    """Run the Tuner (SIGTERM stops it gracefully), sign its last snapshot, and drop the runs of
    trials Tune lost."""
    from ionops import tracking
    from ionops.hpo import signing
    from ionops.hpo.runs import delete_orphans

    with sigterm_as_sigusr1():
        grid = tuner.fit()
    signing.sign(folder / "tune", folder / signing.SIGNED)
    known = {trial.trial_id for trial in grid._experiment_analysis.trials}
    delete_orphans(tracking.client(workdir), state["mlflow_experiment_id"],
                   state["parent_run_id"], known)  # fmt: skip
    return grid
