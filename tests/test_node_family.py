"""The neural-ODE family: its network, losses, forecasts, serving and refusals (tiny shapes).

Accuracy against the paper's targets is measured in ``benchmarks/node_pinode.py``; here each
part is checked against an independent computation: the compiled Heun loss and its gradient
against torchdiffeq's Heun, the compiled forecast against torch Heun, the serving's current
shift against the ionic model's own right-hand side, the analytic parameter count against
the built network.
"""

import math

import numpy as np
import pytest
import torch
import torchdiffeq

from ionops.config import load_experiment
from ionops.datasets.generate import generate, spec_from_config
from ionops.errors import UserError
from ionops.models.families.node_field import forecast, right_hand_side
from ionops.models.families.node_learning import NodeObjective, trajectory_errors
from ionops.models.families.node_serving import SERVING
from ionops.models.node import heun
from ionops.models.registry import get_family

FAMILY = get_family("node")


@pytest.fixture
def window(node_window):
    return node_window


def _trial(experiment, data, **model):
    experiment = experiment.model_copy(update={"model": experiment.model.model_copy(update=model)})
    trial = FAMILY.own_trial(experiment, data)
    torch.manual_seed(0)
    network = FAMILY.build(trial.arguments)
    return trial, network, NodeObjective(data, trial)


@pytest.mark.parametrize("method", ["node", "pinn"])
@pytest.mark.parametrize("layer_norm", [True, False])
def test_the_analytic_parameter_count_is_the_built_networks(window, method, layer_norm):
    experiment, data = window
    trial, network, _ = _trial(experiment, data, method=method, layer_norm=layer_norm,
                               widths=[8, 5, 3])  # fmt: skip
    assert trial.parameter_count == sum(p.numel() for p in network.parameters())


def test_the_compiled_heun_loss_and_gradient_are_torchdiffeqs(window):
    experiment, data = window
    _, network, objective = _trial(experiment, data, physics=False)
    network.double()
    compiled = objective.loss(network, None)
    (g_compiled,) = torch.autograd.grad(compiled, [next(network.parameters())])
    # the same loss through torchdiffeq's fixed-grid Heun and autograd
    tensors = objective._tensors
    path = torchdiffeq.odeint(lambda t, z: network(z, t), tensors["observed"][:, 0],
                              tensors["time"], method="heun2")  # fmt: skip
    reference = ((path - tensors["observed"].T) / tensors["data_scale"]).pow(2).sum(1).mean()
    (g_reference,) = torch.autograd.grad(reference, [next(network.parameters())])
    assert compiled.item() == pytest.approx(reference.item(), rel=1e-10)
    assert torch.allclose(g_compiled, g_reference, rtol=1e-7, atol=1e-10)


def test_the_adjoint_and_dopri5_losses_train(window):
    experiment, data = window
    for settings in ({"gradient": "adjoint"}, {"integrator": "dopri5"}):
        _, network, objective = _trial(experiment, data, **settings)
        before = objective.loss(network, None)
        optimiser = torch.optim.Adam(network.parameters(), 1e-2)
        before.backward()
        optimiser.step()
        after = objective.loss(network, None).item()
        assert math.isfinite(after) and after < before.item(), settings


def test_the_physics_residual_is_zero_where_the_field_is_the_models(window):
    """The residual term compares the network with F at the observed states: a 'network'
    returning F exactly leaves only the data term."""
    experiment, data = window
    _, network, objective = _trial(experiment, data, data_weight=0.0)
    attributes = data.attributes

    class Exact(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

        def forward(self, z, t):
            return right_hand_side(attributes, z.T, objective.time).T + 0 * self.dummy

    assert objective.loss(Exact(), None).item() == pytest.approx(0.0, abs=1e-20)
    assert objective.loss(network.double(), None).item() > 0.1


@pytest.mark.parametrize("output", ["linear", "sinh"])
def test_the_compiled_forecast_is_torch_heun_and_close_to_dopri5_and_bdf(window, output):
    experiment, data = window
    _, network, _ = _trial(experiment, data, output=output)
    network.double()
    time = data.time["test"][:2001]
    z0 = data.initial_state["test"]
    compiled = forecast(network, z0, time, "heun")
    with torch.no_grad():
        reference = heun(network, torch.as_tensor(z0), torch.as_tensor(time)).numpy()
    assert np.allclose(compiled, reference, rtol=1e-10, atol=1e-10)
    adaptive = forecast(network, z0, time, "dopri5")
    assert np.abs(adaptive - compiled).max() < 1e-3 * np.abs(compiled).max()
    stiff = forecast(network, z0, time, "bdf")  # the project's BDF on the packed field
    assert np.abs(stiff - adaptive).max() < 1e-4 * np.abs(compiled).max()


def test_evaluation_gives_finite_errors_and_names_undefined_spike_scores(window):
    experiment, data = window
    _, network, objective = _trial(experiment, data)
    errors = objective.evaluate(network, "test")
    assert errors["rmse"].shape == (1, 4) and torch.isfinite(errors["rmse"]).all()
    assert errors["long_rmse"].shape == (1, 4)
    assert errors["f1"].shape == (1,)
    undefined = objective.state_dict()["undefined"]["test"]
    for key in ("phase_drift", "isi_error", "precision"):
        if key in undefined:  # an untrained network: no spike predicted, say so
            assert math.isnan(errors[key].item()) and undefined[key]
    # the solver's trajectory scores perfectly against itself; one spike has no ISI
    truth = data.states["test"]
    perfect, reasons = trajectory_errors(data.time["test"], truth, truth, 14.68, 40.0, 0.0, 2.0)
    assert perfect["f1"] == 1.0 and perfect["phase_drift"] == 0.0 and not reasons
    assert perfect["isi_error"] == 0.0
    _, reasons = trajectory_errors(data.time["test"], truth, truth, 14.68, 30.0, 0.0, 2.0)
    assert reasons == {"isi_error": "no two consecutive spikes matched"}
    assert np.all(perfect["rmse"] == 0)


def test_another_current_shifts_the_field_by_the_models_difference(window):
    experiment, data = window
    _, network, objective = _trial(experiment, data)
    described = {**objective.describe(), "attributes": data.attributes}
    z0 = data.initial_state["test"]
    rows = torch.tensor([[*z0, 10.0, 20.0], [*z0, 15.0, 20.0]], dtype=torch.float64)
    network.double()
    predicted = SERVING.predict(network, described, rows).numpy()
    time = described["time"].numpy()
    keep = time <= 20.0
    assert np.isnan(predicted[:, :, ~keep]).all() and np.isfinite(predicted[:, :, keep]).all()
    shifted = forecast(network, z0, time[keep], "heun", np.array([5.0, 0.0, 0.0, 0.0]))  # 5/C_m
    assert np.allclose(predicted[1][:, keep], shifted)
    assert np.allclose(predicted[0][:, keep], forecast(network, z0, time[keep], "heun"))
    with pytest.raises(UserError, match="horizon_ms = 50"):
        SERVING.predict(network, described, torch.tensor([[*z0, 10.0, 50.0]]))
    solved = SERVING.solve(described, rows.numpy())
    assert np.allclose(solved[0][:, keep], data.states["test"][:, keep], rtol=1e-4, atol=1e-3)


def test_the_network_is_built_in_its_recorded_precision(window):
    """hh-node trains in float64; a network recorded before the setting existed is float32,
    and either answers a float32 request in float32 with the float64 network's values."""
    experiment, data = window
    trial, network, _ = _trial(experiment, data)
    assert trial.arguments["precision"] == "float64" == trial.record["precision"]
    assert all(p.dtype == torch.float64 for p in network.parameters())
    older = FAMILY.build({k: v for k, v in trial.arguments.items() if k != "precision"})
    assert all(p.dtype == torch.float32 for p in older.parameters())
    states = torch.as_tensor(data.clean[:, :50].T)
    wide = network(states, 0.0)
    narrow = network(states.float(), 0.0)
    assert narrow.dtype == torch.float32
    assert torch.allclose(narrow.double(), wide, rtol=1e-5, atol=1e-5 * wide.abs().max().item())
    with pytest.raises(ValueError, match="precision"):
        load_experiment("hh-node", ["model.precision='float16'"])


@pytest.mark.parametrize(("override", "message"), [
    ("model.physics_weight=0", "physics_weight"),
    ("model.noise_scale=-1", "noise_scale"),
    ("model.integrator='rk4'", "integrator"),
    ("model.gradient='forward'", "gradient"),
    ("data.window_ms=200", "window_ms"),
    ("data.window_ms=0.001", "window_ms"),
    ("model.method='pinn'", "collocation_rounds"),  # hh-node's rounds need a field
    ("model.method='pinn',model.collocation_rounds=0", "output"),  # and a field's output
    ("model.method='pinn',model.collocation_rounds=0,model.output='linear'", None),
])  # fmt: skip
def test_bad_settings_are_refused_by_name(override, message):
    overrides = override.split(",")
    if message is None:  # a valid setting: the PINN baseline loads
        assert load_experiment("hh-node", overrides).model.method == "pinn"
        return
    with pytest.raises((UserError, ValueError), match=message):
        load_experiment("hh-node", overrides)


def test_a_window_without_a_spike_or_a_model_without_a_field_is_refused(window):
    experiment, data = window
    with pytest.raises(UserError, match="spike_threshold = 80"):
        _trial(experiment, data, spike_threshold=80.0)
    with pytest.raises(UserError, match="vector_field"):
        load_experiment("hh-node", ["data.ionic_model='ord'"])


def test_another_ionic_model_with_a_field_trains_the_same_way(tmp_path):
    """FitzHugh-Nagumo (the MLP paper's form, u in [0, 1]): its window, residual and spike
    scores need only its own settings (a threshold in its units, a longer window)."""
    experiment = load_experiment("hh-node", [
        "data.ionic_model='fhn_werneck'", "data.window_ms=30", "data.t_end_ms=60",
        "data.long_end_ms=80", "data.dt_ms=0.05", "data.validation_offset={u=0.1}",
        "data.noise.scale={u=0.01, w=0.001}", "data.stimulus.amplitude=0.5",
        "model.spike_threshold=0.5", "model.widths=[8,8]",
    ])  # fmt: skip
    path = tmp_path / "fhn.h5"
    generate(spec_from_config(experiment.data), path, progress=False)
    data = FAMILY.load_data(experiment, path)
    assert data.state_names == ["u", "w"]
    _, network, objective = _trial(experiment, data)
    before = objective.loss(network, None)
    before.backward()
    torch.optim.Adam(network.parameters(), 1e-2).step()
    assert objective.loss(network, None).item() < before.item()
    errors = objective.evaluate(network, "test")
    assert errors["rmse"].shape == (1, 2) and torch.isfinite(errors["rmse"]).all()
    truth = data.states["test"]
    scored, _ = trajectory_errors(data.time["test"], truth, truth, 30.0, 60.0, 0.5, 2.0)
    assert scored["f1"] == 1.0  # the truth spikes after the window


def test_the_pinn_baseline_trains_on_its_own_derivative_and_predicts_t_alone(window):
    experiment, data = window
    _, network, objective = _trial(experiment, data, method="pinn")
    before = objective.loss(network, None)
    before.backward()
    torch.optim.Adam(network.parameters(), 1e-2).step()
    assert objective.loss(network, None).item() < before.item()
    predicted = objective.trajectory(network, "test")
    with torch.no_grad():
        direct = network(torch.as_tensor(data.time["test"], dtype=torch.float32)).T.numpy()
    assert np.allclose(predicted, direct)


def test_nan_in_the_window_is_refused_before_training(window):
    import dataclasses

    experiment, data = window
    clean = data.clean.copy()
    clean[1, 100] = np.nan
    with pytest.raises(UserError, match="NaN"):
        _trial(experiment, dataclasses.replace(data, clean=clean))


def test_a_sinh_fields_knee_is_each_rates_spread_without_the_noise(window):
    """``output = "sinh"``: f = c sinh(network), c 0.02 times each rate's spread, estimated
    from the noisy window by the smaller of F's spread at the observed states and the
    observed finite differences'. Against the clean window's F (which training never sees),
    within 10 % for V, whose F the gates' noise inflates, and within 2.5 times for every
    state."""
    experiment, data = window
    trial, network, objective = _trial(experiment, data, output="sinh")
    knee = np.asarray(trial.arguments["scaling"]["out_std"])
    clean = right_hand_side(data.attributes, data.clean, data.time["train"]).std(axis=1)
    noisy = right_hand_side(data.attributes, objective.observed, objective.time).std(axis=1)
    assert noisy[0] > 5 * clean[0]  # F_V at the noisy states: what the knee must not take
    assert knee[0] == pytest.approx(0.02 * clean[0], rel=0.1)
    assert np.all((knee > 0.02 * clean / 2.5) & (knee < 0.02 * clean * 2.5))
    states = torch.as_tensor(objective.observed.T[:50])
    with torch.no_grad():
        raw = network.hidden(torch.cat([(states - network.in_mean) / network.in_std,
                                        torch.zeros(50, 1)], dim=1))  # fmt: skip
        assert torch.allclose(network(states, 0.0), torch.sinh(raw) * torch.as_tensor(knee).float())


def test_hh_nodes_asha_rung_comes_after_its_collocation_rounds_begin():
    """The search judges a trial where its field forecasts: after some of its rounds, not on
    the window's fit alone, and before the last round (so that ASHA still saves rounds)."""
    from ionops.hpo.search import asha_settings

    experiment = load_experiment("hh-node")
    rung = asha_settings(experiment)["grace_period"]
    epochs, rounds = experiment.training.epochs, experiment.model.collocation_rounds
    assert epochs - rounds < rung < epochs
