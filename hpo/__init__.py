"""Hyperparameter search on Ray Tune with MLflow tracking (``ionops.hpo``).

Public surface: filled in as the search service lands.
"""

__all__: list[str] = []
