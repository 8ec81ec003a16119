"""ASHA whose rung records survive a resume, deciding as if never interrupted.

Ray Tune 2.60 saves the searcher's state with the experiment but not the
scheduler's: after ``Tuner.restore`` ASHA's rungs are empty, so the first
trial to reach each rung passes whatever its metric. :class:`PersistentASHA`
writes its rungs, and the trials it stopped with the epoch and metric they
stopped at, to a small JSON file whenever a decision changes them, and
reads them back the first time a restored search uses it.

Tune's own snapshot of the experiment lags behind that file, and a kill in
between leaves two traces that would change the search's decisions:

- a trial ASHA stopped that Tune still has running: it would train to the
  end (a trial already recorded at a rung passes it again). It is stopped
  before it restarts, and the searcher is told the result it stopped with,
  as it was told when the trial stopped;
- a record of a trial Tune never saved (it proposes the same point again
  under a new id): the stale record would raise the rung's cutoff. Records
  of trials Tune does not know are dropped before the first trial starts.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from ionops.errors import UserError
from ionops.workdir import write_json


def keep_in(trial: Any, folder: Path) -> None:
    """Give a trial Tune creates after a restore the folder the search is in now.

    Tune 2.60 points the trials it restores at the folder it restores from, but new ones
    take the storage its search generator pickled: where the search was started. A search
    whose folder was moved would write their checkpoints there (Tune refuses, and each such
    trial errors). Called by the schedulers as each trial is added, before it starts.
    """
    storage = getattr(trial, "storage", None)
    if storage is not None and Path(storage.storage_fs_path) != Path(folder):
        moved = copy.copy(storage)
        moved.storage_fs_path = str(folder)
        trial.set_storage(moved)


class FolderFIFO(FIFOScheduler):
    """Tune's first-in-first-out scheduler, keeping new trials in the search's folder (see
    :func:`keep_in`)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder)

    def relocate(self, folder: Path) -> None:
        self.folder = Path(folder)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        keep_in(trial, self.folder)
        super().on_trial_add(tune_controller, trial)


class PersistentASHA(ASHAScheduler):
    """``ASHAScheduler`` keeping its rungs (and the trials it stopped) in ``state_file``."""

    def __init__(self, state_file: Path, **settings: Any) -> None:
        super().__init__(**settings)
        self.state_file = Path(state_file)
        self.stopped: dict[str, tuple[int, float]] = {}  # trial -> (epoch, metric) it stopped at
        self.before_decision: Any = None  # called with (trial, result) before a rung decision
        self._loaded = False
        self._reconciled = False

    def rungs(self) -> list[list[dict[str, float]]]:
        """The records of every rung of every bracket: ``trial_id -> signed metric``."""
        return [[dict(recorded) for _, recorded in bracket._rungs] for bracket in self._brackets]

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._load_once()
        keep_in(trial, self.state_file.parent)
        super().on_trial_add(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        self._load_once()
        if not self._reconciled:
            self._reconciled = True
            self._reconcile(tune_controller)
        return super().choose_trial_to_run(tune_controller)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        self._load_once()
        if trial.trial_id in self.stopped:
            return str(self.STOP)
        # a trial restored as running may reach here without on_trial_add
        self._trial_info.setdefault(trial.trial_id, self._brackets[0])
        epoch = result.get(self._time_attr, 0)
        if self.before_decision is not None and epoch in self._milestones():
            self.before_decision(trial, result)  # its epochs logged before the decision is saved
        before = self._sizes()
        decision: str = super().on_trial_result(tune_controller, trial, result)
        early = decision == self.STOP and epoch < self._max_t
        if early:
            self.stopped[trial.trial_id] = (int(epoch), float(result[str(self._metric)]))
        if early or self._sizes() != before:
            self._save()
        return decision

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        self._load_once()
        before = self._sizes()
        if trial.trial_id in self._trial_info:
            super().on_trial_complete(tune_controller, trial, result)
        if self._sizes() != before:
            self._save()

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._trial_info.pop(trial.trial_id, None)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles the scheduler once, when the search starts; a restored
        # copy must read the file again rather than trust that snapshot.
        state = self.__dict__.copy()
        state.update(_loaded=False, _reconciled=False, before_decision=None)
        return state

    def relocate(self, folder: Path) -> None:
        """The search folder a restored copy lives in now (it may have been moved)."""
        self.state_file = Path(folder) / self.state_file.name

    def _reconcile(self, tune_controller: Any) -> None:
        """Square the rungs with the trials of Tune's restored snapshot (see the module)."""
        trials = tune_controller.get_trials()
        known = {trial.trial_id for trial in trials}
        changed = False
        for bracket in self._brackets:
            for _, recorded in bracket._rungs:
                for trial_id in set(recorded) - known:
                    del recorded[trial_id]
                    changed = True
        for trial_id in set(self.stopped) - known:
            del self.stopped[trial_id]
            changed = True
        if changed:
            self._save()
            print("ASHA: dropped the rung records of trials Tune had not saved (it proposes "
                  "their points again)", flush=True)  # fmt: skip
        for trial in trials:
            if trial.trial_id in self.stopped and trial.status in (Trial.PENDING, Trial.PAUSED):
                epoch, metric = self.stopped[trial.trial_id]
                print(f"ASHA: {trial.trial_id} stays stopped at epoch {epoch} (Tune's snapshot "
                      "had it still running)", flush=True)  # fmt: skip
                result = {self._time_attr: epoch, str(self._metric): metric}
                # what Tune tells the searcher when ASHA stops a trial (Tune 2.60 has no
                # public way to stop a pending trial with its result)
                tune_controller._search_alg.on_trial_complete(trial.trial_id, result=result)
                tune_controller.stop_trial(trial)

    def _milestones(self) -> set[float]:
        return {milestone for bracket in self._brackets for milestone, _ in bracket._rungs}

    def _sizes(self) -> list[int]:
        return [len(recorded) for bracket in self._brackets for _, recorded in bracket._rungs]

    def _load_once(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if not self.state_file.exists():
            return
        saved = _read(self.state_file)
        at = saved.get("stopped_at", {})
        self.stopped = {trial_id: tuple(at.get(trial_id, (0, float("nan"))))
                        for trial_id in saved["stopped"]}  # fmt: skip
        for bracket, rungs in zip(self._brackets, saved["rungs"], strict=True):
            for (_, recorded), records in zip(bracket._rungs, rungs, strict=True):
                recorded.clear()
                recorded.update(records)

    def _save(self) -> None:
        write_json(self.state_file, {
            "rungs": self.rungs(), "stopped": sorted(self.stopped),
            "stopped_at": {trial_id: list(at) for trial_id, at in sorted(self.stopped.items())},
        })  # fmt: skip


def stopped_trials(state_file: Path) -> dict[str, tuple[int, float]]:
    """The trials ASHA stopped early, with the epoch and metric each stopped at (NaN where an
    older state file did not record them), from a :class:`PersistentASHA` state file."""
    if not Path(state_file).exists():
        return {}
    saved = _read(Path(state_file))
    at = saved.get("stopped_at", {})
    return {trial_id: tuple(at.get(trial_id, (0, math.nan))) for trial_id in saved["stopped"]}


def _read(state_file: Path) -> dict[str, Any]:
    """ASHA's saved state; a damaged file is refused by name (its decisions cannot be
    guessed: a trial it stopped would train again, or one it kept would stay stopped)."""
    try:
        saved = json.loads(state_file.read_text())
        if not (isinstance(saved, dict) and isinstance(saved.get("stopped"), list)
                and isinstance(saved.get("rungs"), list)):  # fmt: skip
            raise ValueError("not ASHA's state as ionops writes it")
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"ASHA's state file {state_file} is damaged ({exc}); start the search "
                        "over with --overwrite (its trials are lost)") from None  # fmt: skip
    return saved


def rung_epochs(**settings: Any) -> frozenset[int]:
    """The epochs at which ASHA with these settings decides: its rungs' milestones."""
    scheduler = ASHAScheduler(time_attr="epoch", **settings)
    return frozenset(int(milestone) for b in scheduler._brackets for milestone, _ in b._rungs)
