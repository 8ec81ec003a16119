"""The training core (``ionops.training``): one loop for a run, a search trial and a retraining.

Public surface (imported on first use):

- ``train``, ``TrainSettings``, ``EpochReport``, ``TrainingResult``: the loop
- ``summarise``: means of per-sample errors; ``NonFiniteLoss``: a run that diverged
- ``save_checkpoint``, ``load_checkpoint``: self-describing, ``weights_only`` checkpoints
"""

from typing import TYPE_CHECKING

from ionops._lazy import lazy_exports

_EXPORTS = {
    "train": "ionops.training.loop",
    "TrainSettings": "ionops.training.loop",
    "EpochReport": "ionops.training.loop",
    "TrainingResult": "ionops.training.loop",
    "NonFiniteLoss": "ionops.training.loop",
    "summarise": "ionops.training.loop",
    "save_checkpoint": "ionops.training.checkpoint",
    "load_checkpoint": "ionops.training.checkpoint",
}
__all__ = [
    "EpochReport",
    "NonFiniteLoss",
    "TrainSettings",
    "TrainingResult",
    "load_checkpoint",
    "save_checkpoint",
    "summarise",
    "train",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ionops.training.checkpoint import load_checkpoint, save_checkpoint
    from ionops.training.loop import (
        EpochReport,
        NonFiniteLoss,
        TrainingResult,
        TrainSettings,
        summarise,
        train,
    )
