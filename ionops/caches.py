"""ionops' caches: one user folder, ``$IONOPS_CACHE_DIR`` (default ``~/.cache/ionops``).

It holds paced steady states (:mod:`ionops.datasets.ionic.paced`) and numba's compiled
solver kernels (``numba/``, or ``$NUMBA_CACHE_DIR`` where the user set it). numba would
otherwise write its cache beside each module's source: for a regular install that is
``site-packages/ionops``, and pip's uninstall leaves those files behind (they are not in
the install's record); the folders they keep turn ``ionops.datasets.ionic`` into a
namespace package that shadows the next, editable, install, whose imports then fail
(README command 2 after command 1 did exactly that). numba keys each cached kernel by
its source's full path and time stamp, so several installs share the folder safely.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("IONOPS_CACHE_DIR") or Path.home() / ".cache" / "ionops")


def numba_cache_dir() -> Path:
    return Path(os.environ.get("NUMBA_CACHE_DIR") or cache_dir() / "numba")


def use_user_numba_cache() -> None:
    """Point numba's cache at :func:`numba_cache_dir`; before any kernel is declared."""
    os.environ["NUMBA_CACHE_DIR"] = str(numba_cache_dir())
    if "numba" in sys.modules:  # imported before ionops: it read its settings already
        from numba.core import config

        config.reload_config()
