"""One driver per search or retraining folder: an exclusive lock that names its holder.

The lock is a POSIX record lock (``fcntl.lockf``, which NFS honours across
nodes) on ``FOLDER/.lock``, whose text names the holder's host and PID. The
kernel drops it when the process ends, however it ends (``kill -9`` too), so
a lock is never stale; a second driver is refused with the first one's name.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ionops.errors import UserError

LOCK_FILE = ".lock"


@contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold ``folder``'s lock while the block runs; refuse if another process holds it.

    A folder this call created and that holds nothing but the lock when the block ends (a
    start that failed) is removed again.
    """
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    handle = path.open("a+")
    locked = False
    try:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserError(
                f"the {what} in {folder} is running already ({holder}); wait for it to end, "
                "or stop it (Ctrl-C, SIGTERM) and run this command again to continue"
            ) from None
        locked = True
        handle.seek(0)
        handle.truncate()
        handle.write(f"PID {os.getpid()} on host {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        if locked and created and [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            path.unlink()
            folder.rmdir()
        handle.close()  # releases the lock
