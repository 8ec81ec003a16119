"""MLflow for a search: one parent run, one child run per trial, written by the driver only.

:class:`TrialRuns` is a Ray Tune callback. Unlike Ray's stock MLflow logger it

- finds a trial's existing run after a resume (by its ``ionops.trial_id`` tag
  under the parent) instead of opening a second one, and reopens it;
- logs each epoch once: steps at or below the run's last logged step are
  skipped, so a trial rerun from an older checkpoint repeats nothing;
- batches metrics: one ``log_batch`` per trial every ``flush_seconds``, and at
  once when a result carries a checkpoint, so everything up to a checkpoint
  Tune may resume from is in MLflow before Tune records that checkpoint;
- ends every run FINISHED (trained to the last epoch, or stopped early by
  ASHA: it did what it was asked, and the UI shows no failure), KILLED (still
  running when the search was interrupted) or FAILED, with the outcome in the
  ``ionops.outcome`` tag.

It keeps only plain settings between sessions (Tune pickles callbacks with
the search), and opens its MLflow client in ``setup``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from ionops import tracking
from ionops.hpo.trainable import HISTORY

TRIAL_TAG = "ionops.trial_id"
OUTCOME_TAG = "ionops.outcome"
PARENT_TAG = "mlflow.parentRunId"
# what the trainable reports besides ``split/metric`` keys (Tune adds its own bookkeeping)
METRICS = {"train_loss", "learning_rate", "train_seconds", "trial_seconds", "peak_memory_bytes"}

# the ionops outcome of a trial, and the MLflow status its run ends with
OUTCOMES = {
    "completed": tracking.FINISHED,
    "stopped": tracking.FINISHED,
    "errored": tracking.FAILED,
    "interrupted": tracking.KILLED,
}


@dataclass(frozen=True)
class KnownRun:
    """A trial's run found in MLflow: its id, last logged epoch, outcome and last metric."""

    run_id: str
    last_step: int
    outcome: str
    metric: float | None = None


@dataclass
class _OpenRun:
    run_id: str
    last_step: int
    pending: dict[int, dict[str, float]] = field(default_factory=dict)
    flushed_at: float = field(default_factory=time.monotonic)
    logged_last: set[str] = field(default_factory=set)  # the metrics queued at last_step
    logged_early: int = -1  # the epoch whose report log_now took before Tune's callback


class TrialRuns(Callback):
    """Parent/child MLflow runs of one search; ``describe(config)`` gives a trial's parameters."""

    def __init__(
        self,
        workdir: Path,
        experiment_id: str,
        parent_run_id: str,
        max_epochs: int,
        describe: Callable[[dict[str, Any]], dict[str, Any]],
        run_prefix: str = "trial",
        flush_seconds: float = 2.0,
        total: int | None = None,
        show_progress: bool = True,
        metric: str | None = None,
        stopped_file: Path | None = None,
    ) -> None:
        self.workdir, self.experiment_id = Path(workdir), experiment_id
        self.parent_run_id, self.max_epochs = parent_run_id, max_epochs
        self.describe, self.run_prefix, self.flush_seconds = describe, run_prefix, flush_seconds
        self.total, self.show_progress, self.metric = total, show_progress, metric
        self.stopped_file = stopped_file
        self._client: Any = None
        self._open: dict[str, _OpenRun] = {}
        self._known: dict[str, KnownRun] = {}
        self._progress: Progress | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_client=None, _open={}, _known={}, _progress=None)
        return state

    # -- Tune's hooks -------------------------------------------------------------------------
    def setup(self, stop: Any = None, num_samples: Any = None, total_num_samples: Any = None,
              **info: Any) -> None:  # fmt: skip
        self._client = tracking.client(self.workdir)
        self._known = self.existing_runs()
        if self.show_progress:
            self._progress = Progress(self.total, self._known.values(), self.run_prefix)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._run_of(trial)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        run = self._run_of(trial)
        epoch = int(result.get("epoch", 0))
        if run.logged_early != epoch:
            for row in [*result.get(HISTORY, ()), result]:
                self._record(run, row)
        if result.get("checkpointed") or time.monotonic() - run.flushed_at > self.flush_seconds:
            self._flush(run)
        if self._progress is not None:
            metric = result.get(self.metric) if self.metric else None
            self._progress.result(trial.trial_id, epoch, None if metric is None else float(metric))

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        from ionops.hpo.asha import stopped_trials

        epoch = int((trial.last_result or {}).get("epoch", 0))
        if epoch >= self.max_epochs:
            self._end(trial, "completed")
        elif self.stopped_file and trial.trial_id in stopped_trials(self.stopped_file):
            self._end(trial, "stopped")
        else:  # Tune ends running trials this way when the search is interrupted
            self._end(trial, "interrupted")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._end(trial, "errored")

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.close("interrupted")
        if self._progress is not None:
            self._progress.close()

    def log_now(self, trial: Any, result: dict[str, Any]) -> None:
        """Log a report's epochs at once: ASHA calls it before it saves a decision on them, so
        that a kill after the decision leaves them in MLflow (Tune's callback comes later)."""
        run = self._run_of(trial)
        for row in [*result.get(HISTORY, ()), result]:
            self._record(run, row)
        run.logged_early = int(result.get("epoch", 0))
        self._flush(run)

    # -- for the driver -----------------------------------------------------------------------
    def relocate(self, folder: Path) -> None:
        """The search folder a restored copy lives in now (it may have been moved)."""
        if self.stopped_file is not None:
            self.stopped_file = Path(folder) / self.stopped_file.name

    def rehome(self, workdir: Path, state: dict[str, Any]) -> None:
        """Log to the working folder the search runs in now and to the parent run its state
        names (Tune pickled the working folder and the ids the search started with)."""
        self.workdir = Path(workdir)
        self.experiment_id = str(state["mlflow_experiment_id"])
        self.parent_run_id = str(state["parent_run_id"])

    def existing_runs(self) -> dict[str, KnownRun]:
        """The child runs already under the parent, by trial id."""
        client = self._client or tracking.client(self.workdir)
        return child_runs(client, self.experiment_id, self.parent_run_id, self.metric)

    def close(self, outcome: str) -> None:
        """Flush every open run and end it with ``outcome`` (used when a search stops early)."""
        for trial_id in list(self._open):
            self._finish(trial_id, outcome)

    # -- internals ----------------------------------------------------------------------------
    def _run_of(self, trial: Any) -> _OpenRun:
        trial_id = trial.trial_id
        if trial_id in self._open:
            return self._open[trial_id]
        if trial_id in self._known:
            known = self._known[trial_id]
            run_id, last_step = known.run_id, known.last_step
            if known.outcome != "running":
                self._client.update_run(run_id, status="RUNNING")
                self._client.set_tag(run_id, OUTCOME_TAG, "running")
        else:
            tags = {PARENT_TAG: self.parent_run_id, TRIAL_TAG: trial_id, OUTCOME_TAG: "running"}
            number = trial_id.rsplit("_", 1)[-1]
            writer = tracking.RunWriter.start(
                self._client, self.experiment_id, f"{self.run_prefix}-{number}", tags
            )
            writer.params(self.describe(dict(trial.config)))
            run_id, last_step = writer.run_id, 0
            self._known[trial_id] = KnownRun(run_id, 0, "running")
        self._open[trial_id] = _OpenRun(run_id, last_step)
        return self._open[trial_id]

    @staticmethod
    def _record(run: _OpenRun, row: dict[str, Any]) -> None:
        """Queue one epoch's metrics, unless that epoch is logged already."""
        epoch = int(row.get("epoch", 0))
        values = {k: float(v) for k, v in row.items() if is_result(k, v)}
        if row.get("final"):  # the run's summary: what its last epoch did not log already
            fresh = {k: v for k, v in values.items()
                     if not (epoch == run.last_step and k in run.logged_last)}  # fmt: skip
            run.pending.setdefault(epoch, {}).update(fresh)
            run.logged_last.update(fresh)
        elif epoch > run.last_step:
            run.pending[epoch] = {**values, "epoch": float(epoch)}
            run.last_step = epoch
            run.logged_last = set(run.pending[epoch])
        if "resumed_from_epoch" in row:  # logged even when the epoch itself is a repeat
            resumed = float(row["resumed_from_epoch"])
            run.pending.setdefault(epoch, {})["resumed_from_epoch"] = resumed

    def _flush(self, run: _OpenRun) -> None:
        writer = tracking.RunWriter(self._client, run.run_id)
        for step in sorted(run.pending):
            writer.metrics(run.pending[step], step=step)
        run.pending.clear()
        run.flushed_at = time.monotonic()

    def _end(self, trial: Any, outcome: str) -> None:
        self._run_of(trial)
        self._finish(trial.trial_id, outcome)
        if self._progress is not None:
            self._progress.ended(trial.trial_id, outcome)

    def _finish(self, trial_id: str, outcome: str) -> None:
        run = self._open.pop(trial_id)
        self._flush(run)
        self._client.set_tag(run.run_id, OUTCOME_TAG, outcome)
        self._client.set_terminated(run.run_id, status=OUTCOMES[outcome])
        self._known[trial_id] = KnownRun(run.run_id, run.last_step, outcome)


def child_runs(
    client: Any, experiment_id: str, parent_run_id: str, metric: str | None = None
) -> dict[str, KnownRun]:
    """The trial runs under ``parent_run_id``, by trial id, with the last value of ``metric``
    (the search's: ``validation/mae``...) when one is named."""
    found: dict[str, KnownRun] = {}
    page_token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
            max_results=1000,
            page_token=page_token,
        )
        for run in page:
            trial_id = run.data.tags.get(TRIAL_TAG)
            if trial_id:
                metrics = run.data.metrics
                found[trial_id] = KnownRun(
                    run.info.run_id, int(metrics.get("epoch", 0)),
                    run.data.tags.get(OUTCOME_TAG, "running"),
                    metrics.get(metric) if metric else None,
                )  # fmt: skip
        page_token = page.token
        if not page_token:
            return found


def delete_orphans(client: Any, experiment_id: str, parent_run_id: str, trials: set[str]) -> int:
    """Delete the runs of trials Tune no longer has; return how many.

    A trial started after Tune's last snapshot and cut off by a hard kill is
    not restored: Tune proposes its point again as a new trial. Its run would
    otherwise stay behind as a second, forever RUNNING run of the same point.
    """
    orphans = [run for trial_id, run in child_runs(client, experiment_id, parent_run_id).items()
               if trial_id not in trials]  # fmt: skip
    for run in orphans:
        if run.outcome == "running":  # ended first: a deleted run never stays RUNNING
            client.set_tag(run.run_id, OUTCOME_TAG, "interrupted")
            client.set_terminated(run.run_id, status=tracking.KILLED)
        client.delete_run(run.run_id)
    return len(orphans)


def is_result(key: str, value: Any) -> bool:
    """Whether a reported key is a result: a ``split/metric`` of the family or one of the
    run's figures (:data:`METRICS`); not Tune's bookkeeping (``pid``, ``timestamp``,
    ``iterations_since_restore``...) nor the trial's settings, which Tune adds as
    ``config/NAME`` and ionops logs as parameters."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return numeric and (key in METRICS or ("/" in key and not key.startswith("config/")))


class Progress:
    """One terminal line: trials done of the total by outcome, epochs of the running, best."""

    def __init__(self, total: int | None, known: Iterable[KnownRun], unit: str) -> None:
        from tqdm import tqdm

        known = list(known)
        self.counts = {"completed": 0, "stopped": 0, "errored": 0}
        for run in known:
            if run.outcome in self.counts:
                self.counts[run.outcome] += 1
        scores = [run.metric for run in known if run.metric is not None]
        self.best = min(scores, default=float("inf"))
        self.epochs: dict[str, int] = {}
        # a terminal redraws the line; a log file (SLURM, CI) gets a line every 30 s
        self.interval = 0.5 if sys.stderr.isatty() else 30.0
        self.bar = tqdm(total=total, initial=sum(self.counts.values()), unit=unit,
                        desc=f"{unit}s", dynamic_ncols=True, mininterval=self.interval)  # fmt: skip
        self.shown_at = 0.0
        self._show()

    def result(self, trial_id: str, epoch: int, metric: float | None) -> None:
        self.epochs[trial_id] = epoch
        if metric is not None and metric < self.best:
            self.best = metric
        self._show()

    def ended(self, trial_id: str, outcome: str) -> None:
        self.epochs.pop(trial_id, None)
        if outcome in self.counts:
            self.counts[outcome] += 1
            self.bar.update(1)
        self._show()

    def close(self) -> None:
        self.bar.refresh()
        self.bar.close()

    def _show(self) -> None:
        shown = {k: v for k, v in self.counts.items() if v or k == "completed"}
        best = f"{self.best:.4g}" if self.best < float("inf") else "-"
        running = " ".join(str(e) for e in self.epochs.values()) or "-"
        self.bar.set_postfix(shown | {"running epochs": running, "best": best}, refresh=False)
        if time.monotonic() - self.shown_at >= self.interval:
            self.bar.refresh()
            self.shown_at = time.monotonic()
