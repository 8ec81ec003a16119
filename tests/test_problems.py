"""Point, transition and trajectory datasets: the Euler data solver, Latin hypercubes, the file."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from ionops.datasets.euler import euler
from ionops.datasets.generate import generate, make_plan
from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.journal import JournalWriter
from ionops.datasets.loading import load_dataset, load_problem_dataset
from ionops.datasets.on_disk import partial_folder, prepare
from ionops.datasets.problems import ProblemSpec, _latin_hypercube, solve_trajectories
from ionops.datasets.solver import SolverSettings, solve
from ionops.errors import UserError

IONOPS = [str(Path(sys.executable).parent / "ionops")]
MODEL = get_ionic_model("fhn_werneck")
BOX = {"u0": (-0.1, 0.81), "w0": (0.0, 0.12)}


def spec(**changes) -> ProblemSpec:
    values = {"kind": "point", "model": "fhn_werneck", "t_end_ms": 20.0, "vary": BOX,
              "fixed": {"k": 0.0}, "train": 300, "validation": 7, "test": 3,
              "eval_dt_ms": 1.0, "seed": 2} | changes  # fmt: skip
    return ProblemSpec(**values)


def test_the_vector_field_is_the_compiled_right_hand_side():
    rng = np.random.default_rng(0)
    p = MODEL.parameter_vector()
    for _ in range(20):
        y, k = rng.uniform(-0.2, 1.1, 2), rng.uniform(0, 1)
        assert np.allclose(MODEL.vector_field(y, k, list(p)), MODEL.derivative(0.0, y, k, p),
                           rtol=1e-14, atol=1e-15)  # fmt: skip


def test_euler_records_the_steps_asked_for():
    p = MODEL.parameter_vector()
    y0, k, dt = np.array([[0.3, 0.05]]), np.array([0.7]), 0.01
    state, by_hand = euler(MODEL, p, y0, k, dt, np.array([[0, 3, 7]]))[0], [y0[0].copy()]
    y = y0[0].copy()
    for step in range(7):
        y = y + dt * MODEL.derivative(step * dt, y, k[0], p)
        if step + 1 in (3, 7):
            by_hand.append(y.copy())
    np.testing.assert_allclose(state, np.array(by_hand), rtol=1e-12)  # any CPU (FMA)
    with pytest.raises(ValueError, match="ascending"):
        euler(MODEL, p, y0, k, dt, np.array([[5, 3]]))


def test_euler_converges_to_the_bdf_at_first_order():
    p = MODEL.parameter_vector()
    y0, k = np.array([[0.5, 0.0], [0.2, 0.1]]), np.array([0.0, 0.6])
    grid = np.linspace(0.0, 10.0, 11)
    exact = np.stack([solve(MODEL, grid, k[i], np.inf, SolverSettings(rtol=1e-11, atol=1e-13),
                            p=p, y0=y0[i]).states.T for i in range(2)])  # fmt: skip

    def error(dt: float) -> float:
        steps = np.tile(np.rint(grid / dt).astype(np.int64), (2, 1))
        return float(np.abs(euler(MODEL, p, y0, k, dt, steps) - exact).max())

    coarse, fine = error(0.02), error(0.01)
    assert fine < 2e-2
    assert 1.7 < coarse / fine < 2.3  # halving the step halves the error


def test_latin_hypercube_puts_one_sample_in_every_stratum():
    points = _latin_hypercube(50, 3, np.random.default_rng(1))
    for column in points.T:
        assert sorted(np.floor(column * 50).astype(int)) == list(range(50))


def test_point_dataset_holds_the_euler_solution_at_each_sample(tmp_path):
    path = tmp_path / "points.h5"
    generate(spec(), path, progress=False)
    plan = make_plan(spec())
    p = MODEL.parameter_vector()
    with h5py.File(path, "r") as handle:
        assert handle["train"].attrs["layout"] == "points"
        assert handle["train/states"].shape == (300, 2)
        assert handle["validation/states"].shape == (7, 2, 21)
        inputs, t = handle["train/inputs"][...], handle["train/t"][...]
        assert list(handle.attrs["input_names"]) == ["u0", "w0", "k"]
        for index in (0, 150, 299):
            steps = np.array([[round(t[index] / 0.01)]])
            expected = euler(MODEL, p, inputs[index : index + 1, :2], inputs[index : index + 1, 2],
                             0.01, steps)[0, 0]  # fmt: skip
            np.testing.assert_array_equal(handle["train/states"][index],
                                          expected.astype(np.float32))  # fmt: skip
        for name, (low, high) in BOX.items():
            column = inputs[:, ["u0", "w0"].index(name)]
            assert low <= column.min() and column.max() <= high
        assert (handle["train/inputs"][:, 2] == 0.0).all()
        assert t.min() >= 0.0 and t.max() <= 20.0
        np.testing.assert_allclose(t / 0.1, np.rint(t / 0.1), atol=1e-9)  # saved every 0.1 ms
        np.testing.assert_array_equal(handle["validation/time"][...], plan.eval_time)


def test_transition_dataset_pairs_states_one_step_apart(tmp_path):
    path = tmp_path / "transitions.h5"
    generate(spec(kind="transition", vary={**BOX, "k": (0.0, 1.0)}, fixed={}), path,
             progress=False)  # fmt: skip
    data = load_problem_dataset(path)
    train = data.splits["train"]
    assert train.layout == "transitions" and train.states.shape == (300, 2, 2)
    assert float(train.t.max()) <= 19.0  # t + Δ stays within the horizon
    p = MODEL.parameter_vector()
    inputs = train.inputs.double().numpy()
    first = round(float(train.t[5]) / 0.01)
    direct = euler(MODEL, p, inputs[5:6, :2], inputs[5:6, 2], 0.01,
                   np.array([[first, first + 100]]))[0]  # fmt: skip
    np.testing.assert_allclose(train.states[5].double().numpy(), direct, rtol=1e-6, atol=1e-7)


def test_trajectory_dataset_trains_on_whole_trajectories_like_the_validation_ones(tmp_path):
    path = tmp_path / "trajectories.h5"
    box = {**BOX, "k": (0.0, 1.0)}
    generate(spec(kind="trajectory", vary=box, fixed={}, train=40), path, progress=False)
    data = load_problem_dataset(path)
    train, validation = data.splits["train"], data.splits["validation"]
    assert train.layout == "trajectories" and train.t is None
    assert train.states.shape == (40, 2, validation.time.size)
    np.testing.assert_array_equal(train.time, validation.time)
    for name, column in (("u0", 0), ("w0", 1), ("k", 2)):  # one sample in each of 40 strata
        low, high = box[name]
        strata = np.floor((train.inputs[:, column].double().numpy() - low) / (high - low) * 40)
        assert sorted(strata.astype(int).tolist()) == list(range(40))
    direct = solve_trajectories(data.attributes, train.inputs[:3].double().numpy(), train.time)
    np.testing.assert_allclose(train.states[:3].double().numpy(), direct, rtol=1e-6, atol=1e-7)


def test_bdf_solver_agrees_with_euler_to_its_first_order_error(tmp_path):
    euler_path, bdf_path = tmp_path / "euler.h5", tmp_path / "bdf.h5"
    small = {"train": 20, "validation": 4, "test": 1}
    generate(spec(**small), euler_path, progress=False)
    generate(spec(**small, solver="bdf"), bdf_path, progress=False)
    a, b = load_problem_dataset(euler_path), load_problem_dataset(bdf_path)
    assert (a.splits["train"].inputs == b.splits["train"].inputs).all()
    difference = (a.splits["validation"].states - b.splits["validation"].states).abs()
    assert 0 < float(difference.mean()) < 5e-3


def test_an_interrupted_generation_continues_to_the_same_bytes(tmp_path):
    reference, output = tmp_path / "reference.h5", tmp_path / "resumed.h5"
    big = spec(train=9000, validation=30)
    generate(big, reference, progress=False)
    plan = make_plan(big)
    state = prepare(plan, output, overwrite=False, resume=False)
    tasks = plan.tasks()
    journal = partial_folder(output) / f"{state['run_id']}-r0000.journal"
    with JournalWriter(journal) as writer:
        for task in state["pending"][:2]:  # two blocks solved before "the kill"
            plan.solve(tasks[task], writer)
    report = generate(big, output, progress=False)
    assert report.solved_now == len(tasks) - 2
    assert output.read_bytes() == reference.read_bytes()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vary": {"v0": (0.0, 1.0)}, "fixed": {"u0": 0.0, "w0": 0.0, "k": 0.0}},
         "data.vary names v0, not inputs of fhn_werneck; its inputs are u0, w0, k"),
        ({"fixed": {}}, r"leaves k unset: give each a range in \[data.vary\]"),
        ({"eval_dt_ms": 0.015}, "data.eval_dt_ms = 0.015 is not a whole number of steps"),
        ({"t_end_ms": 20.5}, "data.t_end_ms = 20.5 is not a whole number of steps of 1 ms"),
        ({"parameters": {"tau": 1.0}}, "fhn_werneck has no parameter 'tau'"),
        ({"vary": {**BOX, "k": (1.0, 0.0)}, "fixed": {}}, r"data.vary.k = \[1.0, 0.0\]"),
    ],
)  # fmt: skip
def test_bad_problems_are_refused_before_anything_is_written(tmp_path, changes, message):
    with pytest.raises(UserError, match=message):
        generate(replace(spec(), **changes), tmp_path / "out.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_loading_the_wrong_kind_is_a_clear_error(tmp_path, hh_dataset):
    wrong = "is an operator dataset, not a point, transition or trajectory dataset"
    with pytest.raises(UserError, match=wrong):
        load_problem_dataset(hh_dataset)
    path = tmp_path / "points.h5"
    generate(spec(train=10), path, progress=False)
    with pytest.raises(UserError, match="is a point dataset, not an operator dataset"):
        load_dataset(path)


@pytest.mark.slow
def test_two_ranks_give_the_serial_point_file_byte_for_byte(tmp_path, mpiexec):
    command = [*IONOPS, "generate", "fhn-mlp-c", "--set", "data.train=9000", "--set",
               "data.validation=3000", "--set", "data.test=100", "--no-progress"]  # fmt: skip
    serial, parallel = tmp_path / "serial.h5", tmp_path / "mpi.h5"
    subprocess.run([*command, "--output", str(serial)], check=True, capture_output=True)
    subprocess.run([mpiexec, "-n", "2", *command, "--output", str(parallel)], check=True,
                   capture_output=True)  # fmt: skip
    assert serial.read_bytes() == parallel.read_bytes()
