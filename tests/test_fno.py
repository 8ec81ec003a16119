"""The FNO: the paper's parameter counts, layers against numpy, resolution, gradients, caps."""

import numpy as np
import pytest
import torch

from ionops.errors import UserError
from ionops.models import (
    FNO,
    FNOArchitecture,
    budget_k_max,
    build_surrogate,
    parameter_count,
    total_cap_k_max,
)
from ionops.models.fno import validate
from ionops.models.fno_arch import PAPER_CONFIGURATIONS
from ionops.models.layers import (
    ACTIVATIONS,
    FourierLayer,
    Pointwise,
    PointwiseMLP,
    SpectralConv1d,
    activate_in_place,
    activation,
    by_dft,
)

# DESIGN.md: the paper's tuned configurations and their parameter counts.
PAPER = [(name, arch, count) for name, (arch, count, _) in PAPER_CONFIGURATIONS.items()]


@pytest.mark.parametrize(("name", "arch", "expected"), PAPER, ids=[p[0] for p in PAPER])
def test_reproduces_the_papers_parameter_counts(name, arch, expected):
    assert parameter_count(arch) == expected
    assert FNO(arch).parameter_count() == expected


@pytest.mark.parametrize(("d_v", "n_layers", "k_max"), [(64, 5, 12), (96, 5, 5), (32, 5, 48)])
def test_budget_rule_gives_the_papers_constrained_k_max(d_v, n_layers, k_max):
    assert budget_k_max(d_v, n_layers, k_max_cap=48) == k_max
    assert budget_k_max(64, 4, k_max_cap=48) == 16  # the default configuration itself


def test_total_cap_picks_the_largest_k_max_that_fits():
    arch = FNOArchitecture(64, 5, 1, "gelu", 5, "mlp", 2)
    assert total_cap_k_max(arch, cap=571_138, k_max_cap=48) == 12
    assert total_cap_k_max(arch, cap=571_137, k_max_cap=48) == 11
    with pytest.raises(UserError, match=r"parameter cap 1,000 is below the .* parameters"):
        total_cap_k_max(arch, cap=1_000, k_max_cap=48)


def _numpy_fourier_layer(layer, v, kind, last):
    """The layer's formula written directly in numpy (float64)."""
    w_ft = layer.spectral.weight.detach().double().numpy()
    weight = w_ft[..., 0] + 1j * w_ft[..., 1]  # (k, c_in, c_out)
    k_max, n = weight.shape[0], v.shape[-1]
    modes = np.fft.rfft(v, axis=-1)[..., :k_max]  # (b, c, k)
    mixed = np.einsum("bik,kio->bok", modes, weight)
    full = np.zeros((v.shape[0], weight.shape[2], n // 2 + 1), dtype=complex)
    full[..., :k_max] = mixed
    kv = np.fft.irfft(full, n=n, axis=-1)

    def linear(module, x):
        w, b = module.weight.detach().double().numpy(), module.bias.detach().double().numpy()
        return np.einsum("oc,bcn->bon", w, x) + b[None, :, None]

    def gelu(x):
        from scipy.special import erf

        return 0.5 * x * (1 + erf(x / np.sqrt(2)))

    if kind == "mlp":
        kv = linear(layer.mlp[2], gelu(linear(layer.mlp[0], kv)))
    out = linear(layer.linear, v) + kv
    return out if last else gelu(out)


@pytest.mark.parametrize(("kind", "last"), [("classic", False), ("mlp", False), ("mlp", True)])
@pytest.mark.parametrize("n", [10, 22])  # FFT; truncated DFT (prime factor 11)
@pytest.mark.parametrize("grad", [True, False])  # training; predicting (Classic: fused)
def test_fourier_layer_computes_exactly_its_formula(kind, last, n, grad):
    torch.manual_seed(0)
    layer = FourierLayer(d_v=3, k_max=3, kind=kind, act="gelu", last=last).double()
    v = torch.randn(2, 3, n, dtype=torch.float64)
    expected = _numpy_fourier_layer(layer, v.numpy(), kind, last)
    with torch.set_grad_enabled(grad):
        out = layer(v)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layer", ["classic", "mlp"])
def test_predicting_gives_the_training_paths_output(layer):
    # without gradients the lifting is shared by the points at each column's common stimulus
    # and Classic layers are fused: the same outputs to rounding, pulses or not
    torch.manual_seed(6)
    model = FNO(FNOArchitecture(8, 3, 6, "gelu", 5, layer, 3)).eval()
    amplitude = torch.tensor([[3.0], [0.0], [1.5], [3.0], [2.0], [0.5]])
    pulses = (torch.arange(101.0) <= torch.tensor([[2.0], [0], [40], [2], [100], [5]])) * amplitude
    for stimulus in (pulses - 0.3, torch.randn(6, 101), pulses[:3]):
        with torch.enable_grad():
            expected = model(stimulus).detach()
        with torch.no_grad():
            torch.testing.assert_close(model(stimulus), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer", ["classic", "mlp"])
@pytest.mark.parametrize("n_t", [16, 18])  # 21 points by FFT; 23 by DFT, carried on 24
def test_padding_is_appended_on_the_right_and_cropped_before_projection(n_t, layer):
    torch.manual_seed(1)
    model = FNO(FNOArchitecture(4, 2, 3, "tanh", 5, layer, 2)).double()
    stimulus = torch.randn(3, n_t, dtype=torch.float64)
    grid = torch.linspace(0, 1, n_t, dtype=torch.float64).expand(3, n_t)
    v = model.lift(torch.stack((stimulus, grid), dim=1))
    v = torch.nn.functional.pad(v, (0, 5))
    for fourier in model.layers:
        v = fourier(v)  # exactly n_t + 5 points wide
    expected = model.project(v[..., :n_t])
    torch.testing.assert_close(model(stimulus), expected)
    assert model(stimulus).shape == (3, 2, n_t)
    # the points past the transform's length that the DFT path carries change no gradient
    weights = list(model.parameters())
    want = torch.autograd.grad(expected.square().sum(), weights)
    got = torch.autograd.grad(model(stimulus).square().sum(), weights)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)


def test_output_is_close_at_twice_the_resolution():
    torch.manual_seed(2)
    model = FNO(FNOArchitecture(8, 2, 4, "gelu", 0, "mlp", 3)).double()
    coarse_t = torch.linspace(0, 1, 64, dtype=torch.float64)
    fine_t = torch.linspace(0, 1, 127, dtype=torch.float64)
    signal = lambda t: torch.sin(2 * torch.pi * t) + 0.5 * torch.cos(4 * torch.pi * t)  # noqa: E731
    coarse = model(signal(coarse_t)[None])
    fine = model(signal(fine_t)[None])[..., ::2]
    relative = (fine - coarse).norm() / coarse.norm()
    assert relative < 0.05


def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    model = FNO(FNOArchitecture(6, 3, 4, "leaky_relu", 2, "mlp", 2))
    loss = model(torch.randn(4, 20)).pow(2).mean()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("changes", "n_t", "message"),
    [
        ({"k_max": 12}, 16, r"k_max = 12: allowed 1..11 for n_t = 16 with n_pad = 4"),
        ({"d_v": 0}, 16, r"d_v = 0: must be >= 1"),
        ({"activation": "swish"}, 16, r"activation = 'swish'; choose one of tanh, relu, gelu"),
        ({"layer": "transformer"}, 16, r"layer = 'transformer'; choose one of classic, mlp"),
    ],
)
def test_bad_configurations_are_errors_not_clipped(changes, n_t, message):
    values = {"d_v": 4, "n_layers": 2, "k_max": 3, "activation": "gelu", "n_pad": 4,
              "layer": "mlp", "n_states": 2} | changes  # fmt: skip
    with pytest.raises(UserError, match=message):
        validate(FNOArchitecture(**values), n_t)


def test_too_many_modes_for_the_input_grid_is_refused_at_the_first_call():
    model = FNO(FNOArchitecture(4, 1, 9, "gelu", 0, "classic", 1))
    with pytest.raises(UserError, match=r"k_max = 9: allowed 1\.\.5 for n_t = 8"):
        model(torch.zeros(1, 8))


def test_registry_builds_by_name_and_lists_the_known_families():
    model = build_surrogate("fno", PAPER[0][1].as_dict())
    assert model.parameter_count() == 571_138
    with pytest.raises(UserError, match="unknown surrogate family 'deeponet'; known: fno"):
        build_surrogate("deeponet", {})


@pytest.mark.parametrize(("n", "k_max"), [(1265, 12), (23, 12), (22, 12), (37, 19)])
def test_truncated_dft_path_equals_the_fft(n, k_max):
    # the CPU path for awkward lengths must be the same transform as rfft / irfft
    torch.manual_seed(4)
    conv = SpectralConv1d(5, k_max).double()
    x = torch.randn(3, 5, n, dtype=torch.float64, requires_grad=True)
    by_dft = conv._by_dft(x)
    modes = torch.fft.rfft(x, dim=-1)[..., :k_max]
    weight = torch.view_as_complex(conv.weight)
    mixed = torch.matmul(modes.permute(2, 0, 1), weight).permute(1, 2, 0)
    by_fft = torch.fft.irfft(mixed, n=n, dim=-1)
    torch.testing.assert_close(by_dft, by_fft, rtol=1e-9, atol=1e-12)
    grad_dft = torch.autograd.grad(by_dft.sum(), x)[0]
    grad_fft = torch.autograd.grad(by_fft.sum(), x)[0]
    torch.testing.assert_close(grad_dft, grad_fft, rtol=1e-9, atol=1e-12)


def test_mixed_precision_keeps_the_spectral_part_in_float32():
    torch.manual_seed(5)
    model = FNO(FNOArchitecture(8, 2, 6, "gelu", 4, "mlp", 2))
    stimulus = torch.randn(3, 64)
    reference = model(stimulus)
    seen = []
    model.layers[0].spectral.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(stimulus)
    assert seen == [torch.float32]
    torch.testing.assert_close(mixed.float(), reference, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("layer", ["classic", "mlp"])
@pytest.mark.parametrize("n_t", [60, 64])  # 64 points and 4 of padding: by FFT; 68 = 4 x 17: by DFT
def test_a_network_held_in_bfloat16_computes_in_it_near_float32(layer, n_t):
    torch.manual_seed(6)
    model = FNO(FNOArchitecture(8, 2, 6, "gelu", 4, layer, 2))
    stimulus = torch.randn(5, n_t)
    with torch.no_grad():
        reference = model(stimulus)
    seen = []
    model.layers[0].spectral.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    with torch.no_grad():  # a float32 stimulus, cast by the network
        low = model.to(torch.bfloat16)(stimulus)
    assert by_dft(n_t + 4, torch.device("cpu")) == (n_t == 64)
    assert seen == [torch.bfloat16] and low.dtype == torch.bfloat16
    spread = float(reference.abs().max())
    torch.testing.assert_close(low.float(), reference, rtol=0.03, atol=0.03 * spread)


def test_a_pointwise_mlp_in_bfloat16_maps_rows_as_channels_first():
    torch.manual_seed(7)
    mlp = PointwiseMLP(6, 16, 3, "gelu")
    x = torch.randn(4, 6, 50)
    with torch.no_grad():
        reference = mlp(x)
        low = mlp.to(torch.bfloat16)(x.bfloat16())
    assert low.shape == reference.shape == (4, 3, 50)
    torch.testing.assert_close(low.float(), reference, rtol=0.03, atol=0.03)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_an_activation_in_place_is_the_activation(name):
    x = torch.randn(2, 3, 50)
    fresh = x.clone()
    assert activate_in_place(activation(name), fresh) is fresh  # no new tensor
    torch.testing.assert_close(fresh, activation(name)(x), rtol=0, atol=0)


def test_pointwise_maps_and_their_mlps_have_the_right_gradients():
    # batched products forward and backward, the MLP's activation recomputed in backward
    torch.manual_seed(7)
    for built, c_in in ((Pointwise(12, 5), 12), (Pointwise(2, 5), 2),
                        (PointwiseMLP(12, 16, 3, "gelu"), 12)):  # fmt: skip
        module = built.double()
        names = [name for name, _ in module.named_parameters()]
        x = torch.randn(3, c_in, 9, dtype=torch.float64, requires_grad=True)

        def f(x, *params, module=module, names=names):
            return torch.func.functional_call(module, dict(zip(names, params, strict=True)), (x,))

        assert torch.autograd.gradcheck(f, (x, *module.parameters()))
