"""ASHA whose rung records survive a resume.

Ray Tune 2.60 saves the searcher's state with the experiment but not the
scheduler's: after ``Tuner.restore`` ASHA's rungs are empty, so the first
trial to reach each rung passes whatever its metric. :class:`PersistentASHA`
writes its rungs to a small JSON file whenever a trial is recorded at one,
and reads them back the first time a restored search uses it, so decisions
after a resume equal those of an uninterrupted search.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune.schedulers import ASHAScheduler

from ionops.workdir import write_json


class PersistentASHA(ASHAScheduler):
    """``ASHAScheduler`` keeping its rungs (and the trials it stopped) in ``state_file``."""

    def __init__(self, state_file: Path, **settings: Any) -> None:
        super().__init__(**settings)
        self.state_file = Path(state_file)
        self.stopped: set[str] = set()
        self._loaded = False

    def rungs(self) -> list[list[dict[str, float]]]:
        """The records of every rung of every bracket: ``trial_id -> signed metric``."""
        return [[dict(recorded) for _, recorded in bracket._rungs] for bracket in self._brackets]

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._load_once()
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        self._load_once()
        # a trial restored as running may reach here without on_trial_add
        self._trial_info.setdefault(trial.trial_id, self._brackets[0])
        before = self._sizes()
        decision: str = super().on_trial_result(tune_controller, trial, result)
        early = decision == self.STOP and result.get(self._time_attr, 0) < self._max_t
        if early:
            self.stopped.add(trial.trial_id)
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
        state["_loaded"] = False
        return state

    def _sizes(self) -> list[int]:
        return [len(recorded) for bracket in self._brackets for _, recorded in bracket._rungs]

    def _load_once(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if not self.state_file.exists():
            return
        saved = json.loads(self.state_file.read_text())
        self.stopped = set(saved["stopped"])
        for bracket, rungs in zip(self._brackets, saved["rungs"], strict=True):
            for (_, recorded), records in zip(bracket._rungs, rungs, strict=True):
                recorded.clear()
                recorded.update(records)

    def _save(self) -> None:
        write_json(self.state_file, {"rungs": self.rungs(), "stopped": sorted(self.stopped)})


def stopped_trials(state_file: Path) -> set[str]:
    """The trials ASHA stopped early, as recorded in a :class:`PersistentASHA` state file."""
    if not Path(state_file).exists():
        return set()
    return set(json.loads(Path(state_file).read_text())["stopped"])


def rung_epochs(**settings: Any) -> frozenset[int]:
    """The epochs at which ASHA with these settings decides: its rungs' milestones."""
    scheduler = ASHAScheduler(time_attr="epoch", **settings)
    return frozenset(int(milestone) for b in scheduler._brackets for milestone, _ in b._rungs)
