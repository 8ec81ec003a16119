"""The neural-ODE family's collocation rounds (tiny shapes): their points, weighting, cap,
resume and refusals, each against an independent computation (a separate forecast, the
ionic model's own right-hand side, the residual computed here)."""

import numpy as np
import pytest
import torch
from support import NODE_SMALL

from ionops.config import load_experiment
from ionops.errors import UserError
from ionops.models.families.node_collocation import collocation_points
from ionops.models.families.node_field import forecast, right_hand_side
from ionops.models.families.node_learning import NodeObjective
from ionops.models.registry import get_family
from ionops.training.loop import TrainSettings

FAMILY = get_family("node")


@pytest.fixture
def window(node_window):
    return node_window


ROUNDS = ["model.collocation_rounds=2", "model.collocation_iterations=20",
          "training.epochs=12"]  # fmt: skip


def _collocating(window, extra=()):
    experiment = load_experiment("hh-node", [*NODE_SMALL, *ROUNDS, *extra])
    _, data = window
    trial = FAMILY.own_trial(experiment, data)
    torch.manual_seed(0)
    return trial, FAMILY.build(trial.arguments), NodeObjective(data, trial)


def test_a_collocation_round_fits_the_field_to_the_model_along_its_own_forecast(window):
    """A round's states are where the field's Heun forecast from the window's first state
    goes, its targets the ionic model's right-hand side there; L-BFGS then brings f to F
    there (the residual falls tenfold in 100 iterations), which the window's own loss never
    asked for."""
    _, data = window
    trial, network, objective = _collocating(window, ["model.collocation_iterations=100"])
    settings = TrainSettings.from_config(trial.training, eval_splits=())
    phases = objective.phases(settings)
    assert [(p.name, p.last_epoch(12)) for p in phases] == [("window", 10), ("collocation", 12)]
    objective.enter(phases[1])
    optimisation = objective.optimisation(network, phases[1], settings)
    next(iter(objective.batches(torch.Generator(), 1)))
    points = objective.collocated
    step = data.time["train"][1] - data.time["train"][0]
    horizon = np.arange(0.0, data.attributes["t_end_ms"] + step / 2, step)
    path = forecast(network, objective.observed[:, 0], horizon, "heun")
    index = np.searchsorted(horizon, points["time"].numpy())
    assert np.allclose(points["states"].numpy(), path[:, index].T)
    truth = right_hand_side(data.attributes, points["states"].numpy().T, points["time"].numpy())
    assert np.allclose(points["wanted"].numpy(), truth.T)
    before = objective.loss(network, None).item()
    optimisation.step(lambda: objective.loss(network, None))
    assert objective.loss(network, None).item() < 0.1 * before


def test_a_run_cut_off_in_its_collocation_rounds_resumes_with_their_points(window, tmp_path):
    """The resumed run's last round samples the same earlier points as the straight run's
    (the cap leaves room for half of the first round's states)."""
    from ionops.training.checkpoint import load_checkpoint
    from ionops.training.loop import train

    trial, straight, objective = _collocating(window, ["model.collocation_max_points=0"])
    settings = TrainSettings.from_config(trial.training, eval_splits=())
    train(straight, objective, settings, family="node", arguments=trial.arguments)
    every = objective.collocated["time"]
    first = int(torch.nonzero(every == 0.0)[1])  # each round's forecast starts at t = 0
    assert first >= 2
    cap = len(every) - first + first // 2
    capped = [f"model.collocation_max_points={cap}"]
    trial, straight, objective = _collocating(window, capped)
    train(straight, objective, settings, family="node", arguments=trial.arguments)
    assert len(objective.collocated["time"]) == cap
    checkpoint = tmp_path / "node.pt"

    def interrupt(report, written):
        if report.epoch == 11:  # after the first round
            raise KeyboardInterrupt

    _, first, cut = _collocating(window, capped)
    with pytest.raises(KeyboardInterrupt):
        train(first, cut, settings, family="node", arguments=trial.arguments,
              checkpoint=checkpoint, on_epoch=interrupt)  # fmt: skip
    saved = load_checkpoint(checkpoint)
    assert saved["phase"] == "collocation" and len(saved["objective"]["collocated"]["time"]) > 0
    _, resumed, again = _collocating(window, capped)
    train(resumed, again, settings, family="node", arguments=trial.arguments,
          checkpoint=checkpoint)  # fmt: skip
    assert torch.equal(again.collocated["states"], objective.collocated["states"])
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def _round(objective):
    """One collocation round's points added; returns the batches' iterator (mid-round)."""
    rounds = objective.batches(torch.Generator(), 1)
    next(rounds)
    return rounds


def test_a_rounds_residual_is_in_units_of_the_models_own_rate_or_of_its_spread(window):
    """With ``relative`` weighting each residual is over |F| + 0.02 times F's spread over the
    round, so the slow phase between spikes weighs as much as the upstroke; with ``spread``
    it is over the spread alone.
    Both against the residual computed here from the network and the ionic model."""
    _, data = window
    losses = {}
    for weighting in ("relative", "spread"):
        trial, network, objective = _collocating(
            window, [f"model.collocation_weighting='{weighting}'", "model.output='linear'"]
        )  # linear: an untrained sinh field is near 0, its residual -F in either unit
        settings = TrainSettings.from_config(trial.training, eval_splits=())
        phase = objective.phases(settings)[1]
        objective.enter(phase)
        objective.optimisation(network, phase, settings)
        _round(objective)
        states = objective.collocated["states"].numpy()
        time = objective.collocated["time"].numpy()
        wanted = right_hand_side(data.attributes, states.T, time).T
        with torch.no_grad():
            fitted = network(torch.as_tensor(states), torch.as_tensor(time)).double().numpy()
        spread = wanted.std(axis=0)
        units = np.abs(wanted) + 0.02 * spread if weighting == "relative" else spread
        expected = (((fitted - wanted) / units) ** 2).sum(axis=1).mean()
        losses[weighting] = objective.loss(network, None).item()
        assert losses[weighting] == pytest.approx(expected, rel=1e-4)
    assert losses["relative"] > 2 * losses["spread"]  # the slow phase's errors now count


def test_a_round_fits_at_most_max_points_its_own_first(window):
    """With a cap, a round keeps every state of its own forecast and fills what is left with
    a sample of the earlier rounds' points, without repeats."""
    trial, network, objective = _collocating(window, ["model.collocation_max_points=0"])
    settings = TrainSettings.from_config(trial.training, eval_splits=())
    phase = objective.phases(settings)[1]
    objective.enter(phase)
    optimisation = objective.optimisation(network, phase, settings)
    for _ in range(2):  # two rounds, every point kept
        _round(objective)
        optimisation.step(lambda: objective.loss(network, None))
    earlier = objective.collocated["states"].clone()
    states, _ = collocation_points(network, objective.observed, objective._rounds.step,
                                   objective._rounds.horizon)  # fmt: skip
    own = torch.as_tensor(states.T)
    assert len(own) >= 2 and len(earlier) >= 4
    objective._rounds.max_points = cap = len(own) + len(earlier) // 2
    _round(objective)
    points = objective.collocated["states"]
    assert len(points) == cap
    assert torch.equal(points[-len(own) :], own)  # the round's own, all of them
    sample = {tuple(row.tolist()) for row in points[: len(earlier) // 2]}
    assert len(sample) == len(earlier) // 2  # without repeats
    assert sample <= {tuple(row.tolist()) for row in earlier}  # drawn from the earlier rounds'


def test_collocation_rounds_are_refused_where_they_cannot_run(window):
    with pytest.raises(ValueError, match="collocation_rounds"):
        load_experiment("hh-node", ["model.method='pinn'", "model.collocation_rounds=2"])
    with pytest.raises(ValueError, match="collocation_rounds"):
        load_experiment("hh-node", ["model.collocation_rounds=-1"])
    with pytest.raises(ValueError, match="collocation_weighting"):
        load_experiment("hh-node", ["model.collocation_weighting='huber'"])
    with pytest.raises(ValueError, match="collocation_max_points"):
        load_experiment("hh-node", ["model.collocation_max_points=-1"])
    trial, network, objective = _collocating(window, ["training.epochs=2"])
    from ionops.training.loop import train

    with pytest.raises(UserError, match=r"training.epochs = 2 does not fit"):
        train(network, objective, TrainSettings.from_config(trial.training, eval_splits=()),
              family="node", arguments=trial.arguments)  # fmt: skip


def test_a_round_that_steps_to_non_finite_weights_is_undone(window):
    """L-BFGS can step to NaN weights; the round is then undone: the field is the one the
    round began with and L-BFGS starts the next round afresh."""
    trial, network, objective = _collocating(window)
    settings = TrainSettings.from_config(trial.training, eval_splits=())
    phase = objective.phases(settings)[1]
    objective.enter(phase)
    optimisation = objective.optimisation(network, phase, settings)
    before = [p.detach().clone() for p in network.parameters()]
    rounds = objective.batches(torch.Generator(), 1)
    next(rounds)
    optimisation.step(lambda: objective.loss(network, None))
    assert objective._lbfgs.state
    with torch.no_grad():
        next(network.parameters()).fill_(float("nan"))
    assert next(rounds, "done") == "done"
    assert all(torch.equal(a, b) for a, b in zip(network.parameters(), before, strict=True))
    assert not objective._lbfgs.state


def test_each_round_starts_lbfgs_afresh_on_its_own_points(window):
    """A round's points are a new objective: its L-BFGS step is the one a new L-BFGS takes
    from the same field on the same points, not one steered by the last round's curvature
    pairs."""
    import copy

    trial, network, objective = _collocating(window)
    settings = TrainSettings.from_config(trial.training, eval_splits=())
    phase = objective.phases(settings)[1]
    objective.enter(phase)
    optimisation = objective.optimisation(network, phase, settings)
    _round(objective)
    optimisation.step(lambda: objective.loss(network, None))
    assert objective._lbfgs.state  # the first round's curvature pairs
    _round(objective)
    alone = copy.deepcopy(network)
    fresh = torch.optim.LBFGS(alone.parameters(), **{
        k: v for k, v in objective._lbfgs.defaults.items()})  # fmt: skip

    def closure():
        fresh.zero_grad()
        loss = objective.loss(alone, None)
        loss.backward()
        return loss

    fresh.step(closure)
    optimisation.step(lambda: objective.loss(network, None))
    for a, b in zip(network.parameters(), alone.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
