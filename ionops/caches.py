"""ionops' caches: one user folder, ``$IONOPS_CACHE_DIR`` (default ``~/.cache/ionops``).

It holds paced steady states (:mod:`ionops.datasets.ionic.paced`) and numba's compiled
solver kernels (``numba/``, or ``$NUMBA_CACHE_DIR`` where the user set it). numba would
otherwise write its cache beside each module's source: for a regular install that is
``site-packages/ionops``, and pip's uninstall leaves those files behind (they are not in
the install's record); the folders they keep turn ``ionops.datasets.ionic`` into a
namespace package that shadows the next, editable, install, whose imports then fail
(README command 2 after command 1 did exactly that). numba keys each cached kernel by
its source's full path and time stamp, so several installs share the folder safely.

numba does not look at the sources of the kernels a cached kernel calls from other
modules: after an edit of ``models/node_network.py`` alone, the Heun kernel of
``models/node_kernels.py`` went on running the old network from the cache. The kernels
are therefore kept in a subfolder named by a digest of every ionops module that imports
numba (path, size, time stamp): changing any of them compiles every kernel afresh.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("IONOPS_CACHE_DIR") or Path.home() / ".cache" / "ionops")


def numba_cache_dir() -> Path:
    return Path(os.environ.get("NUMBA_CACHE_DIR") or cache_dir() / "numba")


def kernel_sources(roots: Iterable[str | Path]) -> list[Path]:
    """The modules under ``roots`` (the ionops package's folders; of a folder that is not
    itself a package, only its subfolders that are) that import numba, sorted."""
    folders = set()  # a set: a checkout's root lists the ionops folder again
    for root in map(Path, roots):
        if (root / "__init__.py").is_file():
            folders.add(root.resolve())
        elif root.is_dir():
            folders |= {p.resolve() for p in root.iterdir() if (p / "__init__.py").is_file()}
    found = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            try:
                if "numba" in path.read_text(encoding="utf-8", errors="replace"):
                    found.add(path.resolve())
            except OSError:
                continue
    return sorted(found)


def kernels_digest(roots: Iterable[str | Path]) -> str:
    """A short digest of :func:`kernel_sources`' paths, sizes and time stamps."""
    digest = hashlib.sha256()
    for path in kernel_sources(roots):
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def use_user_numba_cache(roots: Iterable[str | Path]) -> None:
    """Point numba's cache at :func:`numba_cache_dir`, in the subfolder of the kernels'
    digest over ``roots`` (the module docstring says why); before any kernel is declared.
    A process started by an ionops process inherits the folder and keeps it (a second
    digest folder inside it would compile every kernel again in each MPI rank or worker)."""
    base, digest = numba_cache_dir(), kernels_digest(roots)
    os.environ["NUMBA_CACHE_DIR"] = str(base if base.name == digest else base / digest)
    if "numba" in sys.modules:  # imported before ionops: it read its settings already
        from numba.core import config

        config.reload_config()
