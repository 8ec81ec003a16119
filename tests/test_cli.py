"""The console script as a user runs it: a real subprocess of the installed `ionops`."""

import shutil
import subprocess
import sys
import tomllib

import pytest

import ionops
from ionops.config import shipped_experiments


def run_ionops(*args, cwd=None):
    exe = shutil.which("ionops")
    command = [exe, *args] if exe else [sys.executable, "-m", "ionops.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)


def test_help_lists_the_subcommands():
    result = run_ionops("--help")
    assert result.returncode == 0, result.stderr
    assert "commands:" in result.stdout
    assert "config" in result.stdout


def test_version_matches_the_package():
    result = run_ionops("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ionops {ionops.__version__}"
    assert ionops.__version__ != "0+unknown"


def test_no_command_is_a_usage_error():
    result = run_ionops()
    assert result.returncode == 2
    assert "required: COMMAND" in result.stderr


def test_config_prints_the_resolved_experiment():
    result = run_ionops("config", "hh", "--set", "training.epochs=7")
    assert result.returncode == 0, result.stderr
    parsed = tomllib.loads(result.stdout)
    assert parsed["training"]["epochs"] == 7
    assert parsed["data"]["ionic_model"] == "hh"


def test_config_list_names_the_shipped_experiments():
    result = run_ionops("config", "--list")
    assert result.stdout.split() == shipped_experiments()  # test_config checks the list


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["config", "fhn", "--set", "model.k_max=0"], "model.k_max = 0"),
        (["config", "fhn", "--set", "model.width=3"], "unknown key 'model.width'"),
        (["config", "nope"], "neither a shipped name"),
        (["generate", "fhn", "--param", "e"], "--param 'e': give --param NAME=VALUE"),
        (["generate", "fhn", "--param", "=1"], "--param '=1': give --param NAME=VALUE"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(args, fragment):
    result = run_ionops(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("ionops: error:")
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_the_search_table_says_when_it_shows_only_some_trials(tmp_path):
    from ionops.hpo.cli import _search_summary
    from ionops.hpo.outcome import SearchOutcome, TrialRecord
    from ionops.models.registry import get_family

    trials = [TrialRecord(i, f"t{i}", "completed", 4, 0.1 * i, {"d_v": 8, "parameter_count": 10})
              for i in range(1, 8)]  # fmt: skip
    outcome = SearchOutcome(tmp_path, True, trials, trials[0], "parent", "validation/rel_l2")
    table = _search_summary(outcome, get_family("fno"))
    assert "(the best 5 of 7 trials; every trial is in trials.csv" in table
    assert "of 3 trials" not in _search_summary(
        SearchOutcome(tmp_path, True, trials[:3], trials[0], "parent", "validation/rel_l2"),
        get_family("fno"),
    )
    help_text = run_ionops("--help").stdout
    assert "ionops" in help_text and "fno, gating, mlp, node" in help_text
    assert "``" not in run_ionops("cluster", "--help").stdout
