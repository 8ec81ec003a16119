"""ionops: neural-operator surrogates of stiff ionic models.

Generate a dataset with a stiff solver, search FNO hyperparameters with
TPE/ASHA on Ray Tune, retrain the best configuration with several seeds, and
review everything in MLflow.

Public surface of the root package (subpackages list their own):

- ``ionops.__version__``
- ``ionops.ExperimentConfig``, ``ionops.load_experiment``: the typed experiment schema
- ``ionops.IonopsError``, ``ionops.UserError``: expected failures and bad input
"""

from importlib.metadata import PackageNotFoundError, version

from ionops.config import ExperimentConfig, load_experiment
from ionops.errors import IonopsError, UserError

try:
    __version__ = version("ionops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["ExperimentConfig", "IonopsError", "UserError", "__version__", "load_experiment"]
