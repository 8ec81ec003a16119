"""One distribution, one import name: the user's folders import as ionops.*, nothing else leaks."""

import importlib
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUBPACKAGES = ["datasets", "models", "hpo", "cluster"]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_subpackage_maps_to_the_top_level_folder(name):
    module = importlib.import_module(f"ionops.{name}")
    assert Path(module.__file__).resolve().parent == REPO / name


def _probe(python, cwd, env=None):
    """Import the subpackages in a fresh interpreter away from the source tree."""
    code = (
        "import importlib.util, json, ionops.datasets, ionops.models, ionops.hpo, ionops.cluster;"
        "print(json.dumps({'ionops': ionops.__file__,"
        " 'datasets': getattr(importlib.util.find_spec('datasets'), 'origin', None),"
        " 'models': getattr(importlib.util.find_spec('models'), 'origin', None)}))"
    )
    result = subprocess.run(
        [python, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_installed_package_exposes_no_top_level_datasets_or_models(tmp_path):
    found = _probe(sys.executable, tmp_path)
    for name in ("datasets", "models"):
        origin = found[name]
        assert origin is None or REPO not in Path(origin).resolve().parents, origin


@pytest.mark.slow
def test_wheel_holds_only_the_ionops_package_and_imports_from_it(tmp_path):
    # build from a clean copy: setuptools would reuse a stale build/ folder of the checkout
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "ionops-work", "__pycache__", "*.egg-info", "dist"))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("ionops-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top_levels == {"ionops"}
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in mapping["package-dir"].items():
        prefix = package.replace(".", "/")
        for source in (REPO / folder).rglob("*.py"):
            if "__pycache__" in source.parts:
                continue
            assert f"{prefix}/{source.relative_to(REPO / folder).as_posix()}" in names, source
    assert "ionops/configs/fhn.toml" in names

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    found = _probe(sys.executable, tmp_path, env)
    assert Path(found["ionops"]).resolve().parent == (target / "ionops").resolve()
    help_text = subprocess.run(
        [str(target / "bin" / "ionops"), "--help"], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "commands:" in help_text


def test_the_checkout_root_does_not_shadow_the_subpackages():
    """Python run from the checkout's root finds ./ionops before the installed package; its
    subpackages (datasets/, hpo/... beside it) are found too. Run without site's path hooks
    (an editable install's finder would hide the problem), as a non-editable install is."""
    import site

    root = Path(__file__).resolve().parents[1]
    code = (f"import sys; sys.path.extend({site.getsitepackages()!r}); import "
            "ionops.datasets.catalog, ionops.hpo, ionops.configs; "
            "print(ionops.__file__)")  # fmt: skip
    found = subprocess.run([sys.executable, "-S", "-c", code], cwd=root, capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert found.returncode == 0, found.stderr[-1000:]
    assert found.stdout.strip() == str(root / "ionops" / "__init__.py")
