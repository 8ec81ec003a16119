"""The gating-RNN family through the plug-in: its parameter count, a second pass that retrains
the gating layer alone from a first-pass checkpoint, the converted ODE against the model's own
right-hand side, the step-mean pacing current, serving's refusals and bad settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ionops.config import load_experiment
from ionops.datasets.generate import generate, spec_from_config
from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.stimuli import Pacing
from ionops.errors import UserError
from ionops.models.registry import get_family
from ionops.training.checkpoint import load_checkpoint
from tests.support import trained

FAMILY = get_family("gating")
SMALL = ("data.cycle_lengths=[400,600,100]", "data.validation=1", "data.test_cycle_lengths=[450]",
         "data.segment_ms=1500", "data.discard_ms=500", "model.width=8", "model.sequence_ms=200",
         "model.gate_epochs=1", "model.gate_batch_size=256", "model.rollout_epochs=0",
         "training.epochs=2",
         "training.eval_every=1", "training.batch_size=4")  # fmt: skip


def _experiment(*settings: str):  # type: ignore[no-untyped-def]
    return load_experiment("tt04-gating", overrides=[*SMALL, *settings])


def _dataset(experiment, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    path = folder / f"paced{len(list(folder.glob('*.h5')))}.h5"
    generate(spec_from_config(experiment.data), path, progress=False)
    return path


@pytest.fixture(scope="module")
def first_pass(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gating")
    experiment = _experiment()
    trained(experiment, _dataset(experiment, folder), folder / "first.pt")
    return folder / "first.pt"


def test_the_parameter_count_is_what_trains_in_each_pass(tmp_path, first_pass):
    experiment = _experiment("model.lstm_width=5", 'model.gate_inputs=["V"]')
    data = FAMILY.load_data(experiment, _dataset(experiment, tmp_path))
    trial = FAMILY.own_trial(experiment, data)
    model = FAMILY.build(trial.arguments)
    every = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("original."))
    assert trial.parameter_count == every
    second = _experiment(f"model.first_pass={first_pass}")
    trial = FAMILY.own_trial(second, data)
    gating = sum(p.numel() for p in FAMILY.build(trial.arguments).network.gating.parameters())
    assert trial.parameter_count == gating and trial.record["pass"] == "second"


@pytest.mark.parametrize("loss", ["network", "model"])
def test_a_second_pass_retrains_the_gating_layer_alone(tmp_path, first_pass, loss):
    experiment = _experiment("data.scale.g_Kr=0.5", f"model.first_pass={first_pass}",
                             "model.drift=1e-3", f'model.second_pass_loss="{loss}"')  # fmt: skip
    trained(experiment, _dataset(experiment, tmp_path), tmp_path / "second.pt")
    before = load_checkpoint(first_pass)["model"]
    after = load_checkpoint(tmp_path / "second.pt")["model"]
    for name, value in before.items():
        if name.startswith("network.") and not name.startswith("network.gating."):
            assert torch.equal(after[name], value), name  # phi1 and N2 frozen
    for part in ("steady.weight", "steady.bias", "rate.weight", "rate.bias"):
        assert torch.equal(after[f"original.{part}"], before[f"network.gating.{part}"])
    moved = [not torch.equal(after[f"network.gating.{p}"], before[f"network.gating.{p}"])
             for p in ("steady.weight", "rate.weight")]  # fmt: skip
    assert all(moved)


@pytest.mark.parametrize(("loss", "share"), [("network", 0.1), ("model", 0.3)])
def test_a_second_pass_window_comes_with_its_burn_in_and_scores_after_it(tmp_path, first_pass,
                                                                         loss, share):  # fmt: skip
    """The hidden gates start from their steady state, wrong for a slow gate caught in the
    plateau: each window carries ``burn_in_ms`` of recording before it, never scored. (Under
    the model's equations V in the burn-in also drives the hidden concentrations run by them,
    whose change lasts: a larger share.)"""
    experiment = _experiment(f"model.first_pass={first_pass}", "model.burn_in_ms=300",
                             f'model.second_pass_loss="{loss}"')  # fmt: skip
    data = FAMILY.load_data(experiment, _dataset(experiment, tmp_path))
    trial = FAMILY.own_trial(experiment, data)
    objective = FAMILY.objective(data, trial, experiment)
    model = FAMILY.build(trial.arguments)
    model.load_state_dict(load_checkpoint(first_pass)["model"])
    model.original.load_state_dict(model.network.gating.state_dict())
    objective.enter(objective.phases(None)[0])
    states, current = next(iter(objective.batches(torch.Generator().manual_seed(0), 2)))
    assert states.shape[1] == 200 + 300 and trial.record["burn_in_ms"] == 300
    with torch.no_grad():
        scored = float(objective.loss(model, (states, current)))
        inside, after = states.clone(), states.clone()
        inside[:, :300, 0] += 0.5  # V off inside the burn-in: the gates move, nothing scored
        after[:, 300:, 0] += 0.5
        moved = [abs(float(objective.loss(model, (x, current))) - scored) for x in (inside, after)]
    assert moved[0] < share * moved[1]


def test_a_second_pass_reads_its_gates_through_the_first_pass_model(tmp_path, first_pass):
    """The perturbed data's conductances are what a second pass has to find: its currents and
    its converted ODE use the model the first pass learned, never the perturbed data's."""
    from ionops.models.families.gating_report import current_pair
    from ionops.models.families.gating_runs import predict_runs

    experiment = _experiment("data.scale.g_Kr=0.5", f"model.first_pass={first_pass}")
    path = _dataset(experiment, tmp_path)
    trained(experiment, path, tmp_path / "second.pt")
    data = FAMILY.load_data(experiment, path)
    models = []
    for checkpoint in (first_pass, tmp_path / "second.pt"):
        state = load_checkpoint(checkpoint)
        models.append(FAMILY.build(state["arguments"]))
        models[-1].load_state_dict(state["model"])
    first, second = models
    assert second.nominal["g_Kr"] == 2 * data.attributes["parameters"]["g_Kr"]
    told = FAMILY.build({**load_checkpoint(tmp_path / "second.pt")["arguments"], "parameters": {}})
    told.load_state_dict(second.state_dict())
    i_kr = current_pair(second, data)["I_Kr"][0]
    assert np.allclose(i_kr, 2 * current_pair(told, data)["I_Kr"][0])
    # with the first pass's gating layer back, the converted ODE is the first pass's
    second.network.gating.load_state_dict(second.original.state_dict())
    told.network.gating.load_state_dict(second.original.state_dict())
    start = data.states["validation"][:1, :, 0].astype(np.float64)
    runs = [predict_runs(m, data.attributes, "ode", [400.0], [0.0], start, data.time[:401],
                         [401]) for m in (first, second, told)]  # fmt: skip
    assert np.array_equal(runs[0], runs[1])
    assert not np.allclose(runs[1][0, 0], runs[2][0, 0], atol=1.0)


def test_the_converted_ode_is_the_model_with_the_gating_layers_kinetics():
    from ionops.models.gating_ode import converted_model, parameter_vector
    from ionops.models.gating_rnn import GatingNetwork, Scaling

    ionic = get_ionic_model("tt04")
    names = list(ionic.state_names)
    gates = [names.index(g) for g in ionic.gates]
    observables = [names.index(o) for o in ionic.observables]
    torch.manual_seed(3)
    network = GatingNetwork(ionic.n_states, gates, observables, width=6).double()
    p = ionic.parameter_vector()
    y0 = ionic.initial_state(p)
    low = np.minimum(y0 * 0.5, y0 * 1.5) - 0.1
    high = np.maximum(y0 * 0.5, y0 * 1.5) + 0.1
    scaling = Scaling(tuple(low.tolist()), tuple(high.tolist()))
    converted = converted_model(ionic, tuple(gates), tuple(observables), 6)
    parameters = parameter_vector(p, network, scaling, 0.5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = y0 * rng.uniform(0.9, 1.1, y0.size)  # concentrations near the model's
        y[gates] = rng.uniform(0.05, 0.95, len(gates))
        y[0] = rng.uniform(-90.0, 30.0)
        mine, theirs = np.zeros(y.size), np.zeros(y.size)
        converted.rhs(0.0, y, parameters, 3.0, mine)
        ionic.rhs(0.0, y, p, 3.0, theirs)
        others = [k for k in range(y.size) if k not in gates]
        assert np.array_equal(mine[others], theirs[others])
        x = scaling.forward(torch.tensor(y))[observables]
        steady, tau = network.gating.time_constants(network.phi1(x), 0.5)
        target = low[gates] + (high[gates] - low[gates]) * steady.detach().numpy()
        expected = (target - y[gates]) / tau.detach().numpy()
        assert mine[gates] == pytest.approx(expected, rel=1e-10, abs=1e-14)


def test_the_pacing_current_is_its_mean_over_each_sampling_step():
    # a 1 ms pulse from 10.5 ms covers half of the steps [10, 11) and [11, 12)
    pacing = Pacing(52.0, 1.0, 10.5, 300.0)
    means = pacing.step_means(np.array([9.0, 10.0, 11.0, 12.0, 310.0, 311.0]), 1.0)
    assert means.tolist() == [0.0, 26.0, 26.0, 0.0, 26.0, 26.0]
    # whatever the grid, the charge is the pulse's
    grid = np.arange(0.0, 900.0, 0.7)
    assert pacing.step_means(grid, 0.7).sum() * 0.7 == pytest.approx(3 * 52.0)


def test_serving_refuses_beats_the_grid_does_not_hold(tmp_path, first_pass):
    from ionops.models.families.gating_learning import GatingObjective
    from ionops.models.families.gating_serving import SERVING

    experiment = _experiment()
    data = FAMILY.load_data(experiment, _dataset(experiment, tmp_path))
    described = GatingObjective(data, FAMILY.own_trial(experiment, data)).describe()
    described["attributes"] = json.loads(described["attributes"])  # as a checkpoint gives it
    model = FAMILY.build(load_checkpoint(first_pass)["arguments"])
    run = SERVING.predict(model, described, torch.tensor([[450.0, 2.0]]))
    assert run.shape == (1, 17, 1001)
    assert np.isfinite(run[0, :, :901].numpy()).all() and np.isnan(run[0, :, 901:].numpy()).all()
    with pytest.raises(UserError, match=r"beats = 3: give a whole number from 1 to 2 at 450 ms"):
        SERVING.predict(model, described, torch.tensor([[450.0, 3.0]]))
    with pytest.raises(UserError, match=r"cycle_length_ms = 0.5"):
        SERVING.predict(model, described, torch.tensor([[0.5, 1.0]]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (['model.gates=["m", "zz"]'], r"model.gates = \['m', 'zz'\]: zz not among the states"),
        (['model.observables=["V", "Cai"]'], r"Cai not among the states of tt04"),
        (['model.observables=["V", "m"]'], r"model.gates and model.observables share \['m'\]"),
        (['model.gate_inputs=["K_i"]'], r"model.gate_inputs = \['K_i'\]: give some of the obs"),
        (["model.first_pass=missing.pt"], r"model.first_pass = 'missing.pt': no first-pass"),
        (["model.drift=0"], r"drift"),
        (["model.weight_decay=-1"], r"weight_decay"),
        (["model.gate_epochs=2"], r"model.gate_epochs \+ model.rollout_epochs = 2 \+ 0 leaves no"),
        (["model.gate_batch_size=0"], r"gate_batch_size"),
        (['model.equation_observables=["Ca_SR"]'], r"equation_observables = \['Ca_SR'\]: give "
                                                   r"some of the observables \(V, Ca_i\)"),
        (['model.second_pass_loss="ode"'], r"second_pass_loss"),
    ],
)  # fmt: skip
def test_bad_gating_settings_are_refused_by_name(settings, message):
    with pytest.raises(UserError, match=message):
        _experiment(*settings)


def test_the_model_scores_its_own_recording_and_not_a_perturbed_one(tmp_path):
    """The equation score of a second pass (``second_pass_loss = "model"``) with the true
    gates: near nothing on a recording of the model it scores through, and far more on one
    with g_Kr halved (the difference a second pass has to put into the gates); both with every
    hidden state true, and V's with the hidden states run by the equations from their mean."""
    from ionops.models.families.gating_equations import EquationScore
    from ionops.models.gating_rnn import Scaling

    ionic = get_ionic_model("tt04")
    hidden = [9, 13, 14, 15, 16]  # fCa, Ca_SR, g, Na_i, K_i
    scores = []
    for scale in ([], ["data.scale.g_Kr=0.5"]):
        experiment = _experiment(*scale)
        data = FAMILY.load_data(experiment, _dataset(experiment, tmp_path))
        values = torch.as_tensor(data.states["train"].transpose(0, 2, 1).copy()).double()
        scaling = Scaling.of(data.states["train"], gates=[1, 2, 3, 4, 5, 6, 7, 8, 10, 11])
        scaled = scaling.forward(values)
        step = scaled.diff(dim=1).pow(2).mean((0, 1)).sqrt()
        current = torch.as_tensor(data.stimulus["train"]).double() / 52.0
        row = []
        for scored in ([0, 12], [0]):
            start = scaled[:, :, hidden].mean((0, 1))  # for the hidden states run below
            score = EquationScore(ionic, ionic.parameters, scaling, scored, hidden, start, step,
                                  52.0, 1.0)  # fmt: skip
            row.append(float(score(scaled, current, burn=0)))
        run = score.with_hidden(scaled, current)
        assert not torch.equal(run[..., hidden], scaled[..., hidden])
        assert torch.equal(run[..., [0, 12]], scaled[..., [0, 12]])
        row.append(float(score(run, current, burn=300)))  # after the start settles
        scores.append(row)
    control, long_qt = scores
    assert max(control) < 5e-8, scores  # scaled units: V residuals near 0.02 mV
    assert all(b > 30 * a for a, b in zip(control, long_qt, strict=True)), scores


def test_a_second_pass_needs_a_first_pass_network(tmp_path, first_pass):
    second = tmp_path / "second.pt"
    experiment = _experiment("data.scale.g_Kr=0.5", f"model.first_pass={first_pass}")
    trained(experiment, _dataset(experiment, tmp_path), second)
    with pytest.raises(UserError, match=r"is not a first pass of the gating family"):
        _experiment(f"model.first_pass={second}")


def test_a_midpoint_network_trains_both_passes_and_its_second_pass_keeps_the_clock(
        tmp_path, first_pass):  # fmt: skip
    with pytest.raises(UserError, match=r"other gates, observables, gate_inputs or gate_clock"):
        _experiment('model.gate_clock="start"', f"model.first_pass={first_pass}")
    control = _experiment('model.gate_clock="midpoint"')
    trained(control, _dataset(control, tmp_path), tmp_path / "first.pt")
    assert load_checkpoint(tmp_path / "first.pt")["arguments"]["gate_clock"] == "midpoint"
    perturbed = _experiment("data.scale.g_to=3", "model.gate_clock=\"midpoint\"",
                            f"model.first_pass={tmp_path / 'first.pt'}")  # fmt: skip
    trained(perturbed, _dataset(perturbed, tmp_path), tmp_path / "second.pt")
    after = load_checkpoint(tmp_path / "second.pt")
    assert after["arguments"]["gate_clock"] == "midpoint" and after["arguments"]["second_pass"]
    before = load_checkpoint(tmp_path / "first.pt")["model"]
    assert not torch.equal(after["model"]["network.gating.rate.weight"],
                           before["network.gating.rate.weight"])  # fmt: skip


def test_a_dataset_of_another_model_is_refused_naming_both(tmp_path):
    from types import SimpleNamespace

    from ionops.models.family import of_the_model

    data = SimpleNamespace(attributes={"model": "ord"})
    with pytest.raises(UserError, match=r"x.h5 is a paced dataset of ord; the experiment wants "
                                        r"tt04"):  # fmt: skip
        of_the_model(data, tmp_path / "x.h5", "paced", _experiment())
    assert of_the_model(SimpleNamespace(attributes={"model": "tt04"}), tmp_path / "x.h5",
                        "paced", _experiment()).attributes["model"] == "tt04"  # fmt: skip


def test_a_first_pass_in_phases_trains_n1_on_single_steps_then_n2_on_windows_then_free(
        tmp_path):  # fmt: skip
    from ionops.training import TrainSettings
    from ionops.training.optimisation import freeze

    experiment = _experiment("model.gate_batch_size=64", "model.rollout_epochs=1",
                             "model.rollout_ms=20", "training.epochs=3")  # fmt: skip
    data = FAMILY.load_data(experiment, _dataset(experiment, tmp_path))
    trial = FAMILY.own_trial(experiment, data)
    objective = FAMILY.objective(data, trial, experiment)
    settings = TrainSettings.from_config(trial.training)
    model = FAMILY.build(trial.arguments)
    n1 = ("network.phi1.", "network.gating.")
    phases = objective.phases(settings)
    plan = [("gates", 1), ("sequences", 2), ("rollouts", 3)]
    assert [(p.name, p.last_epoch(3)) for p in phases] == plan
    shapes = {"gates": [(64, 17), (64, 17)], "sequences": [(4, 200, 17), (4, 200)],
              "rollouts": [(4, 20, 17), (4, 20)]}  # fmt: skip
    for phase in phases:
        freeze(model, phase)
        objective.enter(phase)
        model.zero_grad(set_to_none=True)
        batch = next(iter(objective.batches(torch.Generator().manual_seed(0), 4)))
        assert [tuple(b.shape) for b in batch] == shapes[phase.name]
        objective.loss(model, batch).backward()
        moved = {n for n, p in model.named_parameters() if p.grad is not None}
        assert moved and all(n.startswith(n1) == (phase.name == "gates") for n in moved), moved
    trained(experiment, _dataset(experiment, tmp_path), tmp_path / "phased.pt")
    assert load_checkpoint(tmp_path / "phased.pt")["phases"] == plan


@pytest.mark.slow
def test_a_second_pass_through_the_commands_reports_the_currents_that_changed(tmp_path):
    """The README's second pass: ``train`` the control, then ``tune``, ``retrain`` and
    ``report`` on long QT with the first pass named, scored through the model's equations
    and evaluated by the converted ODE; the report draws the currents and tables each
    current's change per seed."""
    from tests.test_conformance import _env, _run

    env = _env(tmp_path / "site", tmp_path)
    small = [part for value in (*SMALL, "search.num_samples=2", "search.n_initial_points=2",
                                "search.max_concurrent=1", "search.scheduler=fifo")
             for part in ("--set", value)]  # fmt: skip
    _run(env, tmp_path, "train", "tt04-gating", *small, "--run-name", "control", "--no-progress")
    second = [*small, "--set", "data.scale.g_Kr=0.5", "--set", "model.predictor=ode", "--set",
              f"model.first_pass={tmp_path / 'runs' / 'control'}", "--no-progress"]  # fmt: skip
    assert "search complete: 2 trials" in _run(env, tmp_path, "tune", "tt04-gating", *second)
    _run(env, tmp_path, "retrain", "tt04-gating", *second, "--seeds", "2")
    reported = _run(env, tmp_path, "report", "tt04-gating", *second[:-1])
    (report,) = (tmp_path / "reports").iterdir()
    assert (report / "currents.png").stat().st_size > 0, reported
    table = (report / "tables.md").read_text()
    assert "I_Kr" in table and "seed" in table, table
