"""The gating network's building blocks (paper 004): the GNN layer is a Rush-Larsen step, its
ODE form inverts the rate, the first-pass loss is next-step supervision, a free-running
rollout feeds itself, and APD90 of a trace of known shape."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ionops.models.gating_rnn import GatingLayer, GatingNetwork, Scaling, apd


def test_the_gating_layer_steps_a_gate_exactly_as_its_ode_over_the_step():
    torch.manual_seed(0)
    layer = GatingLayer(4, 3).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    h = torch.rand(5, 3, dtype=torch.float64)
    dt = 0.7
    steady, tau = layer.time_constants(x, dt)
    # h' = (h_inf - h) / tau with h_inf and tau held over dt: h_inf + (h - h_inf) e^(-dt/tau)
    exact = steady + (h - steady) * torch.exp(-dt / tau)
    assert torch.allclose(layer(x, h), exact, rtol=1e-12, atol=1e-14)
    assert (tau > 0).all() and ((steady > 0) & (steady < 1)).all()


def test_scaling_maps_ranges_onto_zero_one_and_back():
    values = np.stack([np.linspace(-90, 40, 50), np.linspace(1e-4, 1e-3, 50)])[None]
    scaling = Scaling.of(values, margin=0.0)
    scaled = scaling.forward(torch.tensor(values[0].T))
    assert float(scaled.min()) == 0.0 and float(scaled.max()) == 1.0
    assert torch.allclose(scaling.inverse(scaled), torch.tensor(values[0].T))


def test_a_gate_is_scaled_over_its_whole_range_not_the_datas():
    # a slow gate that the data never takes past 0.19 still has steady states up to 1
    values = np.stack([np.linspace(-90, 40, 50), np.linspace(0.0, 0.19, 50)])[None]
    scaling = Scaling.of(values, gates=[1])
    assert scaling.low[1] == 0.0 and scaling.high[1] == 1.0
    assert scaling.low[0] < -90 and scaling.high[0] > 40  # the others by their data, widened
    layer = GatingLayer(1, 1)
    with torch.no_grad():
        layer.steady.bias.fill_(3.0)
    steady, _ = layer.parts(torch.zeros(1, 1))
    gate = scaling.inverse(torch.cat([torch.zeros(1, 1), steady], dim=1))[0, 1]
    assert float(gate) > 0.9


def test_the_first_pass_loss_is_zero_only_for_the_exact_next_step():
    torch.manual_seed(1)
    network = GatingNetwork(5, gates=[1, 2], observables=[0]).double()
    states = torch.rand(2, 6, 5, dtype=torch.float64)
    current = torch.zeros(2, 6, dtype=torch.float64)
    gates, others = network.teacher_forced(states[:, :-1], current[:, :-1])
    assert gates.shape == (2, 5, 2) and others.shape == (2, 5, 3)
    consistent = states.clone()
    consistent[:, 1:, [1, 2]] = gates.detach()
    consistent[:, 1:, [0, 3, 4]] = others.detach()
    # the gates of step i+1 feed step i+1's prediction, so rebuild them one step at a time
    for k in range(1, 6):
        g, o = network.teacher_forced(consistent[:, :k], current[:, :k])
        consistent[:, k, [1, 2]] = g[:, -1].detach()
        consistent[:, k, [0, 3, 4]] = o[:, -1].detach()
    assert float(network.first_pass_loss(consistent, current, 0.0).detach()) < 1e-24
    assert float(network.first_pass_loss(states, current, 0.0).detach()) > 1e-3
    # each state's error is counted in units of its scale: a scale of 2 everywhere quarters it
    plain = network.first_pass_loss(states, current, 0.0)
    halved = network.first_pass_loss(states, current, 0.0, torch.full((5,), 2.0).double())
    assert torch.allclose(halved, plain / 4)
    only_gates = torch.tensor([1.0, 2.0, 2.0, 1.0, 1.0]).double()
    assert plain > network.first_pass_loss(states, current, 0.0, only_gates) > halved


def test_teacher_forcing_trains_the_gates_on_their_own_targets_alone():
    torch.manual_seed(4)
    network = GatingNetwork(5, gates=[1, 2], observables=[0, 3]).double()
    states = torch.rand(2, 6, 5, dtype=torch.float64)
    gates, others = network.teacher_forced(states, torch.zeros(2, 6, dtype=torch.float64))
    others.pow(2).sum().backward(retain_graph=True)  # N2's errors alone
    assert all(p.grad is None or not p.grad.any() for p in network.gating.parameters())
    assert all(p.grad is None or not p.grad.any() for p in network.phi1.parameters())
    assert network.phi2[0].weight.grad is not None and network.phi2[0].weight.grad.any()
    gates.pow(2).sum().backward()  # the gates' own errors train them
    assert network.gating.rate.weight.grad is not None and network.gating.rate.weight.grad.any()


def test_a_free_run_is_the_teacher_forced_network_fed_its_own_output():
    torch.manual_seed(2)
    network = GatingNetwork(5, gates=[1, 2], observables=[0, 3]).double()
    start = torch.rand(3, 5, dtype=torch.float64)
    current = torch.rand(3, 8, dtype=torch.float64)
    run = network.free_run(start, current)
    assert run.shape == (3, 8, 5) and torch.equal(run[:, 0], start)
    gates, others = network.teacher_forced(run[:, :-1], current[:, :-1])
    assert torch.allclose(gates, run[:, 1:, [1, 2]], atol=1e-12)
    assert torch.allclose(others, run[:, 1:, [0, 3, 4]], atol=1e-12)


def test_a_midpoint_free_run_steps_at_the_midpoint_of_its_start_and_a_first_estimate():
    torch.manual_seed(3)
    midpoint = GatingNetwork(5, gates=[1, 2], observables=[0, 3], midpoint=True).double()
    start_clock = GatingNetwork(5, gates=[1, 2], observables=[0, 3]).double()
    start_clock.load_state_dict(midpoint.state_dict())
    start = torch.rand(3, 5, dtype=torch.float64)
    current = torch.rand(3, 2, dtype=torch.float64)
    estimate = start_clock.free_run(start, current)[:, 1]  # the step with the start's inputs
    run = midpoint.free_run(start, current)
    gates, others = midpoint.teacher_forced(start[:, None], current[:, :1], estimate[:, None])
    assert torch.allclose(gates[:, 0], run[:, 1, [1, 2]], atol=1e-12)
    assert torch.allclose(others[:, 0], run[:, 1, [0, 3, 4]], atol=1e-12)
    assert not torch.allclose(run[:, 1], estimate)  # the clock matters
    with pytest.raises(ValueError, match="needs the state after the step"):
        midpoint.gates_after(start)


def test_apd90_of_an_exponential_repolarisation():
    time = np.arange(0.0, 2000.0, 0.5)
    onsets = [10.0, 1010.0]
    v = np.full_like(time, -85.0)
    for onset in onsets:  # up to +35 mV at the onset, then an exponential decay (tau 100 ms)
        after = (time >= onset) & (time < onset + 1000.0)
        v[after] = -85.0 + 120.0 * np.exp(-(time[after] - onset) / 100.0)
    durations = apd(time, v, onsets)
    # V falls below -85 + 0.1 * 120 at t = 100 ln 10 ms after the onset (on a 0.5 ms grid)
    assert durations == pytest.approx([100.0 * math.log(10.0)] * 2, abs=0.5)
    flat = np.full_like(time, -85.0)
    flat[time > 500.0] = -90.0  # no upstroke: the peak is the onset, never 90 % repolarised
    assert np.isnan(apd(time, flat, [600.0])[0])


def test_the_apd90_error_skips_beats_the_run_cuts_and_fails_a_beat_that_never_repolarises():
    from ionops.models.families.gating_runs import run_errors

    time = np.arange(0.0, 2100.0, 1.0)  # three upstrokes; the run ends 100 ms into the third

    def trace(tau: float, stuck: bool = False) -> np.ndarray:
        v = np.full_like(time, -85.0)
        for k, onset in enumerate((10.0, 1010.0, 2010.0)):
            after = (time >= onset) & (time < onset + 1000.0)
            level = 0.0 if stuck and k == 1 else -85.0
            v[after] = level + (35.0 - level) * np.exp(-(time[after] - onset) / tau)
        return v[None]

    truth = trace(100.0)
    assert run_errors(time, truth, truth)["apd90_error"] == 0.0
    longer = run_errors(time, truth, trace(110.0))["apd90_error"]
    assert longer == pytest.approx(10.0 * math.log(10.0), abs=1.5)  # both whole beats count
    assert math.isnan(run_errors(time, truth, trace(100.0, stuck=True))["apd90_error"])


@pytest.mark.parametrize("inputs", [1, 2])
def test_every_phi1_unit_starts_alive_with_its_kink_inside_the_scaled_inputs(inputs):
    torch.manual_seed(2)
    network = GatingNetwork(6, gates=[2, 3], observables=list(range(inputs)), width=30)
    grid = torch.rand(20_000, inputs)  # the scaled inputs' box [0, 1]^d
    first = network.phi1[0](grid)
    # each unit is zero on part of the box and positive on the rest: none dead, none linear
    assert ((first > 0).any(dim=0) & (first < 0).any(dim=0)).all()
    _, rho = network.gating.parts(network.phi1(grid))
    assert torch.allclose(rho.mean(), torch.tensor(0.95), atol=0.02)  # every gate starts slow
