"""Hyperparameter search on Ray Tune with MLflow tracking, retraining and reports (``ionops.hpo``).

Public surface (imported on first use):

- ``run_search``, ``SearchOptions``, ``SearchOutcome``, ``load_outcome``: the
  TPE/ASHA search of an experiment, resumable, one MLflow run per trial
- ``run_retrain``, ``RetrainOptions``: five-seed retraining of the best trial
- ``make_report``: the paper's figures and tables from finished retrainings
- ``PersistentASHA``: ASHA whose rung records survive ``Tuner.restore``

The search spaces, and how a point becomes a model, belong to each surrogate
family (:mod:`ionops.models.family`); nothing here names one.
"""

from typing import TYPE_CHECKING

from ionops._lazy import lazy_exports

_EXPORTS = {
    "PersistentASHA": "ionops.hpo.asha",
    "make_report": "ionops.hpo.report",
    "RetrainOptions": "ionops.hpo.retrain",
    "run_retrain": "ionops.hpo.retrain",
    "SearchOptions": "ionops.hpo.search",
    "SearchOutcome": "ionops.hpo.outcome",
    "load_outcome": "ionops.hpo.outcome",
    "run_search": "ionops.hpo.search",
}
__all__ = [
    "PersistentASHA",
    "RetrainOptions",
    "SearchOptions",
    "SearchOutcome",
    "load_outcome",
    "make_report",
    "run_retrain",
    "run_search",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ionops.hpo.asha import PersistentASHA
    from ionops.hpo.outcome import SearchOutcome, load_outcome
    from ionops.hpo.report import make_report
    from ionops.hpo.retrain import RetrainOptions, run_retrain
    from ionops.hpo.search import SearchOptions, run_search
