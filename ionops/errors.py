"""Errors that carry their fix.

The command line prints an :class:`IonopsError` as its message alone (no
traceback) and exits with status 2; anything else is a bug and keeps its
traceback. :class:`UserError` is bad input: its message names the parameter,
the bad value and what is allowed.
"""

# The exit status of a command that stopped early on a signal or time limit and continues
# when run again (EX_TEMPFAIL); SLURM job steps requeue on it.
EXIT_INTERRUPTED = 75


class IonopsError(Exception):
    """An expected failure whose message says what happened and what to try."""


class UserError(IonopsError):
    """Bad input: the message names the parameter, the bad value and what is allowed."""


class ConfigError(UserError, ValueError):
    """An experiment file or an override does not fit the schema."""


class DiskFull(IonopsError):
    """A write refused for want of room, where ionops knows the place: ``where`` is `` at PATH``."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


def disk_full(exc: BaseException) -> str | None:
    """`` at PATH`` (or ``""``) where ``exc`` or what caused it is a full disk; None otherwise."""
    import errno

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DiskFull):
            return seen.where
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return f" at {seen.filename}" if seen.filename else ""
        if "database or disk is full" in str(seen):
            return ""
        seen = seen.__cause__ or seen.__context__
    return None
