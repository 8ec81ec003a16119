"""Families and dataset kinds are plug-ins: a package that declares one by entry point adds it
to every command, with nothing in ionops edited. The package here is a real distribution on
the path of a fresh interpreter (its metadata and entry points), as pip would install one."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

KIND_MODULE = """
from typing import Literal

from ionops.config_io import Section
from ionops.datasets.kinds import DatasetKind


class ToyData(Section):
    kind: Literal["toy"]
    ionic_model: str
    samples: int


class ToyKind(DatasetKind):
    name = "toy"
    section = ToyData

    def spec(self, data):
        return data

    def plan(self, spec):
        raise NotImplementedError

    def file_name(self, data):
        return f"toy_{data.ionic_model}_{data.samples}.h5"


KIND = ToyKind()
"""


def _distribution(site: Path, entry_points: str) -> None:
    (site / "toyplug").mkdir(parents=True)
    (site / "toyplug" / "__init__.py").write_text(KIND_MODULE)
    info = site / "toyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def _python(site: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, text=True,
                          capture_output=True, timeout=120, check=False)  # fmt: skip


@pytest.mark.slow
def test_a_dataset_kind_declared_by_another_package_joins_the_schema(tmp_path):
    _distribution(tmp_path, "[ionops.dataset_kinds]\ntoy = toyplug:KIND\n")
    run = _python(
        tmp_path,
        """
        from ionops.config import load_experiment
        from ionops.datasets.kinds import dataset_kinds
        from ionops.errors import ConfigError
        from ionops.workdir import dataset_path

        assert "toy" in dataset_kinds() and "operator" in dataset_kinds(), dataset_kinds()
        try:
            load_experiment("fhn", ['data = {kind = "toy", ionic_model = "fhn", samples = 3}'])
        except ConfigError as exc:  # the schema took it; the FNO family does not train on it
            print(exc)
        from ionops.config import ExperimentConfig
        section = ExperimentConfig.model_fields["data"]
        from pydantic import TypeAdapter
        data = TypeAdapter(section.annotation).validate_python(
            {"kind": "toy", "ionic_model": "fhn", "samples": 3})
        print(type(data).__name__, dataset_path(data).name)
    """,
    )
    assert run.returncode == 0, run.stderr
    assert "data.kind = 'toy': the fno family trains on 'operator' datasets" in run.stdout
    assert "ToyData toy_fhn_3.h5" in run.stdout


@pytest.mark.slow
def test_unknown_and_clashing_plug_ins_are_named(tmp_path):
    _distribution(tmp_path, "[ionops.families]\nfno = toyplug:OTHER\n")
    run = _python(
        tmp_path,
        """
        from ionops.models.registry import surrogate_families
        surrogate_families()
    """,
    )
    assert run.returncode != 0
    assert "two surrogate family plug-ins are named 'fno'" in run.stderr
    assert "toyplug:OTHER" in run.stderr


def test_an_unknown_family_says_how_to_add_one():
    from ionops.errors import UserError
    from ionops.models.registry import get_family

    with pytest.raises(UserError, match=r"unknown surrogate family 'gru'; known: [^.]*fno[^.]*\. A "
                       "new surrogate family is an object declared as an entry point in the "
                       "group 'ionops.families'"):  # fmt: skip
        get_family("gru")


class _Data:
    """What the FNO's configure reads of a loaded operator dataset."""

    time = np.arange(128.0)
    state_names = ("V", "w")


def test_a_point_is_checked_before_a_search_spends_anything():
    from types import MethodType

    from ionops.config import load_experiment
    from ionops.errors import UserError
    from ionops.models.families.fno import FNOFamily
    from ionops.models.points import check_points

    experiment = load_experiment("fhn", ["data.n_t=128"])
    family = FNOFamily()
    point = family.default_point(experiment)
    check_points(family, experiment, _Data(), (), point)  # the shipped family passes

    with pytest.raises(UserError, match=r"default point uses 'seed', which ionops adds"):
        check_points(family, experiment, _Data(), (), {**point, "seed": 3})
    space = family.hyperopt_space(experiment)
    family.hyperopt_space = lambda _: {**space, "candidate": 0}  # type: ignore[method-assign]
    with pytest.raises(UserError, match=r"search space uses 'candidate'"):
        check_points(family, experiment, _Data(), (), point)

    # a record that is not the trial it records: configuring it again gives another trial
    family = FNOFamily()
    configure = family.configure

    def forgetful(self, point, experiment, data):
        trial = configure(point, experiment, data)
        trial.record["learning_rate"] = 2 * trial.record["learning_rate"]
        return trial

    family.configure = MethodType(forgetful, family)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match=r"record keys \['learning_rate'\]"):
        check_points(family, experiment, _Data(), (), point)


def test_a_family_without_serving_says_so_by_name():
    from ionops.errors import UserError
    from ionops.models.families.fno import FNOFamily
    from ionops.models.family import SurrogateFamily

    class Unserved(FNOFamily):
        name = "unserved"
        serving = SurrogateFamily.serving

    with pytest.raises(UserError, match=r"the unserved family cannot be used by `ionops predict`"):
        Unserved().serving()


@pytest.mark.parametrize(("experiment", "metric"), [("fhn", "rel_l2"), ("fhn-mlp-b", "mae")])
def test_a_search_from_before_metrics_were_recorded_minimised_its_familys(experiment, metric):
    from ionops.config import load_experiment
    from ionops.hpo.outcome import recorded_metric

    state = {"experiment": load_experiment(experiment).model_dump(mode="json")}
    assert recorded_metric(Path("search"), state) == f"validation/{metric}"
    assert recorded_metric(Path("search"), {**state, "metric": "test/x"}) == "test/x"
