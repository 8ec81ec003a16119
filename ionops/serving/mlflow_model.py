"""A retrained surrogate as an MLflow model: logged on the retraining's run, registered.

The model is a pyfunc whose ``MLmodel`` names this module as its loader and
whose data is the surrogate's checkpoint (``data/checkpoint.pt``): loading it,
by MLflow (``mlflow.pyfunc.load_model``) or by ionops (``ionops predict
models:/NAME/VERSION``), reads the weights with ``weights_only=True`` and
builds the network with the project's code; no pickled object is stored or
loaded. The signature: one column per input (float64), a tensor of
trajectories (n, n_states, n_t) float32 in physical units out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ionops.errors import UserError

ARTIFACT = "surrogate"
CHECKPOINT = "checkpoint.pt"


def registered_name(search_name: str) -> str:
    """The registry name of a search's retrained surrogate (it holds experiment and family)."""
    return f"ionops-{search_name}"


def log_surrogate(tracking_uri: str, run_id: str, checkpoint: Path, name: str) -> str:
    """Log ``checkpoint`` as the model of run ``run_id`` and register it under ``name``;
    returns the registered version."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    from ionops import __version__, tracking
    from ionops.serving.surrogate import Surrogate
    from ionops.training.checkpoint import load_checkpoint

    surrogate = Surrogate(load_checkpoint(checkpoint), str(checkpoint))
    example = {name: [float(np.mean(surrogate.ranges.get(name, (0.0, 0.0))))]
               for name in surrogate.input_names}  # fmt: skip
    shape = (-1, len(surrogate.state_names), surrogate.time.size)
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", n) for n in surrogate.input_names]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), shape, "states")]),
    )
    import pandas as pd  # type: ignore[import-untyped]
    import torch

    with tracking.fluent_store(tracking_uri), mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name=ARTIFACT, loader_module=__name__, data_path=str(checkpoint),
            signature=signature, input_example=pd.DataFrame(example),
            registered_model_name=name,
            pip_requirements=[f"ionops=={__version__}", f"torch=={torch.__version__}"],
        )  # fmt: skip
    return str(info.registered_model_version)


def checkpoint_in(folder: Path, uri: str) -> Path:
    """The checkpoint inside a downloaded model's folder."""
    found = sorted(folder.rglob(CHECKPOINT))
    if not found:
        raise UserError(f"{uri} is not an ionops surrogate (it holds no {CHECKPOINT})")
    return found[0]


class PyfuncSurrogate:
    """What ``mlflow.pyfunc.load_model`` returns the predictions of: inputs -> trajectories."""

    def __init__(self, checkpoint: Path) -> None:
        from ionops.serving.surrogate import Surrogate
        from ionops.training.checkpoint import load_checkpoint

        self.surrogate = Surrogate(load_checkpoint(checkpoint), str(checkpoint))

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        columns = {name: np.asarray(model_input[name], dtype=np.float64)
                   for name in self.surrogate.input_names}  # fmt: skip
        return self.surrogate.predict(columns, **(params or {})).states


def _load_pyfunc(data_path: str) -> PyfuncSurrogate:
    """MLflow's entry point (``loader_module``): the model's data is the checkpoint."""
    path = Path(data_path)
    return PyfuncSurrogate(path if path.is_file() else checkpoint_in(path, data_path))
