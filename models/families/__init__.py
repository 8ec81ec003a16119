"""The surrogate families, one module each (see :mod:`ionops.models.family`)."""
