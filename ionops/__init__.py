"""ionops: neural surrogates of stiff ionic models.

Generate a dataset with a stiff solver, search a surrogate family's
hyperparameters (FNO, MLP, neural ODE...) with TPE/ASHA on Ray Tune, retrain
the best configuration with several seeds, and review everything in MLflow.

Public surface of the root package (subpackages list their own):

- ``ionops.__version__``
- ``ionops.ExperimentConfig``, ``ionops.load_experiment``: the typed experiment schema
- ``ionops.IonopsError``, ``ionops.UserError``: expected failures and bad input
- ``ionops.load_surrogate``, ``ionops.predict``, ``ionops.Surrogate``: using a trained
  surrogate (:mod:`ionops.serving`; imported on first use)
"""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path as _Path

# From a checkout's root, Python finds this folder before the installed package, and the
# subpackages that live beside it in the checkout (datasets/, hpo/, models/, cluster/,
# configs/: the wheel maps them into ionops) would be missing: look for them there too.
_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "datasets" / "__init__.py").is_file():
    __path__.append(str(_checkout))

from ionops._lazy import lazy_exports  # noqa: E402 (after the path above)
from ionops.caches import use_user_numba_cache  # noqa: E402 (after the path above)
from ionops.config import ExperimentConfig, load_experiment  # noqa: E402 (after the path above)
from ionops.errors import IonopsError, UserError  # noqa: E402 (after the path above)

use_user_numba_cache(__path__)  # before any compiled kernel is declared

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
