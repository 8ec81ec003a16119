"""Ionic models, stiff data generation and dataset loading (``ionops.datasets``).

Public surface: filled in as the data pipeline lands.
"""

__all__: list[str] = []
