"""Ray for the driver, and Ray clusters inside SLURM allocations (``ionops.cluster``).

Public surface (imported on first use):

- ``connect``, ``disconnect``, ``ray_tmpdir``: a local Ray with safe defaults
  (no dashboard, explicit auth mode, a short temp dir) or an explicit address
"""

from typing import TYPE_CHECKING

from ionops._lazy import lazy_exports

_EXPORTS = {
    "connect": "ionops.cluster.runtime",
    "disconnect": "ionops.cluster.runtime",
    "ray_tmpdir": "ionops.cluster.runtime",
}
__all__ = [
    "connect",
    "disconnect",
    "ray_tmpdir",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ionops.cluster.runtime import connect, disconnect, ray_tmpdir
