"""The search's MLflow callback on a real SQLite store: every epoch once, whatever the reporting."""

from types import SimpleNamespace

from ionops import tracking
from ionops.hpo.runs import TrialRuns
from ionops.hpo.trainable import HISTORY


def row(epoch, **extra):
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "validation/rel_l2": 0.5 / epoch, **extra}


def _trial_runs(tmp_path, monkeypatch, kind: str, max_epochs: int):
    """A real SQLite store with a parent run, and the callback that logs its trials."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = tracking.client(tmp_path)
    experiment = tracking.experiment_id(client, f"ionops/test/{kind}", tmp_path)
    parent = tracking.RunWriter.start(client, experiment, "parent", {})
    runs = TrialRuns(tmp_path, experiment, parent.run_id, max_epochs=max_epochs,
                     describe=lambda point: point, show_progress=False)  # fmt: skip
    runs.setup()
    return client, experiment, parent, runs


def test_history_rows_are_logged_once_each_and_the_run_ends(tmp_path, monkeypatch):
    client, experiment, parent, runs = _trial_runs(tmp_path, monkeypatch, "search", 6)
    trial = SimpleNamespace(trial_id="abc_00001", config={"d_v": 8}, last_result=None)
    runs.on_trial_start(0, [], trial)
    runs.on_trial_result(0, [], trial, {**row(3), HISTORY: [row(1), row(2)], "checkpointed": True})
    # Tune restarted the trial from its epoch-2 checkpoint: epochs 3 and 4 arrive again
    resumed = {**row(4), HISTORY: [row(3, resumed_from_epoch=2)]}
    runs.on_trial_result(0, [], trial, resumed)
    runs.on_trial_result(0, [], trial, {**row(6), HISTORY: [row(5)]})
    trial.last_result = row(6)
    runs.on_trial_complete(0, [], trial)

    [child] = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.run_id}'")
    assert (child.info.status, child.data.tags["ionops.outcome"]) == ("FINISHED", "completed")
    losses = client.get_metric_history(child.info.run_id, "train_loss")
    assert sorted(m.step for m in losses) == [1, 2, 3, 4, 5, 6]
    assert {m.step: m.value for m in losses}[2] == 0.5
    [resume] = client.get_metric_history(child.info.run_id, "resumed_from_epoch")
    assert (resume.step, resume.value) == (3, 2.0)
    assert child.data.params == {"d_v": "8"}


def test_a_trial_reports_at_rungs_checkpoints_and_the_end_carrying_the_epochs_between():
    from ionops.config import load_experiment
    from ionops.hpo.trainable import TrialPlan, _Reports

    plan = TrialPlan(load_experiment("fhn"), report_epochs=frozenset({2, 9}), report_seconds=1e9)
    reports = _Reports(plan, epochs=9)
    sent = {}
    for epoch in range(1, 10):
        result = reports.due({"epoch": epoch}, checkpointed=epoch % 5 == 0)
        if result is not None:
            sent[epoch] = [r["epoch"] for r in result.get(HISTORY, [])]
    assert sent == {2: [1], 5: [3, 4], 9: [6, 7, 8]}

    eager = _Reports(TrialPlan(load_experiment("fhn"), report_seconds=0.0), epochs=9)
    assert all(eager.due({"epoch": e}, checkpointed=False) == {"epoch": e} for e in range(1, 10))


def test_a_runs_summary_logs_nothing_its_last_epoch_logged(tmp_path, monkeypatch):
    client, experiment, parent, runs = _trial_runs(tmp_path, monkeypatch, "retrain", 2)
    trial = SimpleNamespace(trial_id="abc_00002", config={"d_v": 8}, last_result=None)
    runs.on_trial_result(0, [], trial, {**row(2), HISTORY: [row(1)], "checkpointed": True})
    summary = {**row(2), "final": True, "checkpointed": True, "peak_memory_bytes": 5.0}
    runs.on_trial_result(0, [], trial, summary)
    trial.last_result = summary
    runs.on_trial_complete(0, [], trial)
    [child] = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.run_id}'")
    for metric in ("train_loss", "validation/rel_l2"):
        steps = [m.step for m in client.get_metric_history(child.info.run_id, metric)]
        assert steps == [1, 2], f"{metric} logged once per epoch"
    assert [m.step for m in client.get_metric_history(child.info.run_id, "peak_memory_bytes")] == [
        2
    ]
