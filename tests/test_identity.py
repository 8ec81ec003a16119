"""A dataset is the experiment's own or it is refused: every setting that changes its content
names its file and is checked, with both values, when the file is read for an experiment."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from ionops.config import load_experiment
from ionops.datasets.generate import generate, spec_from_config
from ionops.datasets.identity import check_dataset
from ionops.datasets.store import read_attributes
from ionops.errors import UserError
from ionops.workdir import dataset_path, ensure_dataset

IONOPS = str(Path(sys.executable).parent / "ionops")
# A tiny FHN operator dataset: 3 + 1 + 1 trajectories on 32 points.
TINY = ["data.n_t=32", "data.t_end_ms=20.0",
        'data.subsets.g = { i = [0.1, 2.0], t_stim = [0.5, 10.0], train = 3, validation = 1, '
        "test = 1 }"]  # fmt: skip
# A tiny point dataset of problem B.
TINY_POINTS = ["data.train=40", "data.validation=3", "data.test=2", "data.t_end_ms=5.0"]


@pytest.fixture(scope="module")
def fhn_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("identity") / "fhn.h5"
    generate(spec_from_config(load_experiment("fhn", TINY).data), path, progress=False)
    return path


@pytest.fixture(scope="module")
def point_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("identity") / "points.h5"
    generate(spec_from_config(load_experiment("fhn-mlp-b", TINY_POINTS).data), path,
             progress=False)  # fmt: skip
    return path


def test_the_paper_settings_keep_their_file_names(tmp_path):
    """Files written before the digests existed are found again where their settings match."""
    fhn = load_experiment("fhn").data
    assert dataset_path(fhn, tmp_path) == tmp_path / "data" / "fhn_f1_nt1260_T100_s0.h5"
    data = load_experiment("fhn-mlp-b").data
    digest = hashlib.sha256(json.dumps(data.model_dump(mode="json"), sort_keys=True)
                            .encode()).hexdigest()[:8]  # fmt: skip
    name = f"fhn_werneck_point_n10000-100000-10000_T50_s0_{digest}.h5"
    assert dataset_path(data, tmp_path).name == name


OPERATOR_SETTINGS = [
    ("data.parameters.e=1.0", "data.parameters.e: 0.1 in the file, 1.0 in the experiment"),
    ("data.rtol=1e-9", "data.rtol: 1e-0"),
    ("data.atol=1e-11", "data.atol: "),
    ("data.seed=4", "data.seed: 0 in the file, 4 in the experiment"),
    ("data.fraction=0.5", "data.fraction: 1.0 in the file, 0.5 in the experiment"),
    ("data.n_t=40", "data.n_t: 32 in the file, 40 in the experiment"),
    ("data.t_end_ms=30.0", "data.t_end_ms: 20.0 in the file, 30.0 in the experiment"),
    ("data.subsets.g.train=4", "data.subsets: "),
    ("data.subsets.g.i=[0.2, 2.0]", "data.subsets: "),
]


@pytest.mark.parametrize(("setting", "named"), OPERATOR_SETTINGS)
def test_an_operator_file_of_other_settings_is_refused_naming_the_setting(fhn_file, setting,
                                                                         named):  # fmt: skip
    check_dataset(load_experiment("fhn", TINY).data, fhn_file)  # its own settings: accepted
    changed = load_experiment("fhn", [*TINY, setting]).data
    with pytest.raises(UserError, match="is not the dataset of the experiment's") as raised:
        check_dataset(changed, fhn_file)
    assert named in str(raised.value)
    assert dataset_path(changed) != dataset_path(load_experiment("fhn", TINY).data)


def test_naming_a_default_explicitly_is_the_same_dataset(fhn_file):
    same = load_experiment("fhn", [*TINY, 'data.initial_state="rest"', "data.parameters.b=5.0"])
    check_dataset(same.data, fhn_file)


def test_the_initial_state_is_part_of_the_identity(tmp_path):
    """ORd's two initial states: the file of one is refused for the other, by name."""
    small = ["data.n_t=32", "data.t_end_ms=5.0", "data.atol=1e-6",
             'data.subsets.g = { i = [0.0, 1.0], t_stim = [1.0, 2.0], train = 1 }']  # fmt: skip
    original = load_experiment("ord", [*small, 'data.initial_state="original"']).data
    path = tmp_path / "ord.h5"
    generate(spec_from_config(original), path, progress=False)
    check_dataset(original, path)
    paced = load_experiment("ord", [*small, 'data.initial_state="paced"']).data
    with pytest.raises(UserError, match=r"data.initial_state: 'original' in the file, 'paced' in"):
        check_dataset(paced, path)
    assert dataset_path(paced) != dataset_path(original)


PROBLEM_SETTINGS = [
    ("data.vary.u0=[0.0, 0.81]", "data.vary.u0: [-0.1, 0.81] in the file, [0.0, 0.81] in"),
    ("data.fixed.k=0.5", "data.fixed.k: 0.0 in the file, 0.5 in the experiment"),
    ("data.solver_dt_ms=0.005", "data.solver_dt_ms: 0.01 in the file, 0.005 in the experiment"),
    ("data.save_dt_ms=0.2", "data.save_dt_ms: 0.1 in the file, 0.2 in the experiment"),
    ("data.eval_dt_ms=0.5", "data.eval_dt_ms: 1.0 in the file, 0.5 in the experiment"),
    ("data.train=41", "data.train: 40 in the file, 41 in the experiment"),
    ("data.seed=2", "data.seed: 0 in the file, 2 in the experiment"),
    ('data.solver="bdf"', "data.solver: 'explicit Euler"),
    ("data.parameters.gain=0.05", "data.parameters.gain: 0.04 in the file, 0.05 in"),
    (
        'data.kind="transition"|model.learner="iterative"',
        "data.kind: 'point' in the file, 'transition' in",
    ),
]


@pytest.mark.parametrize(("setting", "named"), PROBLEM_SETTINGS)
def test_a_point_file_of_other_settings_is_refused_naming_the_setting(point_file, setting,
                                                                     named):  # fmt: skip
    check_dataset(load_experiment("fhn-mlp-b", TINY_POINTS).data, point_file)
    changed = load_experiment("fhn-mlp-b", [*TINY_POINTS, *setting.split("|")]).data
    with pytest.raises(UserError, match="is not the dataset of the experiment's") as raised:
        check_dataset(changed, point_file)
    assert named in str(raised.value)


def test_a_file_that_does_not_record_a_setting_is_refused_by_name(fhn_file, tmp_path):
    older = tmp_path / "older.h5"
    shutil.copy(fhn_file, older)
    with h5py.File(older, "a") as handle:
        del handle.attrs["rtol"]
    with pytest.raises(UserError, match=r"data.rtol: not recorded in the file .* cannot be "
                       "checked"):  # fmt: skip
        check_dataset(load_experiment("fhn", TINY).data, older)


def test_generate_does_not_take_a_file_of_other_tolerances_as_complete(fhn_file, tmp_path):
    copy = tmp_path / "fhn.h5"
    shutil.copy(fhn_file, copy)
    tighter = spec_from_config(load_experiment("fhn", [*TINY, "data.rtol=1e-9"]).data)
    with pytest.raises(UserError, match=r"holds another dataset \(data.rtol: "):
        generate(tighter, copy, progress=False)


def test_an_experiment_with_other_parameters_gets_its_own_dataset(tmp_path, monkeypatch):
    """The silent wrong result: e = 1.0 trained on the e = 0.1 file. Now it is another file,
    generated with e = 1.0; the default one is left as it was."""
    default = load_experiment("fhn", TINY)
    first = ensure_dataset(default, tmp_path)
    before = first.read_bytes()
    other = load_experiment("fhn", [*TINY, "data.parameters.e=1.0"])
    second = ensure_dataset(other, tmp_path)
    assert second != first and first.read_bytes() == before
    assert read_attributes(second)["parameters"]["e"] == 1.0
    shutil.copy(first, second)  # the e = 0.1 file under the e = 1.0 name: refused
    with pytest.raises(UserError, match="data.parameters.e: 0.1 in the file, 1.0 in the "
                       r"experiment\n.*ionops generate fhn --overwrite"):  # fmt: skip
        ensure_dataset(other, tmp_path)


@pytest.mark.slow
def test_train_refuses_a_data_file_of_other_settings(fhn_file, tmp_path):
    env = {**os.environ, "IONOPS_WORKDIR": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)
    run = subprocess.run(
        [IONOPS, "train", "fhn", *[a for s in TINY for a in ("--set", s)], "--set",
         "data.parameters.e=1.0", "--data", str(fhn_file), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert "data.parameters.e: 0.1 in the file, 1.0 in the experiment" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "runs").exists()
