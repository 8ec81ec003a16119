"""numba's cache of the solver kernels: it lives in a user cache folder, never beside the
installed sources (pip's uninstall leaves such files, and their folders shadowed the next
editable install); the explicit Euler kernel is compiled once for every model and cached
once: a new process loads it instead of compiling it again and adding a cache file."""

import os
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

    cache = Path(module._advance._cache._cache_path)
    subprocess.run([sys.executable, "-c", RUN], check=True, timeout=600)  # compiled or loaded
    before = sorted(cache.glob("euler._advance-*"))
    assert before, f"nothing cached in {cache}"
    subprocess.run([sys.executable, "-c", RUN], check=True, timeout=600)
    assert sorted(cache.glob("euler._advance-*")) == before


WHERE = """
import sys
{first}
import ionops.datasets._sparse_lu as kernels
print(kernels.new_sparse_lu._cache._cache_path)
"""


@pytest.mark.parametrize("first", ["", "import numba"], ids=["ionops first", "numba first"])
def test_kernels_are_cached_in_the_user_cache_not_beside_the_sources(tmp_path, first):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["IONOPS_CACHE_DIR"] = str(tmp_path / "ionops")
    out = subprocess.run(
        [sys.executable, "-c", WHERE.format(first=first)],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    cache = Path(out.stdout.strip())
    assert cache.is_relative_to(tmp_path / "ionops" / "numba"), cache


def test_a_users_numba_cache_dir_is_kept(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    out = subprocess.run(
        [sys.executable, "-c", WHERE.format(first="")],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert Path(out.stdout.strip()).is_relative_to(tmp_path / "mine")


CALLER = """
import sys
sys.path.insert(0, {root!r})
from ionops.caches import use_user_numba_cache
use_user_numba_cache([{root!r} + "/kernels"])
from kernels.caller import twice
print(twice(1.0))
"""


@pytest.mark.parametrize("digest", [True, False], ids=["ionops' folder", "numba alone"])
def test_an_edited_callee_in_another_module_is_compiled_again(tmp_path, digest):
    """numba's cache checks only the cached kernel's own source: an edit of a kernel it calls
    from another module is seen only because the cache's folder is named by a digest of
    every module that imports numba (with one fixed folder, the old result comes back)."""
    package = tmp_path / "kernels"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "callee.py").write_text(
        "from numba import njit\n\n@njit(cache=True)\ndef value(x):\n    return x + 1.0\n"
    )
    (package / "caller.py").write_text(
        "from numba import njit\nfrom kernels.callee import value\n\n"
        "@njit(cache=True)\ndef twice(x):\n    return 2.0 * value(x)\n"
    )
    run = CALLER.format(root=str(tmp_path))
    if not digest:  # numba's own behaviour: a fixed folder
        run = run.replace('use_user_numba_cache([', 'import os; os.environ["NUMBA_CACHE_DIR"] '
                          f'= {str(tmp_path / "fixed")!r}; ([')  # fmt: skip
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def result() -> float:
        out = subprocess.run([sys.executable, "-c", run], env=env, check=True, timeout=120,
                             capture_output=True, text=True)  # fmt: skip
        return float(out.stdout.strip().splitlines()[-1])

    assert result() == 4.0
    (package / "callee.py").write_text(
        "from numba import njit\n\n@njit(cache=True)\ndef value(x):\n    return x + 10.0\n"
    )
    assert result() == (22.0 if digest else 4.0)


def test_a_process_started_by_ionops_keeps_its_cache_folder(tmp_path):
    """An MPI rank or a worker inherits NUMBA_CACHE_DIR with the digest folder in it, and
    uses the same folder (another digest folder inside it would compile every kernel
    again)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    show = "import os, ionops; print(os.environ['NUMBA_CACHE_DIR'])"
    parent = subprocess.run(
        [sys.executable, "-c", f"{show}; import subprocess, sys; "
         f"subprocess.run([sys.executable, '-c', {show!r}], check=True)"],
        env=env, check=True, timeout=120, capture_output=True, text=True,
    )  # fmt: skip
    own, child = parent.stdout.split()
    assert Path(own).parent == tmp_path / "mine"
    assert child == own
