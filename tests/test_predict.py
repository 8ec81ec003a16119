"""Using trained surrogates: `ionops predict` and the Python API (what they refuse is in
tests/test_predict_refusals.py).

Surrogates are trained here for a few epochs on tiny datasets; the round trip through
a retraining and the MLflow registry is in tests/test_retrain_report.py.
"""

import json

import h5py
import numpy as np
import pytest
import torch
from support import FNO_TINY, MLP_TINY, small_spec, trained

import ionops
from ionops.cli import main
from ionops.config import load_experiment
from ionops.datasets.generate import generate, spec_from_config
from ionops.datasets.loading import load_dataset, load_problem_dataset
from ionops.errors import UserError
from ionops.models.registry import get_family
from ionops.serving.sources import load_surrogate
from ionops.serving.surrogate import ExtrapolationWarning, available_memory
from ionops.training.loop import EVAL_SECONDS


@pytest.fixture(scope="module", params=["data", "iterative", "trajectory"])
def mlp(request, tmp_path_factory):
    """A tiny problem-C MLP: data-driven on points, iterative on transitions, or trajectory."""
    kind = {"data": "point", "iterative": "transition", "trajectory": "trajectory"}
    extra = [f'model.learner="{request.param}"', f'data.kind="{kind[request.param]}"']
    experiment = load_experiment("fhn-mlp-c", MLP_TINY + extra)
    folder = tmp_path_factory.mktemp(f"mlp-{request.param}")
    dataset = folder / "c.h5"
    generate(spec_from_config(experiment.data), dataset, progress=False)
    checkpoint = folder / "checkpoint.pt"
    return checkpoint, dataset, trained(experiment, dataset, checkpoint)


def test_predicting_the_test_split_gives_the_runs_own_test_errors(fno, capsys, tmp_path):
    checkpoint, dataset, result = fno
    out = tmp_path / "prediction.h5"
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(dataset), "--compare",
                 "-o", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "errors against the dataset's solver trajectories" in printed
    surrogate = load_surrogate(checkpoint)
    test = load_dataset(dataset, "none", splits=("test",)).splits["test"]
    prediction = surrogate.predict({"amplitude": test.amplitude, "t_stim": test.t_stim})
    surrogate.compare(prediction, test.targets.numpy())
    means = prediction.error_means()
    for key in ("rel_l2", "rel_h1", "rel_l2/V"):  # the normalised values are the loop's exactly
        assert means[key] == pytest.approx(result.final[f"test/{key}"], rel=1e-5), key
    for key in ("phys_rel_l2", "phys_rel_l1"):  # physical: decoded (the loop) or as stored
        assert means[key] == pytest.approx(result.final[f"test/{key}"], rel=1e-4), key
    written = load_dataset(out, "none", splits=("test",))
    assert np.allclose(written.splits["test"].targets.numpy(), prediction.states, atol=1e-6)
    assert np.array_equal(written.splits["test"].amplitude, test.amplitude)
    assert written.attributes["model"] == "hh" and "prediction" in written.attributes
    with h5py.File(out) as handle:
        assert np.array_equal(handle["test/solver_states"][...], test.targets.numpy())


def test_near_zero_truths_leave_the_relative_means_and_keep_an_absolute_error(tmp_path, capsys):
    """FHN's no-stimulus and nap samples (|V| ~ 0 to 0.002) have relative errors that mean
    nothing: undefined there and left out of the means, said so, with the RMS error in
    physical units beside it for every sample."""
    dataset = tmp_path / "fhn.h5"
    generate(small_spec("fhn", fraction=0.05), dataset, progress=False)
    attributes = load_dataset(dataset, "none", splits=("test",)).attributes
    experiment = load_experiment("fhn", [*FNO_TINY, f"data.n_t={attributes['n_t']}"])
    checkpoint = tmp_path / "fhn.pt"
    trained(experiment, dataset, checkpoint)
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(dataset), "--compare",
                 "-o", str(tmp_path / "p.h5")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "phys_rmse" in printed
    test = load_dataset(dataset, "none", splits=("test",)).splits["test"]
    surrogate = load_surrogate(checkpoint)
    prediction = surrogate.predict({"amplitude": test.amplitude, "t_stim": test.t_stim})
    surrogate.compare(prediction, test.targets.numpy())
    near_zero = np.abs(test.targets.numpy()[:, 0]).max(axis=-1) < 0.01
    assert near_zero.any(), "the test split has no-stimulus or nap samples"
    assert np.isnan(prediction.errors["phys_rel_l2"][near_zero, 0]).all()
    assert np.isfinite(prediction.errors["phys_rmse"]).all()
    undefined = int(np.isnan(prediction.errors["phys_rel_l2"]).any(axis=1).sum())
    assert f"phys_rel_l2: undefined for {undefined} of {len(test)} samples" in printed


def test_compare_solves_again_as_the_dataset_did(fno):
    checkpoint, dataset, _ = fno
    surrogate = load_surrogate(checkpoint)
    test = load_dataset(dataset, "none", splits=("test",)).splits["test"]
    rows = np.stack([test.amplitude[:3], test.t_stim[:3]], axis=1)
    solved = surrogate.solve(rows).astype(np.float32)
    assert np.allclose(solved, test.targets.numpy()[:3], rtol=1e-5, atol=1e-5)


def test_the_python_api_and_its_options(fno):
    checkpoint, _, _ = fno
    prediction = ionops.predict(checkpoint, [[10.0, 2.0], [20.0, 4.0]], batch_size=1)
    assert prediction.states.shape == (2, 4, prediction.time.size)
    doubled = ionops.predict(checkpoint, [[10.0, 2.0], [20.0, 4.0]], precision="float64")
    assert np.allclose(prediction.states, doubled.states, rtol=1e-4, atol=1e-4)
    surrogate = load_surrogate(checkpoint)
    rows = [[10.0, 2.0], [20.0, 4.0]]
    before = surrogate.predict(rows).states
    low = surrogate.predict(rows, precision="bfloat16")
    spread = np.abs(doubled.states).max()
    assert np.abs(low.states - doubled.states).max() < 0.1 * spread
    assert np.array_equal(surrogate.predict(rows).states, before)  # its weights not rounded
    compared = ionops.predict(checkpoint, {"amplitude": [10.0], "t_stim": [2.0]}, compare=True)
    assert compared.solver_states.shape == compared.states.shape and "rel_l2" in compared.errors


def test_copies_of_the_network_in_other_dtypes_follow_its_weights(fno):
    checkpoint, _, _ = fno
    surrogate = load_surrogate(checkpoint)
    rows = [[10.0, 2.0], [20.0, 4.0]]
    first = {p: surrogate.predict(rows, precision=p).states for p in ("float64", "bfloat16")}
    with torch.no_grad():
        for weight in surrogate.model.parameters():
            weight.mul_(0.5)
    changed = surrogate.predict(rows).states
    assert not np.allclose(changed, first["float64"], rtol=1e-3, atol=1e-3)
    again = {p: surrogate.predict(rows, precision=p).states for p in ("float64", "bfloat16")}
    assert np.allclose(again["float64"], changed, rtol=1e-4, atol=1e-4)
    moved = np.abs(first["bfloat16"] - changed).max()
    assert np.abs(again["bfloat16"] - changed).max() < 0.2 * moved


def test_an_output_larger_than_the_memory_available_is_refused_before_any_work(fno):
    checkpoint, _, _ = fno
    surrogate = load_surrogate(checkpoint)
    n_t = 10**6  # a fine output grid: 16 MB per trajectory of 4 states
    surrogate.described["time"] = torch.linspace(0.0, float(surrogate.time[-1]), n_t)
    count = available_memory() // (4 * 4 * n_t) + 10
    rows = np.tile([[10.0, 2.0]], (count, 1))
    with pytest.raises(UserError, match=f"{count:,} trajectories of 4 states on 1,000,000 "
                       "points take .* GB in float32; .* GB of memory is available"):  # fmt: skip
        surrogate.predict(rows)


def test_calls_side_by_side_on_several_threads_predict_what_one_thread_does(fno):
    checkpoint, _, _ = fno
    rows = [[10.0 + i, 1.0 + i % 3] for i in range(9)]  # five calls of two
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = ionops.predict(checkpoint, rows, batch_size=2)
        torch.set_num_threads(3)
        side_by_side = ionops.predict(checkpoint, rows, batch_size=2)
        assert torch.get_num_threads() == 3  # restored after the calls ran on one core each
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(side_by_side.states, alone.states)


def test_mlp_surrogates_predict_their_test_split(mlp, tmp_path, capsys):
    checkpoint, dataset, result = mlp
    out = tmp_path / "prediction.h5"
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(dataset), "--compare",
                 "-o", str(out)]) == 0  # fmt: skip
    surrogate = load_surrogate(checkpoint)
    assert surrogate.input_names == ["u0", "w0", "k"]
    test = load_problem_dataset(dataset, splits=("test",)).splits["test"]
    prediction = surrogate.predict(test.inputs.numpy())
    surrogate.compare(prediction, test.states.numpy())
    for key in ("mae", "rmse", "rel_l2", "mae/u"):
        assert prediction.error_means()[key] == pytest.approx(result.final[f"test/{key}"],
                                                             rel=1e-5)  # fmt: skip
    if "test/diverged" in result.final:
        assert prediction.error_means()["diverged"] == result.final["test/diverged"]
    low = surrogate.predict(test.inputs.numpy()[:4], precision="bfloat16").states  # held in bf16
    assert low.dtype == np.float32
    assert np.abs(low - prediction.states[:4]).max() < 0.05 * np.abs(prediction.states).max()
    written = load_problem_dataset(out, splits=("test",))
    assert np.allclose(written.splits["test"].states.numpy(), prediction.states, atol=1e-6)
    solved = surrogate.solve(test.inputs.numpy()[:2]).astype(np.float32)
    assert np.allclose(solved, test.states.numpy()[:2], atol=1e-6)
    assert main(["predict", "--from", str(checkpoint), "--input", "u0=0.2,w0=0.05,k=0.5",
                 "--input", "0.3,0.01,0.1", "-o", str(out), "--overwrite"]) == 0  # fmt: skip
    assert "2 trajectories of u, w on 11 points" in capsys.readouterr().out


def test_inputs_outside_the_trained_ranges_are_predicted_with_a_warning(fno, tmp_path, capsys):
    checkpoint, _, _ = fno
    surrogate = load_surrogate(checkpoint)
    high = surrogate.ranges["amplitude"][1]
    with pytest.warns(ExtrapolationWarning, match=r"input amplitude = .* \(sample 1\) is outside"):
        surrogate.predict([[1.0, 2.0], [10 * high, 2.0]])
    csv = tmp_path / "stimuli.csv"
    csv.write_text(f"t_stim,amplitude\n2.0,1.0\n2.0,{10 * high}\n1.0,{20 * high}\n")
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(csv), "--plot",
                 str(tmp_path / "p.png"), "-o", str(tmp_path / "p.h5")]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "warning: input amplitude" in captured.err and "and 1 more" in captured.err
    assert (tmp_path / "p.png").stat().st_size > 0
    assert len(h5py.File(tmp_path / "p.h5")["test/amplitude"]) == 3
    assert json.loads((tmp_path / "p.json").read_text()) == {  # all it draws, and says so
        "samples": 3, "of_samples": 3, "states": ["V", "m", "h", "n"]}  # fmt: skip
    many = tmp_path / "many.csv"
    many.write_text("t_stim,amplitude\n" + "".join(f"2.0,{1 + k}\n" for k in range(8)))
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(many), "--plot",
                 str(tmp_path / "q.png"), "-o", str(tmp_path / "q.h5")]) == 0  # fmt: skip
    assert json.loads((tmp_path / "q.json").read_text())["samples"] == 6  # of 8: the title says


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    """Tiny problem-A (nothing varied) and problem-B (k fixed at 0) surrogates: name ->
    (checkpoint, dataset, result)."""
    out = {}
    for name in ("fhn-mlp-a", "fhn-mlp-b"):
        sizes = ["data.validation=1", "data.test=1"] if name == "fhn-mlp-a" else []
        experiment = load_experiment(name, MLP_TINY + sizes)
        folder = tmp_path_factory.mktemp(name)
        dataset = folder / "data.h5"
        generate(spec_from_config(experiment.data), dataset, progress=False)
        checkpoint = folder / "checkpoint.pt"
        out[name] = checkpoint, dataset, trained(experiment, dataset, checkpoint)
    return out


def test_a_surrogate_of_no_inputs_predicts_its_one_trajectory(problem, tmp_path, capsys):
    checkpoint, dataset, result = problem["fhn-mlp-a"]
    surrogate = load_surrogate(checkpoint)
    assert surrogate.input_names == [] and surrogate.fixed_inputs == {"u0": 0.5, "w0": 0.0,
                                                                       "k": 0.0}  # fmt: skip
    out = tmp_path / "a.h5"
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(dataset), "--compare",
                 "-o", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "1 trajectories of u, w on 101 points" in printed
    prediction = surrogate.predict({})
    surrogate.compare(prediction)
    assert prediction.error_means()["mae"] == pytest.approx(result.final["test/mae"], rel=1e-5)
    written = load_problem_dataset(out, splits=("test",))
    assert np.allclose(written.splits["test"].states.numpy(), prediction.states, atol=1e-6)
    for way in (["--input", ""], [], ["--input", "u0=0.5,w0=0,k=0"]):
        assert main(["predict", "--from", str(checkpoint), *way, "--compare",
                     "-o", str(out), "--overwrite"]) == 0, way  # fmt: skip
        assert "1 trajectories of u, w" in capsys.readouterr().out
    csv = tmp_path / "a.csv"
    csv.write_text("u0\n0.5\n0.5\n")
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(csv), "-o", str(out),
                 "--overwrite"]) == 0  # fmt: skip
    assert "2 trajectories of u, w" in capsys.readouterr().out


def test_an_input_held_fixed_is_accepted_at_its_value_only(problem, tmp_path, capsys):
    checkpoint, _, _ = problem["fhn-mlp-b"]
    surrogate = load_surrogate(checkpoint)
    assert surrogate.input_names == ["u0", "w0"] and surrogate.fixed_inputs == {"k": 0.0}
    out = tmp_path / "b.h5"
    csv = tmp_path / "b.csv"
    csv.write_text("u0,w0,k\n0.2,0.05,0.0\n0.3,0.01,0.9\n")
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(csv), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "k = 0.9 (sample 1), but this surrogate was trained with k fixed at 0" in err
    assert not out.exists()
    csv.write_text("u0,w0,k\n0.2,0.05,0.0\n0.3,0.01,0\n")
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(csv), "-o", str(out)]) == 0
    assert "2 trajectories" in capsys.readouterr().out
    assert main(["predict", "--from", str(checkpoint), "--input", "u0=0.2,w0=0.05,k=0.9",
                 "-o", str(tmp_path / "c.h5")]) == 2  # fmt: skip
    assert "k = 0.9 (sample 0), but this surrogate was trained with k fixed" in (
        capsys.readouterr().err
    )
    assert main(["predict", "--from", str(checkpoint), "--input", "u0=0.2,w0=0.05,k=0",
                 "-o", str(out), "--overwrite"]) == 0  # fmt: skip
    with pytest.raises(UserError, match=r"k = 0.5 .* fixed at 0"):
        surrogate.predict({"u0": [0.1, 0.2], "w0": [0.0, 0.0], "k": [0.0, 0.5]})
    same = surrogate.predict({"u0": [0.1], "w0": [0.0], "k": [0.0]}).states
    assert np.array_equal(same, surrogate.predict({"u0": [0.1], "w0": [0.0]}).states)
    c_data = tmp_path / "c.h5"  # problem C's test split varies k: refused by name
    experiment = load_experiment("fhn-mlp-c", MLP_TINY)
    generate(spec_from_config(experiment.data), c_data, progress=False)
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(c_data),
                 "-o", str(out)]) == 2  # fmt: skip
    assert "(test split): k = " in capsys.readouterr().err


def test_every_error_a_family_reports_is_declared_with_its_meaning(fno, mlp):
    """Commands show a metric as its family declares it: each key a run records is one."""
    for (_, _, result), name in ((fno, "fno"), (mlp, "mlp")):
        family = get_family(name)
        declared = {m.name for m in family.metrics}
        assert {family.metric, *family.summary_metrics} <= declared
        for key in result.final:
            split, _, rest = key.partition("/")
            if split in ("train", "validation", "test") and rest != EVAL_SECONDS:
                assert rest.split("/")[0] in declared, key
        metric = family.metric_of(f"test/{family.metric}/V")
        assert metric.name == family.metric
    assert get_family("fno").metric_of("rel_l2").format(0.01234) == "1.234%"
    assert get_family("mlp").metric_of("validation/mae/u").format(0.01234) == "1.234e-02"
    assert get_family("mlp").metric_of("diverged").per_state is False
