"""The experiment schema: every shipped file loads, bad input is named and explained."""

import tomllib

import pytest

from ionops.config import (
    ExperimentConfig,
    dump_toml,
    load_experiment,
    shipped_experiments,
    validate_experiment,
)
from ionops.errors import ConfigError


def test_ships_every_papers_experiments():
    assert shipped_experiments() == [
        "fhn",
        "fhn-mlp-a",
        "fhn-mlp-b",
        "fhn-mlp-c",
        "fhn-mlp-c-trajectory",
        "hh",
        "hh-node",
        "hh-splitting",
        "ord",
        "tt04-gating",
    ]


@pytest.mark.parametrize("name", ["fhn", "hh", "ord"])
def test_every_fno_experiment_is_its_ionic_model(name):
    config = load_experiment(name)
    assert config.name == name and config.family == "fno" and config.label == f"{name}-fno"
    assert config.data.ionic_model == name


@pytest.mark.parametrize(("name", "kind"), [("fhn-mlp-a", "point"), ("fhn-mlp-b", "point"),
                                            ("fhn-mlp-c", "point"),
                                            ("fhn-mlp-c-trajectory", "trajectory")])  # fmt: skip
def test_every_mlp_experiment_validates_and_round_trips(name, kind, tmp_path):
    config = load_experiment(name)
    assert config.family == "mlp" and config.label == name
    assert config.data.ionic_model == "fhn_werneck" and config.data.kind == kind
    path = tmp_path / f"{name}.toml"
    path.write_text(dump_toml(config))
    assert load_experiment(path) == config


def test_the_schema_lists_exactly_the_declared_ionic_models():
    import typing

    from ionops.config import IonicModelName
    from ionops.datasets.ionic import available_models, get_ionic_model

    assert sorted(typing.get_args(IonicModelName)) == available_models()
    assert available_models() == ["fhn", "fhn_werneck", "hh", "hh_fractional", "hh_modern",
                                  "izhikevich", "lif", "ord", "tt04"]  # fmt: skip
    for name in available_models():
        assert get_ionic_model(name).name == name


def test_reading_an_experiment_loads_neither_torch_nor_the_compiled_models():
    import subprocess
    import sys

    code = (
        "import sys; from ionops.config import load_experiment; load_experiment('fhn-mlp-c');"
        " load_experiment('ord'); print('torch' in sys.modules, 'numba' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.split() == ["False", "False"]


def test_paper_grids_are_the_defaults():
    for name, n_t, t_end_ms in [("fhn", 1260, 100.0), ("hh", 1260, 100.0), ("ord", 10080, 1000.0)]:
        data = load_experiment(name).data
        assert (data.n_t, data.t_end_ms) == (n_t, t_end_ms)


def test_overrides_are_typed_toml_values():
    config = load_experiment(
        "hh", ["training.epochs=12", "training.learning_rate=2.5e-3", "model.activation=tanh"]
    )
    assert config.training.epochs == 12
    assert config.training.learning_rate == pytest.approx(2.5e-3)
    assert config.model.activation == "tanh"


def test_dump_round_trips_through_the_loader(tmp_path):
    original = load_experiment("ord", ["model.d_v=32", "data.fraction=0.1"])
    path = tmp_path / "ord-small.toml"
    path.write_text(dump_toml(original))
    assert load_experiment(path) == original
    assert tomllib.loads(path.read_text())["model"]["d_v"] == 32


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("training.learning_rate=-1", ["training.learning_rate", "-1", "greater than 0"]),
        ("model.d_v=0", ["model.d_v", "0", "greater than or equal to 1"]),
        ("model.activation=swish", ["model.activation", "swish", "'tanh', 'relu', 'gelu'"]),
        ("data.fraction=1.5", ["data.fraction", "1.5", "less than or equal to 1"]),
        ("data.ionic_model=lr91", ["data.ionic_model", "lr91", "'lif', 'ord' or 'tt04'"]),
        ("training.epochs=ten", ["training.epochs", "ten", "valid integer"]),
    ],
)
def test_bad_values_name_key_value_and_allowed_range(override, expected):
    with pytest.raises(ConfigError) as info:
        load_experiment("fhn", [override])
    message = str(info.value)
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize(
    ("experiment", "override", "expected"),
    [
        (
            "fhn",
            'training.epochs="2"',
            "training.epochs = '2': Input should be a valid integer, not a string",
        ),
        (
            "fhn",
            "training.batch_size=true",
            "training.batch_size = True: Input should be a valid integer, not a boolean",
        ),
        ("fhn", 'training.gamma="0.5"', "training.gamma = '0.5': Input should be a valid number"),
        ("fhn", "training.epochs=2.0", "training.epochs = 2.0: Input should be a valid integer"),
        ("fhn", "model.n_pad=true", "model.n_pad = True"),
        (
            "fhn-mlp-b",
            'data.vary.u0=[0.5, "1"]',
            "data.vary.u0 = '1': Input should be a valid number, not a string",
        ),
        (
            "fhn-mlp-b",
            "data.vary.u0=[0.5]",
            "data.vary.u0 = [0.5]: too few values; value 2 is missing",
        ),
        (
            "fhn",
            "data.parameters={nosuch=1.0}",
            "data.parameters: fhn has no parameter 'nosuch'; valid: b (default 5)",
        ),
        (
            "fhn",
            'data.parameters={e="x"}',
            "data.parameters.e = 'x': Input should be a valid number",
        ),
        (
            "fhn",
            'data.initial_state="bogus"',
            "data.initial_state = 'bogus': fhn has no such initial state; known: rest",
        ),
        ("fhn-mlp-b", "data.parameters={nosuch=1.0}", "fhn_werneck has no parameter 'nosuch'"),
        ("hh-node", 'data.initial_state="bogus"', "hh_modern has no such initial state"),
        (
            "fhn",
            ["search.space=constrained", "search.parameter_cap=1"],
            "search.parameter_cap = 1: search.constrained holds no network under it; its smallest "
            "(d_v = 4, n_layers = 1, layer = 'classic', k_max = 1) has 1,850 parameters",
        ),
    ],
)
def test_wrong_types_and_names_are_refused_when_the_experiment_is_read(experiment, override,
                                                                      expected):  # fmt: skip
    """Strict types (no "2" for 2, no true for 1), and the settings generation would refuse
    later (parameters, initial states, a cap no network fits under) refused at once."""
    overrides = override if isinstance(override, list) else [override]
    with pytest.raises(ConfigError) as info:
        load_experiment(experiment, overrides)
    assert expected in str(info.value)


def test_strict_types_still_read_integers_as_floats_and_arrays_as_ranges():
    config = load_experiment("fhn-mlp-b", ["training.learning_rate=1", "data.vary.u0=[0, 1]"])
    assert config.training.learning_rate == 1.0
    assert config.data.vary["u0"] == (0.0, 1.0)
    assert (
        load_experiment(
            "fhn", ["search.space=constrained", "search.parameter_cap=2000"]
        ).search.parameter_cap
        == 2000
    )


def test_unknown_key_lists_every_valid_key_with_its_default():
    with pytest.raises(ConfigError) as info:
        load_experiment("fhn", ["training.epoch=10"])
    message = str(info.value)
    assert "unknown key 'training.epoch'" in message
    assert "epochs (default 1000)" in message
    assert "learning_rate (required)" in message


def test_unknown_section_is_an_error():
    with pytest.raises(ConfigError, match="unknown key 'optimiser'"):
        load_experiment("fhn", ["optimiser.lr=1"])


def test_missing_section_is_reported_with_what_belongs_there():
    raw = {"name": "x", "data": {"ionic_model": "fhn", "n_t": 64, "t_end_ms": 10.0}}
    with pytest.raises(ConfigError) as info:
        validate_experiment(raw, "inline")
    assert "'model' is required" in str(info.value)
    assert "'training' is required" in str(info.value)


@pytest.mark.parametrize("override", ["training", "training.=3", "=3", "training.epochs"])
def test_malformed_override_is_explained(override):
    with pytest.raises(ConfigError, match=r"section\.key=value|is a value, not a table"):
        load_experiment("fhn", [override])


def test_override_into_a_value_is_refused():
    with pytest.raises(ConfigError, match="'name' is a value, not a table"):
        load_experiment("fhn", ["name.first=x"])


def test_unknown_experiment_names_the_shipped_ones(tmp_path):
    shipped = (
        r"neither a shipped name \(fhn, fhn-mlp-a, fhn-mlp-b, fhn-mlp-c, "
        r"fhn-mlp-c-trajectory, hh, hh-node, hh-splitting, ord, tt04-gating\)"
    )
    with pytest.raises(ConfigError, match=shipped):
        load_experiment(tmp_path / "missing.toml")


def test_invalid_toml_is_reported_with_its_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_experiment(path)


def test_configs_are_immutable():
    config = load_experiment("fhn")
    with pytest.raises(ValueError, match="frozen"):
        config.training.epochs = 3  # type: ignore[misc]
    assert isinstance(config, ExperimentConfig)


def test_own_subsets_are_typed_and_round_trip(tmp_path):
    config = load_experiment(
        "fhn", ["data.subsets.weak = {i = [0.1, 0.2], t_stim = [1.0, 5.0], train = 4}"]
    )
    assert config.data.subsets["weak"].i == (0.1, 0.2)
    assert config.data.subsets["weak"].test == 0
    path = tmp_path / "own.toml"
    path.write_text(dump_toml(config))
    assert load_experiment(path) == config
    with pytest.raises(ConfigError, match=r"data\.subsets\.weak\.train"):
        load_experiment("fhn", ["data.subsets.weak = {i = [0.1, 0.2], t_stim = [1.0, 5.0]}"])
