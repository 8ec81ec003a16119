"""Every surrogate family through every command, on the tiny experiment it declares.

Parametrised over the registered families and ``stairnet``, a family written
outside ionops (``tests/plugin_family/``): it joins by entry point, as a
package installed beside ionops would, with its own dataset kind, stimulus
protocol and two-phase optimisation, and nothing in ionops edited for it. A
new family gets this test by being registered and declaring ``smoke_test``.

For each: ``train``; ``tune`` stopped after its first trial started (SIGUSR1,
what SLURM sends before a time limit) and resumed to the end; ``retrain`` with
two seeds; ``report``; ``predict --compare`` of the dataset's test split,
which gives the retraining's test errors back.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ionops.models.registry import surrogate_families

IONOPS = str(Path(sys.executable).parent / "ionops")
PLUGIN = Path(__file__).parent / "plugin_family"
FAMILIES = [*surrogate_families(), "stairnet"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A distribution declaring the test family and its dataset kind, as pip installs one."""
    site = tmp_path_factory.mktemp("site")
    info = site / "stairnet-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stairnet\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[ionops.families]\nstairnet = stairnet:FAMILY\n\n"
        "[ionops.dataset_kinds]\nstaircase = stairnet:KIND\n"
    )
    return site


def _env(site: Path, workdir: Path) -> dict[str, str]:
    path = os.pathsep.join([str(site), str(PLUGIN), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "IONOPS_WORKDIR": str(workdir),
            "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}  # fmt: skip


def _run(env: dict[str, str], workdir: Path, *args: str) -> str:
    done = subprocess.run([IONOPS, *args], env=env, cwd=workdir, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, f"ionops {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr}"
    return done.stdout


def _smoke_test(env: dict[str, str], family: str) -> tuple[str, list[str]]:
    code = ("import json; from ionops.models.registry import get_family; "
            f"print(json.dumps(get_family({family!r}).smoke_test))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    experiment, settings = json.loads(done.stdout)
    return experiment, [part for value in settings for part in ("--set", value)]


def _stop_after_first_trial(env: dict[str, str], workdir: Path, *args: str) -> None:
    log = (workdir / "stopped.log").open("w")
    search = subprocess.Popen([IONOPS, "tune", *args], env=env, cwd=workdir, stdout=log,
                              stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(workdir.glob("searches/*/tune/run_trial_*")):
        assert search.poll() is None, (workdir / "stopped.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the search started no trial"
        time.sleep(0.2)
    search.send_signal(signal.SIGUSR1)
    assert search.wait(timeout=180) == 75, (workdir / "stopped.log").read_text()[-3000:]


def _printed_errors(out: str) -> dict[str, float]:
    """The ``| all | ... |`` row of predict's table by its header's metric names."""
    lines = [line for line in out.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    row = next(line for line in lines if line.startswith("| all |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    values = {}
    for name, cell in zip(header[1:], cells[1:], strict=True):
        number = float("nan") if cell == "undefined" else float(cell.rstrip("%"))
        values[name] = number / 100 if cell.endswith("%") else number
    return values


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_every_command_for_every_family(family: str, site: Path, tmp_path: Path) -> None:
    env = _env(site, tmp_path)
    experiment, settings = _smoke_test(env, family)
    run = [experiment, *settings, "--no-progress"]

    trained = _run(env, tmp_path, "train", *run)
    assert "checkpoint:" in trained

    _stop_after_first_trial(env, tmp_path, *run)
    resumed = _run(env, tmp_path, "tune", *run)
    assert "resuming the search" in resumed and "search complete: 2 trials" in resumed
    (search,) = (tmp_path / "searches").iterdir()
    trials = (search / "trials.csv").read_text().splitlines()
    assert len(trials) == 3, trials  # a header and two trials

    retrained = _run(env, tmp_path, "retrain", *run, "--seeds", "2")
    assert "model: models:/" in retrained
    state = json.loads((tmp_path / "retrains" / search.name / "retrain.json").read_text())
    assert sorted(state["per_seed"]) == ["0", "1"]

    reported = _run(env, tmp_path, "report", experiment, *settings)
    report = tmp_path / "reports" / search.name
    figures = [line.strip() for line in reported.splitlines() if line.startswith("  ")]
    assert "summary.md" in figures and len(figures) >= 3, reported
    for name in figures:
        assert (report / name).stat().st_size > 0, name

    (dataset,) = (tmp_path / "data").glob("*.h5")
    output = str(tmp_path / "predicted.h5")
    predicted = _run(env, tmp_path, "predict", experiment, *settings, "--inputs", str(dataset),
                     "--split", "test", "--compare", "--output", output)  # fmt: skip
    seed = re.search(r"\(seed (\d+)\)", predicted)
    assert seed is not None, predicted
    expected = state["per_seed"][seed.group(1)]
    printed = _printed_errors(predicted)
    assert printed, predicted
    for name, value in printed.items():
        want = pytest.approx(expected[f"test/{name}"], rel=2e-3, abs=1e-6, nan_ok=True)
        assert value == want, name  # an undefined score (NaN) is undefined in both
