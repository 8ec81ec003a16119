"""ionops: neural-operator surrogates of stiff ionic models.

Generate a dataset with a stiff solver, search FNO hyperparameters with
TPE/ASHA on Ray Tune, retrain the best configuration with several seeds, and
review everything in MLflow.

Public surface of the root package (subpackages list their own):

- ``ionops.__version__``
- ``ionops.ExperimentConfig``, ``ionops.load_experiment``: the typed experiment schema
- ``ionops.IonopsError``, ``ionops.UserError``: expected failures and bad input
- ``ionops.load_surrogate``, ``ionops.predict``, ``ionops.Surrogate``: using a trained
  surrogate (:mod:`ionops.serving`; imported on first use)
"""

from importlib.metadata import PackageNotFoundError, version

from ionops._lazy import lazy_exports
from ionops.caches import use_user_numba_cache
from ionops.config import ExperimentConfig, load_experiment
from ionops.errors import IonopsError, UserError

use_user_numba_cache()  # before any compiled kernel is declared

__getattr__, _lazy_dir = lazy_exports(__name__, {
    "load_surrogate": "ionops.serving.sources", "predict": "ionops.serving.sources",
    "Surrogate": "ionops.serving.surrogate",
})  # fmt: skip

try:
    __version__ = version("ionops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ExperimentConfig",
    "IonopsError",
    "Surrogate",
    "UserError",
    "__version__",
    "load_experiment",
    "load_surrogate",
    "predict",
]
