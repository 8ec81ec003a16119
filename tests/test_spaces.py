"""Search spaces: the paper's winners are reachable, the constrained rule, the default first."""

import numpy as np
import pytest
from hyperopt.pyll.stochastic import sample

from ionops.config import load_experiment
from ionops.errors import UserError
from ionops.models.families.fno import check_space, configure, default_point, hyperopt_space

# DESIGN.md: the paper's tuned configurations (eta, omega, gamma, d_v, L, k_max, act, n_pad,
# layer) and their parameter counts.
WINNERS = [
    (
        "fhn",
        "unconstrained",
        (6.2e-4, 9.7e-4, 0.85, 224, 4, 20, "leaky_relu", 15, "mlp"),
        8_691_298,
    ),
    (
        "hh",
        "unconstrained",
        (4.4e-4, 7.5e-4, 0.88, 256, 4, 24, "leaky_relu", 15, "mlp"),
        13_439_236,
    ),
    ("ord", "unconstrained", (8.3e-4, 1e-3, 0.93, 192, 5, 32, "gelu", 14, "mlp"), 12_407_465),
    ("fhn", "constrained", (1.7e-3, 4.8e-4, 0.93, 64, 5, 12, "gelu", 5, "mlp"), 571_138),
    ("hh", "constrained", (7.6e-3, 5.1e-4, 0.92, 96, 5, 5, "gelu", 7, "mlp"), 626_180),
    ("ord", "constrained", (4.2e-3, 4.9e-4, 0.93, 32, 5, 48, "gelu", 15, "classic"), 510_825),
]
N_STATES = {"fhn": 2, "hh": 4, "ord": 41}
N_T = {"fhn": 1260, "hh": 1260, "ord": 10080}


@pytest.mark.parametrize(("model", "space", "values", "count"), WINNERS,
                         ids=[f"{w[0]}-{w[1]}" for w in WINNERS])  # fmt: skip
def test_every_paper_winner_is_in_its_space_and_builds_to_the_papers_count(
    model, space, values, count
):
    experiment = load_experiment(model, [f'search.space="{space}"'])
    names = ("learning_rate", "weight_decay", "gamma", "d_v", "n_layers", "k_max",
             "activation", "n_pad", "layer")  # fmt: skip
    point = dict(zip(names, values, strict=True))
    spaces = (
        experiment.search.constrained if space == "constrained" else experiment.search.unconstrained
    )
    for name in ("d_v", "n_layers", "activation", "layer"):
        assert point[name] in getattr(spaces, name)
    if space == "constrained":
        point.pop("k_max")  # derived, not sampled
    trial = configure(point, experiment, N_T[model], N_STATES[model])
    assert trial.arguments["k_max"] == values[5]
    assert trial.parameter_count == count
    assert trial.record["k_max_derived"] == (space == "constrained")
    assert trial.training.learning_rate == pytest.approx(values[0])


@pytest.mark.parametrize("space", ["unconstrained", "constrained"])
def test_the_search_starts_from_the_experiments_own_configuration(space):
    experiment = load_experiment("hh", [f'search.space="{space}"'])
    trial = configure(default_point(experiment), experiment, 1260, 4)
    assert trial.arguments["d_v"] == experiment.model.d_v
    assert trial.arguments["k_max"] == 16  # the default's own k_max is also the budget's
    assert trial.training.learning_rate == experiment.training.learning_rate


@pytest.mark.parametrize("space", ["unconstrained", "constrained"])
def test_sampled_points_are_on_their_grids_and_buildable(space):
    experiment = load_experiment("fhn", [f'search.space="{space}"'])
    hyper = hyperopt_space(experiment)
    assert ("k_max" in hyper) == (space == "unconstrained")
    rng = np.random.default_rng(0)
    for _ in range(25):
        trial = configure(sample(hyper, rng=rng), experiment, 1260, 2)
        record = trial.record
        assert 1e-4 <= record["learning_rate"] <= 1e-2
        assert abs(record["learning_rate"] * 1e5 - round(record["learning_rate"] * 1e5)) < 1e-6
        assert 0 <= record["n_pad"] <= 15 and isinstance(record["n_pad"], int)
        if space == "constrained":
            d_v, layers = record["d_v"], record["n_layers"]
            assert 2 * layers * d_v * d_v * record["k_max"] <= 524_288 or record["k_max"] == 1


def test_total_parameter_cap_instead_of_the_budget():
    experiment = load_experiment(
        "fhn", ['search.space="constrained"', "search.parameter_cap=600000"]
    )
    point = {"learning_rate": 1e-3, "weight_decay": 1e-4, "gamma": 0.9, "d_v": 64,
             "n_layers": 5, "activation": "gelu", "n_pad": 5, "layer": "mlp"}  # fmt: skip
    trial = configure(point, experiment, 1260, 2)
    assert trial.parameter_count <= 600_000
    assert configure({**point}, experiment, 1260, 2).arguments["k_max"] == 12


def test_spaces_the_grid_cannot_hold_are_refused():
    experiment = load_experiment("fhn")
    check_space(experiment, 1260)
    with pytest.raises(UserError, match=r"k_max holds \[48\], more modes than the 33 of n_t = 64"):
        check_space(experiment, 64)


def test_a_default_outside_its_space_is_explained():
    experiment = load_experiment("fhn", ["model.d_v=50"])
    with pytest.raises(
        UserError, match=r"the experiment's d_v = 50 is not in search\.unconstrained"
    ):
        default_point(experiment)


def test_bad_space_ranges_are_rejected():
    from ionops.errors import ConfigError

    with pytest.raises(ConfigError, match=r"learning_rate = \[0\.01, 0\.0001, 1e-05\]"):
        load_experiment("fhn", ["search.unconstrained.learning_rate=[1e-2, 1e-4, 1e-5]"])
    with pytest.raises(ConfigError, match=r"search\.constrained\.d_v"):
        load_experiment("fhn", ["search.constrained.d_v=[]"])
