"""Hyperparameter search on Ray Tune with MLflow tracking, retraining and reports (``ionops.hpo``).

Public surface (imported on first use):

- ``run_search``, ``SearchOptions``, ``SearchOutcome``, ``load_outcome``: the
  TPE/ASHA search of an experiment, resumable, one MLflow run per trial
- ``run_retrain``, ``RetrainOptions``: five-seed retraining of the best trial
- ``make_report``: the paper's figures and tables from finished retrainings
- ``PersistentASHA``: ASHA whose rung records survive ``Tuner.restore``
- ``hyperopt_space``, ``default_point``, ``configure``, ``check_space``,
  ``TrialConfig``: the unconstrained and constrained search spaces, and a
  sampled point as a buildable FNO with its derived k_max and parameter count
"""

from typing import TYPE_CHECKING

from ionops._lazy import lazy_exports

_EXPORTS = {
    "PersistentASHA": "ionops.hpo.asha",
    "make_report": "ionops.hpo.report",
    "RetrainOptions": "ionops.hpo.retrain",
    "run_retrain": "ionops.hpo.retrain",
    "SearchOptions": "ionops.hpo.search",
    "SearchOutcome": "ionops.hpo.search",
    "load_outcome": "ionops.hpo.search",
    "run_search": "ionops.hpo.search",
    "TrialConfig": "ionops.hpo.spaces",
    "check_space": "ionops.hpo.spaces",
    "configure": "ionops.hpo.spaces",
    "default_point": "ionops.hpo.spaces",
    "hyperopt_space": "ionops.hpo.spaces",
}
__all__ = [
    "PersistentASHA",
    "RetrainOptions",
    "SearchOptions",
    "SearchOutcome",
    "TrialConfig",
    "check_space",
    "configure",
    "default_point",
    "hyperopt_space",
    "load_outcome",
    "make_report",
    "run_retrain",
    "run_search",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ionops.hpo.asha import PersistentASHA
    from ionops.hpo.report import make_report
    from ionops.hpo.retrain import RetrainOptions, run_retrain
    from ionops.hpo.search import SearchOptions, SearchOutcome, load_outcome, run_search
    from ionops.hpo.spaces import (
        TrialConfig,
        check_space,
        configure,
        default_point,
        hyperopt_space,
    )
