"""Ionic models behind one protocol (:class:`IonicModel`), found by name.

>>> from ionops.datasets.ionic import get_ionic_model
>>> get_ionic_model("hh").state_names
('V', 'm', 'h', 'n')
"""

from ionops.datasets.ionic import fhn, fhn_werneck, hh, ord
from ionops.datasets.ionic.base import IonicModel, available, get_ionic_model, register

available_models = available

register("fhn", fhn.model)
register("fhn_werneck", fhn_werneck.model)
register("hh", hh.model)
register("ord", ord.model)

__all__ = ["IonicModel", "available", "available_models", "get_ionic_model"]
