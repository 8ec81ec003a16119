"""The explicit Euler kernel is compiled once for every model and cached once: a new process
loads it from numba's cache instead of compiling it (and adding a cache file) again."""

import os
import subprocess
import sys

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
def test_one_cache_entry_serves_every_model_and_process(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", RUN], env=env, check=True, timeout=600)
    entries = sorted(p.name for p in tmp_path.rglob("euler._advance*"))
    assert len(entries) == 2, entries  # one index, one compiled object
