"""Helpers the tests import: small generation settings."""

from ionops.datasets.generate import GenerationSpec


def small_spec(model: str = "hh", **changes) -> GenerationSpec:
    """A few dozen samples on a coarse grid: seconds to generate."""
    settings = {"n_t": 64, "t_end_ms": 100.0, "fraction": 0.01, "seed": 3} | changes
    return GenerationSpec(model=model, **settings)
