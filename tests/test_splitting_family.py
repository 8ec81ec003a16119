"""The splitting-PINN family through the plug-in: its reference datasets (events, the L1
scheme, byte-identical across MPI ranks), a march trained by the training loop and resumed
mid-horizon, its baselines, serving, and its refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ionops.config import load_experiment
from ionops.datasets.generate import generate, make_plan, spec_from_config
from ionops.datasets.reference import ReferenceDataConfig
from ionops.datasets.reference_data import load_reference
from ionops.errors import UserError
from ionops.models.registry import get_family
from tests.support import trained

FAMILY = get_family("splitting")


def _experiment(*settings: str):  # type: ignore[no-untyped-def]
    return load_experiment("hh-splitting", overrides=list(settings))


def _dataset(experiment, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    path = folder / "reference.h5"
    generate(spec_from_config(experiment.data), path, progress=False)
    return path


def test_a_reference_of_a_spiking_model_records_its_resets(tmp_path):
    data = ReferenceDataConfig(kind="reference", ionic_model="izhikevich", parameter_set="CH",
                               t_end_ms=40.0)  # fmt: skip
    path = tmp_path / "izh.h5"
    generate(spec_from_config(data), path, progress=False)
    reference = load_reference(path)
    assert reference.attributes["parameters"]["c"] == -50.0  # the CH set
    assert reference.states["test"].shape == (2, 4001)
    assert reference.events["test"].size >= 3
    # the validation problem starts 5 mV above the test's (the default shift)
    assert reference.initial_state["validation"][0] == reference.initial_state["test"][0] + 5.0
    assert reference.states["test"][0].max() < 30.0  # every sample after a reset is below it


def test_a_fractional_reference_is_the_l1_scheme_on_its_step(tmp_path):
    data = ReferenceDataConfig(kind="reference", ionic_model="hh_fractional", t_end_ms=2.0,
                               dt_ms=0.1, caputo_step_ms=0.01)  # fmt: skip
    plan = make_plan(spec_from_config(data))
    assert plan.settings().max_step == 0.01
    bad = ReferenceDataConfig(kind="reference", ionic_model="hh_fractional", t_end_ms=2.0,
                              dt_ms=0.1, caputo_step_ms=0.03)  # fmt: skip
    with pytest.raises(UserError, match=r"data.dt_ms = 0.1 is not a whole number of steps"):
        make_plan(spec_from_config(bad))


@pytest.mark.parametrize(("changes", "message"), [
    ({"ionic_model": "izhikevich", "parameter_set": "XX"},
     r"data.parameter_set: izhikevich has no parameter set 'XX'; its sets: RS, IB, CH, FS"),
    ({"validation_offset": {"Vm": 1.0}}, r"names \['Vm'\], not states of hh_modern"),
    ({"validation_offset": {"V": 0.0}}, "validation_offset is zero"),
    ({"t_end_ms": 0.01}, "fewer than two samples"),
    ({"ionic_model": "hh_fractional", "parameters": {"alpha": 1.2}},
     r"alpha = 1.2: the order .* must be in \(0, 1\]"),
    ({"ionic_model": "lif", "parameters": {"v_reset": -40.0}}, "must be below it"),
])  # fmt: skip
def test_bad_reference_settings_are_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        ReferenceDataConfig.model_validate({"kind": "reference", "ionic_model": "hh_modern",
                                            **changes})  # fmt: skip


@pytest.mark.parametrize(("settings", "message"), [
    (("model.window_ms=0.03",), r"window_ms = 0.03 is not a whole number of data.dt_ms = 0.02"),
    (("model.window_ms=0.01",), r"window_ms = 0.01 is shorter than the time step"),
    (("model.window_ms=100",), r"window_ms = 100 is longer than the horizon"),
    (("model.method=fpinn",), "fpinn' is the fractional PINN: hh_modern has no Caputo"),
    (("data.ionic_model=lif", "data.stimulus.amplitude=20"), "lif has one state"),
    (("model.splitting=yoshida",), "splitting"),
    (("model.method=pinn", "model.splitting=lie"), "splitting applies to method = 'splitting'"),
])  # fmt: skip
def test_bad_model_settings_are_refused_before_any_solve(settings, message):
    with pytest.raises(UserError, match=message):
        _experiment(*settings)


def test_a_march_trains_resumes_mid_horizon_and_serves_its_trajectory(tmp_path):
    experiment = _experiment("data.t_end_ms=4", "training.epochs=4")
    dataset = _dataset(experiment, tmp_path)
    straight = trained(experiment, dataset, tmp_path / "straight.pt")
    test = straight.per_sample["test"]
    assert float(np.nanmean(test["rel_l2"])) < 2e-3  # against the BDF at rtol 1e-11
    assert float(test["f1"][0]) == 1.0

    _stop_after_two_epochs(experiment, dataset, tmp_path / "resumed.pt")
    state = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert int(state["model"]["filled"]) == 101  # 2 ms of 0.02 ms windows and the start
    resumed = trained(experiment, dataset, tmp_path / "resumed.pt")
    for key in ("rel_l2", "f1", "phase_drift"):
        assert np.array_equal(resumed.per_sample["test"][key], test[key]), key
    final = torch.load(tmp_path / "resumed.pt", weights_only=True)
    once = torch.load(tmp_path / "straight.pt", weights_only=True)
    assert torch.equal(final["model"]["states"], once["model"]["states"])

    serving = FAMILY.serving()
    data = FAMILY.load_data(experiment, dataset)
    model = FAMILY.build(once["arguments"])
    model.load_state_dict(once["model"])
    described = FAMILY.objective(data, FAMILY.own_trial(experiment, data), experiment).describe()
    described = {**described, "attributes": data.attributes}
    predicted = serving.predict(model, described, torch.tensor([[4.0], [2.0]]))
    truth = serving.solve(described, np.array([[4.0], [2.0]]))
    assert np.isnan(predicted[1, 0, -1])  # past the second row's horizon
    errors = serving.errors(predicted, torch.as_tensor(truth), described)
    assert float(errors["rel_l2"][0].mean()) == pytest.approx(float(np.mean(test["rel_l2"])),
                                                              rel=1e-6)  # fmt: skip
    with pytest.raises(UserError, match=r"horizon_ms = 9: .*0 < horizon_ms <= 4"):
        serving.predict(model, described, torch.tensor([[9.0]]))


class _Stop(Exception):
    pass


def _stop_after_two_epochs(experiment, dataset: Path, checkpoint: Path) -> None:  # type: ignore[no-untyped-def]
    """Train as ``trained`` does, checkpointing every epoch, and stop after the second."""
    from ionops.training import TrainSettings, train

    data = FAMILY.load_data(experiment, dataset)
    trial = FAMILY.own_trial(experiment, data)
    settings = TrainSettings.from_config(trial.training, eval_splits=("validation",),
                                         final_splits=("test",), checkpoint_every=1)  # fmt: skip

    def stop(report, written):  # type: ignore[no-untyped-def]
        if report.epoch == 2:
            raise _Stop

    with pytest.raises(_Stop):
        train(FAMILY.build(trial.arguments), FAMILY.objective(data, trial, experiment), settings,
              family=FAMILY.name, arguments=trial.arguments, checkpoint=checkpoint,
              on_epoch=stop)  # fmt: skip


def test_the_vanilla_pinn_is_a_setting_and_counts_its_parameters(tmp_path):
    experiment = _experiment("data.t_end_ms=4", "model.method=pinn", "model.widths=[8,8]",
                             "model.points=64", "training.epochs=3")  # fmt: skip
    dataset = _dataset(experiment, tmp_path)
    result = trained(experiment, dataset, tmp_path / "pinn.pt")
    assert np.isfinite(result.per_sample["test"]["rel_l2"]).all()
    data = FAMILY.load_data(experiment, dataset)
    arguments = FAMILY.own_trial(experiment, data).arguments
    network = FAMILY.build(arguments)
    assert FAMILY.parameter_count(arguments) == sum(p.numel() for p in network.parameters())
    march = _experiment("data.t_end_ms=4")
    arguments = FAMILY.own_trial(march, FAMILY.load_data(march, dataset)).arguments
    network = FAMILY.build(arguments)
    assert FAMILY.parameter_count(arguments) == sum(p.numel() for p in network.parameters())


@pytest.mark.slow
def test_two_mpi_ranks_write_the_serial_reference_file_byte_for_byte(tmp_path, mpiexec):
    ionops = str(Path(sys.executable).parent / "ionops")

    def cli(output):  # type: ignore[no-untyped-def]
        return [ionops, "generate", "hh-splitting", "--set", "data.ionic_model=izhikevich",
                "--set", "data.parameter_set=FS", "--set", "data.t_end_ms=30", "--no-progress",
                "--output", str(output)]  # fmt: skip

    subprocess.run(cli(tmp_path / "serial.h5"), check=True, capture_output=True)
    subprocess.run([mpiexec, "-n", "2", *cli(tmp_path / "mpi.h5")], check=True,
                   capture_output=True)  # fmt: skip
    assert (tmp_path / "serial.h5").read_bytes() == (tmp_path / "mpi.h5").read_bytes()


@pytest.mark.parametrize("method", ["splitting", "pinn"])
def test_every_point_of_each_methods_space_configures_back_to_itself(tmp_path, method):
    from hyperopt.pyll.stochastic import sample

    from ionops.models.points import check_points

    experiment = _experiment("data.t_end_ms=2", f"model.method={method}")
    dataset = _dataset(experiment, tmp_path)
    data = FAMILY.load_data(experiment, dataset)
    space = FAMILY.hyperopt_space(experiment)
    assert ("learning_rate" in space) == (method != "splitting")
    assert ("window_ms" in space) == (method == "splitting")
    check_points(FAMILY, experiment, data, (), FAMILY.default_point(experiment))
    rng = np.random.default_rng(0)
    for _ in range(5):
        point = sample(space, rng=rng)
        trial = FAMILY.configure(point, experiment, data)
        assert FAMILY.configure(trial.record, experiment, data).record == trial.record
