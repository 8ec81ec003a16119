"""Ionic models behind one protocol (:class:`IonicModel`), found by name.

Each model is declared once, in its own module (states, units, parameters, gates,
observables, currents and its compiled equations), and named by an entry point in the
group ``ionops.ionic_models`` (``pyproject.toml``): another package adds a model the same
way. Importing a model's module compiles nothing; its kernels compile on first use.

>>> from ionops.datasets.ionic import get_ionic_model
>>> get_ionic_model("hh").state_names
('V', 'm', 'h', 'n')
"""

from ionops.datasets.ionic.base import IonicModel, available, get_ionic_model

available_models = available

__all__ = ["IonicModel", "available", "available_models", "get_ionic_model"]
