"""The MLP family: network and count, shapes, candidates, its four learners, bad input."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hyperopt.pyll.stochastic import sample

from ionops.config import load_experiment
from ionops.datasets.generate import generate, spec_from_config
from ionops.errors import ConfigError, UserError
from ionops.models.families.mlp import FAMILY
from ionops.models.families.mlp_learners import (
    IterativeObjective,
    PointObjective,
    TrajectoryObjective,
    rollout,
)
from ionops.models.mlp import MLP
from ionops.models.mlp_arch import (
    SHAPES,
    MLPArchitecture,
    layouts,
    parameter_count,
    shape_of,
    spread_candidates,
)
from ionops.training import TrainSettings, load_checkpoint, train

SMALL = ["data.train=600", "data.validation=20", "data.test=5", "data.t_end_ms=10.0",
         "training.epochs=6", "training.eval_every=2", "training.batch_size=64",
         "model.widths=[16, 16]", 'model.activations=["tanh", "tanh"]']  # fmt: skip


@pytest.mark.parametrize(
    ("widths", "shape"),
    [((32,), "square"), ((16, 16, 16), "rectangle"), ((16, 32, 32), "funnel"),
     ((128, 64, 16), "bottleneck"), ((16, 64, 32), "diamond"), ((64, 16, 32), "bowtie"),
     ((16, 64, 16, 64), "irregular"), ((16, 32, 64, 32), "diamond")],
)  # fmt: skip
def test_shapes_follow_the_widths(widths, shape):
    assert shape_of(widths) == shape


@pytest.mark.parametrize(("n_in", "widths", "n_out"), [(1, (16,), 2), (4, (128, 64, 16), 2),
                                                        (3, (32, 32, 32, 8), 2)])  # fmt: skip
def test_parameter_count_is_the_built_networks(n_in, widths, n_out):
    arch = MLPArchitecture(n_in, widths, ("tanh",) * len(widths), n_out)
    assert MLP(arch).parameter_count() == parameter_count(n_in, widths, n_out)


def test_the_network_scales_inputs_and_outputs_and_can_update_a_state():
    torch.manual_seed(0)
    arch = MLPArchitecture(
        3,
        (8,),
        ("relu",),
        2,
        residual=True,
        in_low=(0.0, -1.0, 0.0),
        in_high=(10.0, 1.0, 2.0),
        out_mean=(0.5, 0.1),
        out_std=(2.0, 0.1),
    )
    model = MLP(arch)
    x = torch.tensor([[5.0, 0.0, 1.0]])  # the middle of every input range: z = 0
    raw = model.net(torch.zeros(1, 3))
    expected = raw * torch.tensor([2.0, 0.1]) + torch.tensor([0.5, 0.1]) + x[:, :2]
    torch.testing.assert_close(model(x), expected)


def test_candidates_spread_evenly_over_shape_and_size():
    found = layouts([1, 2, 3], [16, 32, 64, 128], SHAPES, max_neurons=256)
    chosen = spread_candidates(found, ["elu", "tanh", "relu"], 120, seed=0)
    assert len(chosen) == len(set(chosen)) == 120
    groups = {}
    for widths, _ in chosen:
        groups.setdefault((shape_of(widths), sum(widths)), []).append(widths)
    sizes = [len(v) for v in groups.values()]
    available = {(shape_of(w), sum(w)) for w in found}
    assert set(groups) == available, "every (shape, size) group is represented"
    assert max(sizes) - min(sizes) <= 3 * 3  # small groups run out; the rest are level
    assert spread_candidates(found, ["elu", "tanh", "relu"], 120, seed=0) == chosen
    assert spread_candidates(found, ["elu", "tanh", "relu"], 120, seed=1) != chosen
    assert len(spread_candidates(found[:2], ["elu"], 50, seed=0)) == 2  # no more than exist


def test_a_few_candidates_already_cover_every_shape_and_the_range_of_sizes():
    found = layouts([1, 2, 3], [16, 32, 64, 128], SHAPES, max_neurons=256)
    chosen = spread_candidates(found, ["elu", "tanh"], 12, seed=0)
    shapes = [shape_of(widths) for widths, _ in chosen]
    assert set(shapes[:6]) == {"square", "rectangle", "funnel", "bottleneck", "diamond", "bowtie"}
    for shape in set(shapes):
        sizes = [sum(w) for w, _ in chosen if shape_of(w) == shape]
        available = sorted({sum(w) for w in found if shape_of(w) == shape})
        assert min(sizes) == available[0] and (len(sizes) == 1 or max(sizes) == available[-1])


def test_the_default_candidate_protocol_has_800_candidates_of_every_shape():
    experiment = load_experiment("fhn-mlp-b", ['search.strategy="candidates"'])
    candidates = FAMILY.candidates(experiment)
    assert len(candidates) == 800 == len({(c["widths"], c["activations"]) for c in candidates})
    assert candidates[0] == {"widths": "64-64-64", "activations": "tanh-tanh-tanh"}
    shapes = {shape_of(tuple(int(w) for w in c["widths"].split("-"))) for c in candidates}
    assert shapes == {"square", "rectangle", "funnel", "bottleneck", "diamond", "bowtie"}


def _generated(factory, name: str, overrides: list[str]):
    """An experiment and its tiny dataset, generated into a fresh folder."""
    experiment = load_experiment(name, overrides)
    path = factory.mktemp(experiment.data.kind) / "data.h5"
    generate(spec_from_config(experiment.data), path, progress=False)
    return experiment, FAMILY.load_data(experiment, path)


@pytest.fixture(scope="module")
def point_data(tmp_path_factory):
    return _generated(tmp_path_factory, "fhn-mlp-b", SMALL)


@pytest.fixture(scope="module")
def transition_data(tmp_path_factory):
    return _generated(tmp_path_factory, "fhn-mlp-c", [*SMALL, 'model.learner="iterative"',
                                                      'data.kind="transition"'])  # fmt: skip


@pytest.fixture(scope="module")
def trajectory_data(tmp_path_factory):
    return _generated(tmp_path_factory, "fhn-mlp-c-trajectory",
                      [*SMALL, "training.epochs=40", "training.eval_every=40"])  # fmt: skip


def test_sampled_points_of_both_spaces_build_networks_inside_the_space(point_data):
    _experiment, data = point_data
    for space in ("unconstrained", "constrained"):
        chosen = load_experiment("fhn-mlp-b", [*SMALL, f'search.space="{space}"'])
        hyper = FAMILY.hyperopt_space(chosen)
        rng = np.random.default_rng(0)
        for _ in range(20):
            trial = FAMILY.configure(sample(hyper, rng=rng), chosen, data)
            record = trial.record
            assert record["neurons"] <= 256 and 1 <= record["depth"] <= 3
            assert FAMILY.parameter_count(trial.arguments) == record["parameter_count"]
            if space == "constrained":
                assert record["parameter_count"] <= 5000
            again = FAMILY.configure(record, chosen, data)  # a record is a point
            assert again.record == record and again.arguments == trial.arguments


def _train(experiment, data, checkpoint=None, **changes):
    trial = FAMILY.own_trial(experiment, data)
    torch.manual_seed(0)
    model = FAMILY.build(trial.arguments)
    objective = FAMILY.objective(data, trial, experiment)
    settings = TrainSettings.from_config(trial.training, **changes)
    return model, objective, train(model, objective, settings, family="mlp",
                                   arguments=trial.arguments, checkpoint=checkpoint)  # fmt: skip


def test_the_data_driven_learner_lowers_its_loss_and_reports_mae(point_data):
    experiment, data = point_data
    _, _, result = _train(experiment, data)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0]
    for key in ("validation/mae", "validation/mae/u", "validation/rmse/w", "test/rel_l2",
                "train/mae", "validation/eval_seconds"):  # fmt: skip
        assert math.isfinite(result.final[key]), key
    assert result.per_sample["validation"]["mae"].shape == (20, 2)


class _Exact(torch.nn.Module):
    """u = sin(t) + u0, w = t^2 w0 as a "network" of (t, u0, w0)."""

    def forward(self, x):
        t, u0, w0 = x[:, 0], x[:, 1], x[:, 2]
        return torch.stack([torch.sin(t) + u0, t * t * w0], dim=1)


def test_the_physics_residual_uses_time_derivatives_and_the_ionic_model(point_data):
    _, data = point_data
    physics = load_experiment(
        "fhn-mlp-b",
        [*SMALL, 'model.learner="physics"', "model.boundary_weight=0", "model.data_weight=0"],
    )
    trial = FAMILY.own_trial(physics, data)
    objective = PointObjective(data, torch.ones(2), trial.learning, seed=0)
    objective.field = lambda y, k, p: (torch.ones_like(y[0]), torch.zeros_like(y[1]))
    replay = torch.Generator()
    replay.set_state(objective.collocation.get_state())
    loss = objective.loss(_Exact(), torch.arange(4))
    unit = torch.rand(trial.learning["collocation"], 3, generator=replay)
    t = objective.low[0] + (objective.high[0] - objective.low[0]) * unit[:, 0]
    w0 = objective.low[2] + (objective.high[2] - objective.low[2]) * unit[:, 2]
    # du/dt = cos t against a field of 1; dw/dt = 2 t w0 against 0
    expected = ((torch.cos(t) - 1).pow(2) + (2 * t * w0).pow(2)).mean() / 2
    torch.testing.assert_close(loss, expected)


def test_the_physics_learner_trains_and_resumes_exactly(point_data, tmp_path):
    _experiment, data = point_data
    physics = load_experiment("fhn-mlp-b", [*SMALL, 'model.learner="physics"',
                                            "model.collocation=64"])  # fmt: skip
    straight, _, result = _train(physics, data)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    checkpoint = tmp_path / "checkpoint.pt"
    _train(physics, data, epochs=3, checkpoint=checkpoint)
    assert "collocation" in load_checkpoint(checkpoint)["objective"]
    resumed, _, _ = _train(physics, data, checkpoint=checkpoint)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


class _Euler(torch.nn.Module):
    """The exact Δt = 1 ms update of fhn_werneck (100 Euler steps of 0.01 ms)."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        from ionops.datasets.ionic import get_ionic_model

        field = get_ionic_model("fhn_werneck").vector_field
        u, w, k = x[:, 0].double(), x[:, 1].double(), x[:, 2].double()
        for _ in range(100):
            du, dw = field((u, w), k, self.p)
            u, w = u + 0.01 * du, w + 0.01 * dw
        return torch.stack([u, w], dim=1).float()


def test_an_exact_update_rule_rolls_out_the_solvers_trajectories(transition_data):
    experiment, data = transition_data
    from ionops.datasets.ionic import get_ionic_model

    stored = data.attributes["parameters"]  # by name (the file sorts them)
    p = [float(stored[name]) for name in get_ionic_model("fhn_werneck").parameters]
    trial = FAMILY.own_trial(experiment, data)
    objective = IterativeObjective(data, torch.tensor(trial.arguments["out_std"]), 0.5)
    errors = objective.evaluate(_Euler(p), "validation")
    assert float(errors["mae"].max()) < 1e-5 and float(errors["diverged"].sum()) == 0


def test_a_diverging_rollout_is_flagged_and_kept_finite(transition_data):
    _, data = transition_data
    split = data.splits["validation"]

    class _Blowup(torch.nn.Module):
        def forward(self, x):
            return x[:, :2] * 3.0

    bound = torch.tensor([2.0, 2.0])
    trajectory, diverged = rollout(_Blowup(), split, [2], 2, -bound, bound)
    moving = split.inputs[:, :2].abs().amax(dim=1) > 0.01
    assert diverged[moving].all() and torch.isfinite(trajectory).all()
    assert float(trajectory.abs().max()) <= 2.0


def test_the_iterative_learner_trains_on_transitions(transition_data):
    experiment, data = transition_data
    _, _, result = _train(experiment, data)
    assert math.isfinite(result.final["validation/mae"])
    assert "validation/diverged" in result.final
    trial = FAMILY.own_trial(experiment, data)
    assert trial.arguments["residual"] and trial.arguments["n_in"] == 3  # u, w and k


def test_the_trajectory_learner_gives_every_state_at_every_time_in_one_pass(trajectory_data):
    experiment, data = trajectory_data
    trial = FAMILY.own_trial(experiment, data)
    n_t = data.splits["validation"].time.size  # 11 points over 10 ms
    assert (trial.arguments["n_in"], trial.arguments["n_out"]) == (3, 2 * n_t)
    assert trial.record["parameter_count"] == parameter_count(3, (16, 16), 2 * n_t)
    model, objective, result = _train(experiment, data)
    validation = data.splits["validation"]
    # better than the best constant answer, the training trajectories' mean
    mean = data.splits["train"].states.mean(dim=0)
    constant = float((validation.states - mean).abs().mean())
    assert result.final["validation/mae"] < 0.5 * constant
    assert objective.predict(model, validation).shape == validation.states.shape


class _Shifted(torch.nn.Module):
    """The training trajectories of the inputs given, each output moved by ``shift`` spreads."""

    def __init__(self, inputs, outputs, std, shift):
        super().__init__()
        self.inputs, self.outputs, self.std, self.shift = inputs, outputs, std, shift

    def forward(self, x):
        nearest = torch.cdist(x, self.inputs).argmin(dim=1)
        return self.outputs[nearest] + self.shift * self.std


@pytest.mark.parametrize(("loss", "expected"), [("mse", 4.0), ("l1", 2.0)])
def test_the_loss_squares_or_takes_the_absolute_scaled_error(trajectory_data, loss, expected):
    _, data = trajectory_data
    trial = FAMILY.own_trial(load_experiment("fhn-mlp-c-trajectory", SMALL), data)
    std = torch.tensor(trial.arguments["out_std"], dtype=torch.float32)
    objective = TrajectoryObjective(data, std, loss)
    shift = torch.where(torch.arange(len(std)) % 2 == 0, 2.0, -2.0)  # both signs
    model = _Shifted(objective.x, objective.y, std, shift)
    assert float(objective.loss(model, torch.arange(10))) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (['model.family="rnn"'], ["model.family = 'rnn': unknown; known: 'fno', 'gating', 'mlp'"]),
        (["model.d_v=64"], ["unknown key 'model.d_v'", "(family mlp)", "widths (required)"]),
        (["model.widths=[]"], ["model.widths = []", "at least 1 item"]),
        (["model.widths=[16, 16]"], ["activations has 3 entries for the 2 layers"]),
        (["search.unconstrained.shapes=['hexagon']"], ["search.unconstrained.shapes = 'hexagon'",
                                                       "'square', 'rectangle'"]),
        (["search.unconstrained.depth=[]"], ["search.unconstrained.depth = []"]),
        (["search.unconstrained.activations=[]"], ["search.unconstrained.activations = []"]),
        (["search.unconstrained.shapes=['diamond']", "search.unconstrained.depth=[2]"],
         ["search.unconstrained holds no network: none of depth [2]"]),
        (['search.space="constrained"', 'search.parameter_cap="budget"'],
         ["'budget' is the FNO's spectral budget"]),
        (['search.space="constrained"', "search.parameter_cap=10"],
         ["search.constrained holds no network", "at most 10 parameters"]),
        (['model.learner="iterative"'], ["trains on transition datasets", "data.kind = 'point'"]),
        (['model.learner="trajectory"'], ["trains on trajectory datasets",
                                          "set data.kind = 'trajectory'"]),
        (['model.loss="huber"'], ["model.loss = 'huber'", "'mse' or 'l1'"]),
        (['training.normalisation="per_time"'], ["'per_time' is for operator datasets"]),
        (["search.unconstrained.d_v=[8]"], ["unknown key 'search.unconstrained.d_v'",
                                            "(family mlp)"]),
        (["data.n_t=64"], ["unknown key 'data.n_t'", "(kind point/transition/trajectory)"]),
        (["data.fixed={}"], ["data: the problem leaves k unset", "data.vary.k = [0.0, 1.0]"]),
        (["data.vary.v0=[0.0, 1.0]"], ["data.vary names v0, not inputs of fhn_werneck"]),
    ],
)  # fmt: skip
def test_bad_mlp_experiments_name_the_key_the_value_and_what_is_allowed(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        load_experiment("fhn-mlp-b", overrides)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_a_trajectory_learner_with_nothing_varied_is_refused():
    with pytest.raises(ConfigError, match=r"\[data.vary\] is empty"):
        load_experiment("fhn-mlp-a", ['model.learner="trajectory"', 'data.kind="trajectory"'])


def test_a_default_outside_its_space_is_explained():
    experiment = load_experiment("fhn-mlp-b", ["search.unconstrained.max_neurons=100"])
    with pytest.raises(UserError, match=r"model.widths = \[64, 64, 64\] is not a network of"):
        FAMILY.default_point(experiment)


def test_an_fno_section_under_an_mlp_family_points_to_its_own_keys(tmp_path):
    path = tmp_path / "mixed.toml"
    text = (Path(__file__).parents[1] / "configs" / "fhn-mlp-b.toml").read_text()
    path.write_text(text + "\n[fno]\nd_v = 64\n")
    with pytest.raises(ConfigError, match=r"unknown key 'fno': its keys now go in \[model\]"):
        load_experiment(path)


def test_the_pareto_baseline_is_the_benchmarks_euler_timed_alike(trajectory_data):
    """The report's Euler reference runs the benchmark's kernel on the same cores: its time for
    100,000 trajectories is that kernel's (the generic Euler it timed before was about 15x
    slower), and its trajectories are the generic Euler's (an independent implementation)."""
    import time

    from ionops.datasets.euler import euler
    from ionops.datasets.ionic import get_ionic_model
    from ionops.models.families.mlp_baseline import PER, euler_baseline, fhn_werneck_kernel

    _, data = trajectory_data
    part = data.splits["validation"]
    baseline = euler_baseline(data)
    assert "the benchmark's compiled kernel" in baseline.what
    model = get_ionic_model("fhn_werneck")
    p = model.parameter_vector(data.attributes["parameters"])
    every = round(float(data.attributes["eval_dt_ms"]) / 0.1)
    rows = part.inputs.double().numpy()
    steps = np.tile(np.arange(part.time.size) * every, (len(rows), 1))
    generic = euler(model, p, rows[:, :2], rows[:, 2], 0.1, steps).transpose(0, 2, 1)
    assert baseline.error == pytest.approx(np.abs(generic - part.states.double().numpy()).mean(),
                                           rel=1e-6)  # fmt: skip
    kernel, many = fhn_werneck_kernel(), np.resize(rows, (PER, 3))
    out = np.empty((PER, 2, part.time.size))
    args = [np.ascontiguousarray(many[:, j]) for j in range(3)]
    began = time.perf_counter()
    kernel(*args, p, 0.1, (part.time.size - 1) * every, every, out)
    alone = time.perf_counter() - began
    assert baseline.seconds < 3 * alone, (baseline.seconds, alone)
