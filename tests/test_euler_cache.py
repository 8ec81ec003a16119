"""The explicit Euler kernel is compiled once for every model and cached once: a new process
loads it from numba's cache instead of compiling it again and adding a cache file."""

import subprocess
import sys
from pathlib import Path

import pytest

RUN = """
import numpy as np
from ionops.datasets.euler import euler
from ionops.datasets.ionic import get_ionic_model
for name in ("fhn_werneck", "fhn", "hh"):
    model = get_ionic_model(name)
    y0 = np.tile(model.initial_state(model.parameter_vector()), (3, 1))
    states = euler(model, model.parameter_vector(), y0, np.array([0.0, 0.5, 1.0]), 0.01,
                   np.array([[10, 20]] * 3))
    assert np.isfinite(states).all()
"""


@pytest.mark.slow
def test_a_new_process_adds_nothing_to_the_cache():
    import ionops.datasets.euler as module

    cache = Path(module.__file__).parent / "__pycache__"
    subprocess.run([sys.executable, "-c", RUN], check=True, timeout=600)  # compiled or loaded
    before = sorted(cache.glob("euler._advance-*"))
    if not before:
        pytest.skip(f"numba caches elsewhere than {cache} here (a read-only install)")
    subprocess.run([sys.executable, "-c", RUN], check=True, timeout=600)
    assert sorted(cache.glob("euler._advance-*")) == before
