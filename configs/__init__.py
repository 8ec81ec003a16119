"""Shipped experiment files, one per ionic model (read with ``ionops.load_experiment``)."""
