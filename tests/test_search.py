"""The search service: ASHA that survives a resume, and real searches killed and resumed."""

import csv
import json
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from support import start_tune as _tune
from support import wait_for_trials as _wait_for_trials

from ionops.config import load_experiment
from ionops.errors import UserError
from ionops.hpo.asha import PersistentASHA
from ionops.hpo.search import _concurrency, asha_settings


def _asha(path: Path) -> PersistentASHA:
    scheduler = PersistentASHA(path, time_attr="epoch", max_t=16, grace_period=1,
                               reduction_factor=4)  # fmt: skip
    scheduler.set_search_properties("loss", "min")
    return scheduler


def _feed(scheduler: PersistentASHA, trial_id: str, losses: dict[int, float]) -> list[str]:
    trial = SimpleNamespace(trial_id=trial_id)
    scheduler.on_trial_add(None, trial)
    return [scheduler.on_trial_result(None, trial, {"epoch": e, "loss": v})
            for e, v in sorted(losses.items())]  # fmt: skip


def test_asha_rungs_survive_a_restart_and_decide_as_before(tmp_path):
    history = {"a": {1: 0.5, 4: 0.3}, "b": {1: 0.2, 4: 0.1}, "c": {1: 0.4, 4: 0.35}}
    straight = _asha(tmp_path / "straight.json")
    for trial_id, losses in history.items():
        _feed(straight, trial_id, losses)
    late = {1: 0.45, 4: 0.33}
    expected = _feed(straight, "d", late)

    first = _asha(tmp_path / "resumed.json")
    for trial_id, losses in history.items():
        _feed(first, trial_id, losses)
    restarted = _asha(tmp_path / "resumed.json")  # a new process: rungs come from the file
    assert _feed(restarted, "d", late) == expected
    assert restarted.rungs() == straight.rungs()
    # what Ray 2.60's ASHA does without the file: the first trial at a rung always passes
    forgetful = _asha(tmp_path / "absent.json")
    forgetful.state_file = tmp_path / "never-written" / "x.json"
    assert _feed(forgetful, "d", late) == ["CONTINUE", "CONTINUE"]
    assert "STOP" in expected


def test_asha_grace_period_scales_with_the_epochs():
    paper = load_experiment("fhn")
    assert asha_settings(paper) == {"max_t": 1000, "grace_period": 250, "reduction_factor": 4}
    short = load_experiment("fhn", ["training.epochs=40"])
    assert asha_settings(short) == {"max_t": 40, "grace_period": 10, "reduction_factor": 4}
    tiny = load_experiment("fhn", ["training.epochs=2"])
    assert asha_settings(tiny)["grace_period"] == 1


def test_concurrency_follows_the_resources():
    experiment = load_experiment("fhn", ["search.cpus_per_trial=2"])
    assert _concurrency(experiment, cpus=8, gpus=0, gpus_per_trial=0) == 4
    assert _concurrency(experiment, cpus=64, gpus=4, gpus_per_trial=0.5) == 8
    with pytest.raises(UserError, match=r"search.cpus_per_trial"):
        _concurrency(experiment, cpus=1, gpus=0, gpus_per_trial=0)


def _trials(workdir: Path, name: str) -> list[dict[str, str]]:
    with (workdir / "searches" / name / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The working folder of one uninterrupted small search, ``straight``: what every killed
    and resumed search of this module must end as (its decisions do not depend on the store)."""
    workdir = tmp_path_factory.mktemp("straight")
    search = _tune(workdir, "straight", f"sqlite:///{workdir / 'mlflow.db'}")
    assert search.wait(timeout=600) == 0, (workdir / "straight.log").read_text()[-3000:]
    return workdir


def test_a_replaced_checkpoint_is_stood_in_for_by_the_one_tune_registered(tmp_path):
    """Tune registered checkpoint 1 (deleting 0, which its signed snapshot still names) and the
    trial had saved 2 with a report Tune never processed: the trial continues from 1, whose
    epochs MLflow has, not from 2, which would skip the epochs of the lost report."""
    from ionops.hpo.common import _replacement

    trial = tmp_path / "run_trial_abc_1"
    for index in (1, 2, 10):
        (trial / f"checkpoint_{index:06d}").mkdir(parents=True)
    assert _replacement(trial / "checkpoint_000000") == trial / "checkpoint_000001"
    assert _replacement(trial / "checkpoint_000009") == trial / "checkpoint_000010"
    assert _replacement(trial / "checkpoint_000011") is None


@pytest.mark.slow
def test_a_killed_search_resumes_to_the_uninterrupted_result(tmp_path, mlflow_server, straight):
    import mlflow

    # graceful stop (what SLURM's early signal sends), then two hard kills mid-trial
    search = _tune(tmp_path, "killed", mlflow_server)
    _wait_for_trials(search, tmp_path, "killed", 2)
    search.send_signal(signal.SIGUSR1)
    assert search.wait(timeout=120) == 75, (tmp_path / "killed.log").read_text()[-3000:]
    for starts, count in ((2, 4), (3, 5)):
        search = _tune(tmp_path, "killed", mlflow_server)
        _wait_for_trials(search, tmp_path, "killed", count, starts)
        search.kill()
        assert search.wait() == -signal.SIGKILL, "the search ended before the kill: kill earlier"
    search = _tune(tmp_path, "killed", mlflow_server)
    assert search.wait(timeout=600) == 0, (tmp_path / "killed.log").read_text()[-3000:]
    log = (tmp_path / "killed.log").read_text()
    assert log.count("resuming the search") == 3

    expected, resumed = _trials(straight, "straight"), _trials(tmp_path, "killed")
    assert len(resumed) == 6
    stable = ("index", "outcome", "epochs", "d_v", "n_layers", "k_max", "learning_rate")
    assert [[t[k] for k in stable] for t in resumed] == [[t[k] for k in stable] for t in expected]
    for got, want in zip(resumed, expected, strict=True):
        assert float(got["validation/rel_l2"]) == pytest.approx(float(want["validation/rel_l2"]),
                                                                rel=1e-5)  # fmt: skip
    assert {t["outcome"] for t in expected} == {"completed", "stopped"}

    client = mlflow.tracking.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("ionops/fhn-fno/search")
    parents = client.search_runs([experiment.experiment_id], "tags.`ionops.kind` = 'search'")
    parent = next(p for p in parents if p.info.run_name == "killed")
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert sorted(c.data.tags["ionops.trial_id"] for c in children) == sorted(
        t["trial_id"] for t in resumed
    )
    by_id = {t["trial_id"]: t for t in resumed}
    for child in children:
        trial = by_id[child.data.tags["ionops.trial_id"]]
        status = {"completed": "FINISHED", "stopped": "FINISHED"}[trial["outcome"]]
        assert (child.info.status, child.data.tags["ionops.outcome"]) == (status, trial["outcome"])
        steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "train_loss"))
        assert steps == list(range(1, int(trial["epochs"]) + 1)), "every epoch logged once"
        validation = client.get_metric_history(child.info.run_id, "validation/rel_l2")
        assert sorted(m.step for m in validation) == steps


@pytest.mark.slow
def test_a_moved_or_copied_working_folder_resumes_in_its_own_store(tmp_path, straight):
    """A search killed, its working folder copied and then moved (as from scratch to project
    space): each resumes where it now is, to the uninterrupted result, every trial's run in
    its own store; nothing is written where the folder was."""
    import shutil

    import mlflow

    first = tmp_path / "first"
    first.mkdir()
    search = _tune(first, "moved", None)
    _wait_for_trials(search, first, "moved", 2)
    search.kill()
    search.wait()
    time.sleep(1)  # the trial's worker follows its driver
    copy, moved = tmp_path / "copy", tmp_path / "moved"
    shutil.copytree(first, copy, symlinks=True)
    first.rename(moved)
    expected = _trials(straight, "straight")
    stable = ("index", "outcome", "epochs", "d_v", "n_layers", "k_max", "learning_rate")
    for workdir in (moved, copy):
        search = _tune(workdir, "moved", None)
        assert search.wait(timeout=600) == 0, (workdir / "moved.log").read_text()[-3000:]
        assert "resuming the search" in (workdir / "moved.log").read_text()
        resumed = _trials(workdir, "moved")
        assert [[t[k] for k in stable] for t in resumed] == [[t[k] for k in stable]
                                                             for t in expected]  # fmt: skip
        client = mlflow.tracking.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("ionops/fhn-fno/search")
        (parent,) = client.search_runs([experiment.experiment_id],
                                       "tags.`ionops.kind` = 'search'")  # fmt: skip
        assert parent.info.status == "FINISHED"
        under = f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
        children = client.search_runs([experiment.experiment_id], under)
        assert sorted(c.data.tags["ionops.trial_id"] for c in children) == sorted(
            t["trial_id"] for t in resumed
        )
        for child in children:
            epochs = int(next(t["epochs"] for t in resumed
                              if t["trial_id"] == child.data.tags["ionops.trial_id"]))  # fmt: skip
            steps = sorted(m.step for m in client.get_metric_history(child.info.run_id,
                                                                     "train_loss"))  # fmt: skip
            assert steps == list(range(1, epochs + 1)), "every epoch logged once, in this store"
    assert not first.exists(), "something was written where the working folder was"


def _asha_events(folder: Path) -> dict[str, int]:
    """How many rung records and early stops ASHA has saved in a search folder."""
    path = folder / "asha.json"
    if not path.exists():
        return {"record": 0, "stop": 0}
    saved = json.loads(path.read_text())
    records = sum(len(rung) for bracket in saved["rungs"] for rung in bracket)
    return {"record": records, "stop": len(saved["stopped"])}


def _kill_after(process: subprocess.Popen, folder: Path, kind: str, count: int) -> bool:
    """Kill the driver the moment ASHA has saved its ``count``-th record or stop (Tune's own
    snapshot of that moment not yet written); False if the search ended first."""
    deadline = time.monotonic() + 300
    while _asha_events(folder)[kind] < count:
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the search made no progress"
        time.sleep(0.005)
    process.kill()
    process.wait()
    return True


@pytest.mark.slow
def test_kills_right_after_asha_decides_change_no_decision(tmp_path, straight):
    """Killed the moment ASHA has recorded a rung report or stopped a trial (Tune's snapshot
    lags behind), and resumed each time, the search ends as the uninterrupted one did."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    expected = _trials(straight, "straight")
    stops = sum(t["outcome"] == "stopped" for t in expected)
    assert stops >= 2, "the uninterrupted search stops too few trials to test this"

    folder = tmp_path / "searches" / "cut"
    kills = 0
    for kind, count in (("record", 2), ("stop", 1), ("record", 5), ("stop", 2)):
        kills += _kill_after(_tune(tmp_path, "cut", uri), folder, kind, count)
    assert kills == 4, (tmp_path / "cut.log").read_text()[-3000:]
    last = _tune(tmp_path, "cut", uri)
    assert last.wait(timeout=600) == 0, (tmp_path / "cut.log").read_text()[-3000:]

    resumed = _trials(tmp_path, "cut")
    stable = ("index", "outcome", "epochs", "d_v", "n_layers", "k_max", "learning_rate")
    assert [[t[k] for k in stable] for t in resumed] == [[t[k] for k in stable] for t in expected]
    for got, want in zip(resumed, expected, strict=True):
        assert float(got["validation/rel_l2"]) == pytest.approx(float(want["validation/rel_l2"]),
                                                                rel=1e-5)  # fmt: skip

    def rungs(folder: Path) -> list[list[float]]:  # each rung's records, the trial ids aside
        saved = json.loads((folder / "asha.json").read_text())
        return [sorted(rung.values()) for bracket in saved["rungs"] for rung in bracket]

    # no record left behind, none lost
    cut, uninterrupted = rungs(folder), rungs(straight / "searches" / "straight")
    assert [len(rung) for rung in cut] == [len(rung) for rung in uninterrupted]
    flat = [[value for rung in rungs for value in rung] for rungs in (cut, uninterrupted)]
    assert flat[0] == pytest.approx(flat[1], rel=1e-5)

    client = mlflow.tracking.MlflowClient(uri)
    experiment = client.get_experiment_by_name("ionops/fhn-fno/search")
    [parent] = [p for p in client.search_runs([experiment.experiment_id],
                                              "tags.`ionops.kind` = 'search'")
                if p.info.run_name == "cut"]  # fmt: skip
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    by_id = {t["trial_id"]: t for t in resumed}
    assert sorted(c.data.tags["ionops.trial_id"] for c in children) == sorted(by_id)
    for child in children:
        trial = by_id[child.data.tags["ionops.trial_id"]]
        status = {"completed": "FINISHED", "stopped": "FINISHED"}[trial["outcome"]]
        assert child.info.status == status
        steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "train_loss"))
        assert steps == list(range(1, int(trial["epochs"]) + 1)), "every epoch logged once"


def _trial_workers() -> list:
    """The trial actors' processes. Ray titles one `ray::ImplicitFunc.train` while Tune's call
    waits for the next report and `ray::ImplicitFunc` between calls, so both are matched."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if line.split(" ")[0] in ("ray::ImplicitFunc", "ray::ImplicitFunc.train"):
            found.append(process)
    return found


@pytest.mark.slow
def test_a_trial_whose_worker_dies_is_retried_from_its_checkpoint(tmp_path):
    import mlflow

    # 40 epochs: the second trial runs for seconds after its first checkpoint (at epoch 2) and
    # before ASHA's first rung (10); with 8 a fast machine finished it before the kill
    epochs, every = 40, 2  # every: SMALL_SEARCH's search.checkpoint_every
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    search = _tune(tmp_path, "crash", uri, f"training.epochs={epochs}")
    _wait_for_trials(search, tmp_path, "crash", 2)
    folder = next((tmp_path / "searches" / "crash" / "tune").glob("run_trial_*_2_*"))
    deadline = time.monotonic() + 120
    while not list(folder.glob("checkpoint_*")):  # the trial has a checkpoint to go back to
        assert time.monotonic() < deadline and search.poll() is None
        time.sleep(0.1)
    workers = _trial_workers()
    assert workers, "no running trial worker found"
    last = folder / f"checkpoint_{epochs // every - 1:06d}"
    assert not last.exists(), "the trial ended before the kill"
    for worker in workers:
        worker.kill()
    assert search.wait(timeout=600) == 0, (tmp_path / "crash.log").read_text()[-3000:]
    trials = _trials(tmp_path, "crash")
    assert len(trials) == 6 and {t["outcome"] for t in trials} <= {"completed", "stopped"}
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    second = next(t for t in trials if t["index"] == "2")
    [run] = client.search_runs(
        [client.get_experiment_by_name("ionops/fhn-fno/search").experiment_id],
        f"tags.`ionops.trial_id` = '{second['trial_id']}'",
    )
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss"))
    assert steps == list(range(1, int(second["epochs"]) + 1))
    assert run.data.metrics["resumed_from_epoch"] >= 2, "restarted from a checkpoint, not epoch 0"
