"""Helpers the tests import: small generation settings, a tiny real search."""

import os
import subprocess
import sys
import time
from pathlib import Path

from ionops.datasets.generate import GenerationSpec

IONOPS = str(Path(sys.executable).parent / "ionops")
SMALL_SEARCH = [
    "--set", "data.fraction=0.02", "--set", "data.n_t=128", "--set", "training.epochs=8",
    "--set", "search.num_samples=6", "--set", "search.max_concurrent=1",
    "--set", "search.n_initial_points=3", "--set", "search.checkpoint_every=2",
    "--no-progress",
]  # fmt: skip


def small_spec(model: str = "hh", **changes) -> GenerationSpec:
    """A few dozen samples on a coarse grid: seconds to generate."""
    settings = {"n_t": 64, "t_end_ms": 100.0, "fraction": 0.01, "seed": 3} | changes
    return GenerationSpec(model=model, **settings)


def start_tune(workdir: Path, name: str, uri: str | None, *settings: str) -> subprocess.Popen:
    """``ionops tune fhn`` on a tiny search (6 trials, 8 epochs; ``settings`` more ``--set``
    overrides) with the tracking store ``uri`` (None: the working folder's own), its output
    in ``NAME.log``."""
    env = {**os.environ, "IONOPS_WORKDIR": str(workdir), "MLFLOW_TRACKING_URI": uri or ""}
    if uri is None:
        del env["MLFLOW_TRACKING_URI"]
    log = (workdir / f"{name}.log").open("a")
    overrides = [part for setting in settings for part in ("--set", setting)]
    return subprocess.Popen([IONOPS, "tune", "fhn", *SMALL_SEARCH, *overrides, "--name", name],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)  # fmt: skip


def trial_folders(workdir: Path, name: str) -> int:
    return len(list((workdir / "searches" / name / "tune").glob("run_trial_*")))


def wait_for_trials(
    process: subprocess.Popen, workdir: Path, name: str, count: int, starts: int = 1
) -> None:
    """Until this process has started the search (its ``starts``-th start) and ``count`` trials."""
    deadline = time.monotonic() + 300
    log = workdir / f"{name}.log"
    while trial_folders(workdir, name) < count or log.read_text().count(f"search {name}:") < starts:
        assert process.poll() is None, (workdir / f"{name}.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the search made no progress"
        time.sleep(0.2)
    time.sleep(0.3)  # inside the trial, between checkpoints


NODE_SMALL = ["data.t_end_ms=30", "data.long_end_ms=40", "model.widths=[8,8]"]  # hh-node
FNO_TINY = ["model.d_v=8", "model.n_layers=2", "model.k_max=6", "training.epochs=3",
            "training.batch_size=8"]  # fmt: skip
MLP_TINY = ["data.train=600", "data.validation=20", "data.test=6", "data.t_end_ms=10.0",
            "training.epochs=4", "training.batch_size=64", "model.widths=[16, 16]",
            'model.activations=["tanh", "tanh"]']  # fmt: skip


def trained(experiment, dataset, checkpoint):
    """Train the experiment's own network on ``dataset`` and return the run's result."""
    import torch

    from ionops.models.registry import get_family
    from ionops.training import TrainSettings, train

    family = get_family(experiment.family)
    data = family.load_data(experiment, dataset)
    trial = family.own_trial(experiment, data)
    torch.manual_seed(0)
    model = family.build(trial.arguments)
    settings = TrainSettings.from_config(trial.training, eval_splits=("validation",),
                                         final_splits=("test",))  # fmt: skip
    return train(model, family.objective(data, trial, experiment), settings,
                 family=family.name, arguments=trial.arguments, checkpoint=checkpoint)  # fmt: skip
