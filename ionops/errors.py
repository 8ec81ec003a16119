"""Errors that carry their fix.

Every failure caused by what a user typed or supplied derives from
:class:`UserError`; the command line prints its message alone (no traceback)
and exits with status 2. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: the message names the parameter, the bad value and what is allowed."""


class ConfigError(UserError, ValueError):
    """An experiment file or an override does not fit the schema."""
