"""The neural-ODE family (paper 002): its compiled Heun training kernels, spike metrics, family."""

import numpy as np
import pytest
import torch

from ionops.models.node import VectorField, heun, heun_rollout

SCALING = {"in_mean": np.array([-60.0, 0.3, 0.1, 0.5]), "in_std": np.array([20, 0.1, 0.2, 0.15]),
           "t_mean": 7.0, "t_std": 4.0, "out_mean": np.array([1.0, 0.0, -0.1, 0.0]),
           "out_std": np.array([30.0, 0.1, 1.0, 0.1])}  # fmt: skip


@pytest.mark.parametrize(("layer_norm", "output"),
                         [(True, "linear"), (False, "linear"), (True, "sinh")])  # fmt: skip
def test_the_compiled_heun_loss_and_gradient_are_autograds_through_torch_heun(layer_norm, output):
    torch.manual_seed(0)
    field = VectorField(4, [16, 12, 16], layer_norm, SCALING, output=output).double()
    if output == "sinh":  # raw outputs of a few units, where sinh is far from linear
        with torch.no_grad():
            field.hidden.net[-1].weight.mul_(8.0)
    z0, time = np.array([-65.0, 0.31, 0.05, 0.6]), np.arange(150) * 0.01
    targets = np.random.default_rng(0).normal(size=(4, 150)) + z0[:, None]
    scale = np.array([20.0, 0.1, 0.2, 0.15])
    loss, trajectory = heun_rollout(field, z0, time, targets, scale)
    loss.backward()
    compiled = [p.grad.clone() for p in field.parameters()]
    field.zero_grad()
    reference = heun(field, torch.tensor(z0), torch.tensor(time))
    want = (((reference - torch.tensor(targets)) / torch.tensor(scale)[:, None]) ** 2).sum(0).mean()
    want.backward()
    assert loss.item() == pytest.approx(want.item(), rel=1e-12)
    assert torch.allclose(trajectory, reference.detach(), rtol=1e-12, atol=1e-12)
    for got, p in zip(compiled, field.parameters(), strict=True):
        assert torch.allclose(got, p.grad, rtol=1e-9, atol=1e-12 * float(p.grad.abs().max()))


@pytest.mark.parametrize("layer_norm", [True, False])
def test_the_pinns_forward_mode_rate_is_autograds_and_so_is_its_gradient(layer_norm):
    from ionops.models.node import TimeNetwork

    torch.manual_seed(0)
    network = TimeNetwork(4, [16, 12], layer_norm, SCALING).double()
    time = torch.linspace(0.0, 14.0, 300, dtype=torch.float64)
    states, rate = network.with_rate(time)
    leaf = time.clone().requires_grad_(True)
    want_states = network(leaf)
    columns = [torch.autograd.grad(want_states[:, j].sum(), leaf, create_graph=True)[0]
               for j in range(4)]  # fmt: skip
    want_rate = torch.stack(columns, dim=1)
    assert torch.allclose(states, want_states, rtol=1e-13, atol=0)
    assert torch.allclose(rate, want_rate, rtol=1e-10, atol=1e-12 * float(want_rate.abs().max()))
    weights = torch.arange(1.0, 5.0, dtype=torch.float64)
    ((rate * weights).pow(2).sum() + states.pow(2).sum()).backward()
    ours = [p.grad.clone() for p in network.parameters()]
    network.zero_grad()
    ((want_rate * weights).pow(2).sum() + want_states.pow(2).sum()).backward()
    for got, p in zip(ours, network.parameters(), strict=True):
        assert torch.allclose(got, p.grad, rtol=1e-9, atol=1e-12 * float(p.grad.abs().max()))


def test_the_kernels_tanh_is_libms_to_a_few_ulp_and_keeps_nan():
    from ionops.models.node_network import _tanh

    edges = [0.0, -0.0, 1e-300, -1e-12, 19.06, 19.1, -40.0, np.inf, -np.inf]
    x = np.concatenate([np.linspace(-25.0, 25.0, 200_001), edges])
    ours = np.array([_tanh(v) for v in x])
    want = np.tanh(x)
    assert np.all(np.abs(ours - want) <= 4 * np.spacing(np.abs(want)) + 1e-320)
    assert np.array_equal(np.signbit(ours), np.signbit(want))  # -0.0 too
    assert np.isnan(_tanh(np.nan))


def spike_train(time, times, height=40.0, width=0.3, rest=-65.0):
    """Gaussian bumps of ``height`` above ``rest`` at ``times``: a V(t) with known peaks."""
    v = np.full_like(time, rest)
    for t0 in times:
        v += (height - rest) * np.exp(-0.5 * ((time - t0) / width) ** 2)
    return v


def test_spike_metrics_of_a_shifted_forecast_are_the_shift_and_of_no_spikes_undefined():
    from ionops.models.spikes import peaks, score

    time = np.arange(0, 100, 0.01)
    true_times = np.array([10.0, 24.6, 39.2, 53.8, 68.4, 83.0])
    truth = spike_train(time, true_times)
    found, heights = peaks(time, truth, 0.0)
    assert np.allclose(found, true_times, atol=1e-3) and np.allclose(heights, 40.0, atol=1e-3)
    # every spike 0.2 ms late, one extra spike far away, the last one missing
    shifted = spike_train(time, [*(true_times[:-1] + 0.2), 95.0], height=38.0)
    got = score(time, truth, shifted, threshold=0.0, window=2.0)
    assert got.values["precision"] == pytest.approx(5 / 6)
    assert got.values["recall"] == pytest.approx(5 / 6)
    assert got.values["f1"] == pytest.approx(5 / 6)
    assert got.values["phase_drift"] == pytest.approx(0.2, abs=2e-3)
    assert got.values["isi_error"] == pytest.approx(0.0, abs=2e-3)
    assert got.values["amplitude_deviation"] == pytest.approx(2.0, abs=1e-2)
    assert got.values["amplitude_error"] == pytest.approx(2.0 / 105.0, rel=1e-2)
    assert not got.undefined
    flat = score(time, truth, np.full_like(time, -64.0), threshold=0.0, window=2.0)
    assert flat.values["f1"] == 0.0 and flat.values["recall"] == 0.0
    for name in ("precision", "phase_drift", "isi_error", "amplitude_deviation"):
        assert np.isnan(flat.values[name]) and flat.undefined[name] == "no spike predicted"
    diverged = score(time, truth, np.full_like(time, np.nan), threshold=0.0, window=2.0)
    assert diverged.undefined["amplitude_error"] == "the forecast is not finite"
