"""Surrogate families: the Fourier neural operator and its parameter count (``ionops.models``).

Public surface: filled in as the surrogates land.
"""

__all__: list[str] = []
