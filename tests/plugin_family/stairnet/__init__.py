"""A surrogate family written outside ionops, for the tests only (not shipped).

It proves that a family shaped unlike the FNO and the MLP joins every command
from its own files, declared by entry point (``ionops.families`` and
``ionops.dataset_kinds``): a dataset kind of its own (``staircase``: an
ionic model's response to a staircase of current), a stimulus protocol the
project does not have (:class:`Staircase`), and its own optimisation in two
phases (L-BFGS with a closure on the whole network, then Adam on the output
layer with the hidden layer frozen).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ionops.config_io import Section
from ionops.datasets.generate import GenerationPlan
from ionops.datasets.kinds import DatasetKind
from ionops.datasets.stimuli import Piece, Stimulus
from ionops.models.family import (
    Metric,
    ModelSection,
    Objective,
    Serving,
    SpaceSection,
    SurrogateFamily,
    TrialConfig,
)

SPLITS = ("train", "validation", "test")


# -- the stimulus protocol ------------------------------------------------------------------------
@dataclass(frozen=True)
class Staircase(Stimulus):
    """``steps`` stairs of ``width`` ms, each ``height`` above the last, then no current."""

    height: float
    width: float
    steps: int
    protocol: ClassVar[str] = "staircase"

    def pieces(self, t_end: float) -> list[Piece]:
        edges = [min(k * self.width, t_end) for k in range(self.steps + 1)]
        stairs = [(a, b, (k + 1) * self.height) for k, (a, b) in enumerate(pairwise(edges))]
        after = [(edges[-1], t_end, 0.0)] if edges[-1] < t_end else []
        return [p for p in stairs if p[1] > p[0]] + after


# -- the dataset kind -----------------------------------------------------------------------------
class StaircaseData(Section):
    """Responses of ``ionic_model`` to staircases of heights drawn in ``height``."""

    kind: Literal["staircase"]
    ionic_model: str
    height: tuple[float, float]
    width_ms: float = Field(gt=0)
    steps: int = Field(ge=1)
    t_end_ms: float = Field(gt=0)
    n_t: int = Field(ge=8)
    train: int = Field(ge=1)
    validation: int = Field(ge=1)
    test: int = Field(ge=1)
    seed: int = 0


@dataclass(frozen=True)
class StaircaseSpec:
    data: StaircaseData
    kind: ClassVar[str] = "staircase"

    def manifest(self) -> dict[str, Any]:
        return self.data.model_dump(mode="json")


@dataclass(frozen=True)
class StaircasePlan(GenerationPlan):
    spec: StaircaseSpec
    model: Any
    heights: dict[str, np.ndarray]
    time: np.ndarray
    IDENTITY: ClassVar[Mapping[str, str]] = {
        "kind": "data.kind", "model": "data.ionic_model", "height": "data.height",
        "width_ms": "data.width_ms", "steps": "data.steps", "t_end_ms": "data.t_end_ms",
        "n_t": "data.n_t", "counts": "data.train", "seed": "data.seed",
    }  # fmt: skip

    def tasks(self) -> list[tuple[int, int]]:
        return [(s, k) for s, split in enumerate(SPLITS) for k in range(len(self.heights[split]))]

    def n_samples(self) -> int:
        return len(self.tasks())

    def solve(self, task: tuple[int, int], writer: Any) -> None:
        from ionops.datasets.journal import encode_chunk
        from ionops.datasets.solver import SolverSettings, solve_stimulus

        data = self.spec.data
        height = float(self.heights[SPLITS[task[0]]][task[1]])
        stimulus = Staircase(height, data.width_ms, data.steps)
        solution = solve_stimulus(self.model, self.time, stimulus, SolverSettings(1e-8, 1e-10))
        writer.append(task[0], task[1], 1, (0,) * 6, encode_chunk(solution.states))

    def attributes(self) -> dict[str, Any]:
        data = self.spec.data
        return {
            "model": data.ionic_model, "height": list(data.height), "width_ms": data.width_ms,
            "steps": data.steps, "t_end_ms": data.t_end_ms, "n_t": data.n_t, "seed": data.seed,
            "counts": [data.train, data.validation, data.test], "input_names": ["height"],
            "state_names": list(self.model.state_names),
        }  # fmt: skip

    def assemble(self, output: Path, records: Mapping[tuple[int, int], Any]) -> None:
        import h5py

        from ionops.datasets.journal import decode_chunk
        from ionops.datasets.store import FORMAT, FORMAT_VERSION

        shape = (self.model.n_states, self.time.size)
        temporary = output.with_name(f".{output.name}.assembling")
        with h5py.File(temporary, "w") as handle:
            stamp = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.kind}
            for key, value in {**stamp, **self.attributes()}.items():
                handle.attrs[key] = json.dumps(value) if isinstance(value, list) else value
            handle["time"] = self.time
            for s, split in enumerate(SPLITS):
                group = handle.create_group(split)
                group["inputs"] = self.heights[split][:, None]
                group["states"] = np.stack([decode_chunk(records[(s, k)].read_payload(), shape)
                                            for k in range(len(self.heights[split]))])  # fmt: skip
        temporary.replace(output)


class StaircaseKind(DatasetKind):
    name = "staircase"
    section = StaircaseData

    def spec(self, data: Any) -> StaircaseSpec:
        return StaircaseSpec(data)

    def plan(self, spec: Any) -> StaircasePlan:
        from ionops.datasets.ionic import get_ionic_model

        data = spec.data
        rng = np.random.default_rng(data.seed)
        counts = {"train": data.train, "validation": data.validation, "test": data.test}
        heights = {s: rng.uniform(*data.height, size=counts[s]) for s in SPLITS}
        time = np.linspace(0.0, data.t_end_ms, data.n_t)
        return StaircasePlan(spec, get_ionic_model(data.ionic_model), heights, time)

    def file_name(self, data: Any) -> str:
        from ionops.datasets.identity import settings_digest

        return f"{data.ionic_model}_staircase_{settings_digest(data.model_dump(mode='json'))}.h5"


KIND = StaircaseKind()


# -- the family -----------------------------------------------------------------------------------
class StairnetSection(ModelSection):
    family: Literal["stairnet"]
    width: int = Field(default=16, ge=1)


class StairnetSpace(SpaceSection):
    family: Literal["stairnet"]
    widths: list[int] = Field(default=[8, 16, 32], min_length=1)


@dataclass
class Responses:
    """A staircase dataset in memory."""

    attributes: dict[str, Any]
    time: np.ndarray
    inputs: dict[str, np.ndarray]  # split -> (n, 1)
    states: dict[str, np.ndarray]  # split -> (n, n_states, n_t)


class StairnetObjective(Objective):
    """Mean squared error of standardised trajectories; two phases, the first by L-BFGS."""

    def __init__(self, data: Responses, arguments: Mapping[str, Any]) -> None:
        import torch

        self.data, self.arguments = data, arguments
        self.state_names = tuple(data.attributes["state_names"])
        self.tensors = {s: (torch.tensor(data.inputs[s], dtype=torch.float32),
                            torch.tensor(data.states[s], dtype=torch.float32))
                        for s in data.inputs}  # fmt: skip

    def to(self, device: Any) -> None:
        self.tensors = {s: (x.to(device), y.to(device)) for s, (x, y) in self.tensors.items()}

    def phases(self, settings: Any) -> Sequence[Any]:
        from ionops.training.optimisation import Phase

        return (Phase("lbfgs", until=max(1, settings.epochs // 2)),
                Phase("head", frozen=("hidden.",)))  # fmt: skip

    def optimisation(self, model: Any, phase: Any, settings: Any) -> Any:
        import torch

        from ionops.training.optimisation import Optimisation

        if phase.name == "lbfgs":
            lbfgs = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=20,
                                      line_search_fn="strong_wolfe")  # fmt: skip
            return Optimisation([lbfgs], closure=True)
        return super().optimisation(model, phase, settings)

    def batches(self, generator: Any, batch_size: int) -> Iterator[Any]:
        yield "train"  # the whole training split: L-BFGS wants one deterministic batch

    def loss(self, model: Any, batch: Any) -> Any:
        inputs, states = self.tensors[batch]
        return ((model(inputs) - model.encode(states)) ** 2).mean()

    def evaluate(self, model: Any, split: str) -> dict[str, Any]:
        import torch

        inputs, states = self.tensors[split]
        with torch.no_grad():
            return errors(model.decode(model(inputs)), states)

    def splits(self) -> tuple[str, ...]:
        return tuple(self.tensors)

    def describe(self) -> dict[str, Any]:
        import torch

        from ionops.datasets.store import attributes_json

        low, high = self.data.attributes["height"]
        return {"kind": "staircase", "attributes": attributes_json(self.data.attributes),
                "time": torch.tensor(self.data.time),
                "ranges": {"height": [low, high]}}  # fmt: skip


def errors(predicted: Any, truth: Any) -> dict[str, Any]:
    """Per-sample, per-state RMSE in physical units."""
    return {"rmse": ((predicted - truth) ** 2).mean(dim=-1).sqrt()}


def network(arguments: Mapping[str, Any]) -> Any:
    import torch
    from torch import nn

    class Stairnet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            n_states, n_t = int(arguments["n_states"]), int(arguments["n_t"])
            self.hidden = nn.Linear(1, int(arguments["width"]))
            self.out = nn.Linear(int(arguments["width"]), n_states * n_t)
            self.shape = (n_states, n_t)
            self.register_buffer("scale", torch.tensor(arguments["scale"], dtype=torch.float32))
            self.register_buffer("mean", torch.tensor(arguments["mean"], dtype=torch.float32))
            self.register_buffer("std", torch.tensor(arguments["std"], dtype=torch.float32))

        def forward(self, height: torch.Tensor) -> torch.Tensor:
            hidden = torch.tanh(self.hidden(height / self.scale))
            return self.out(hidden).reshape(-1, *self.shape)

        def encode(self, states: torch.Tensor) -> torch.Tensor:
            return (states - self.mean[:, None]) / self.std[:, None]

        def decode(self, encoded: torch.Tensor) -> torch.Tensor:
            return encoded * self.std[:, None] + self.mean[:, None]

    return Stairnet()


class StairnetFamily(SurrogateFamily):
    name = "stairnet"
    section = StairnetSection
    space = StairnetSpace
    metrics = (Metric("rmse", "RMSE", unit="state"),)
    metric = "rmse"
    summary_metrics = ("rmse",)
    data_kinds = ("staircase",)
    smoke_test = (str(Path(__file__).parent.parent / "stairs.toml"), ())

    def default_spaces(self) -> dict[str, dict[str, Any]]:
        return {"unconstrained": {}, "constrained": {}}

    def hyperopt_space(self, experiment: Any) -> dict[str, Any]:
        from hyperopt import hp

        space = getattr(experiment.search, experiment.search.space)
        return {"width": hp.choice("width", list(space.widths))}

    def default_point(self, experiment: Any) -> dict[str, Any]:
        return {"width": experiment.model.width}

    def configure(self, point: Mapping[str, Any], experiment: Any, data: Any) -> TrialConfig:
        return self._trial(int(point["width"]), experiment, data)

    def own_trial(self, experiment: Any, data: Any) -> TrialConfig:
        return self._trial(experiment.model.width, experiment, data)

    def _trial(self, width: int, experiment: Any, data: Responses) -> TrialConfig:
        train = data.states["train"]
        arguments = {
            "width": width, "n_states": train.shape[1], "n_t": train.shape[2],
            "scale": float(np.abs(data.attributes["height"]).max()),
            "mean": train.mean(axis=(0, 2)).tolist(), "std": train.std(axis=(0, 2)).tolist(),
        }  # fmt: skip
        count = self.parameter_count(arguments)
        return TrialConfig(arguments, experiment.training, {"width": width,
                                                            "parameter_count": count})  # fmt: skip

    def build(self, arguments: Mapping[str, Any]) -> Any:
        return network(arguments)

    def parameter_count(self, arguments: Mapping[str, Any]) -> int:
        width, outputs = int(arguments["width"]), arguments["n_states"] * arguments["n_t"]
        return 2 * width + (width + 1) * outputs

    def load_data(self, experiment: Any, path: Path, splits: Sequence[str] | None = None) -> Any:
        import h5py

        from ionops.datasets.store import read_attributes

        with h5py.File(path, "r") as handle:
            wanted = tuple(splits or SPLITS)
            return Responses(read_attributes(path), handle["time"][...],
                             {s: handle[s]["inputs"][...] for s in wanted},
                             {s: handle[s]["states"][...] for s in wanted})  # fmt: skip

    def objective(self, data: Any, trial: TrialConfig, experiment: Any) -> Objective:
        return StairnetObjective(data, trial.arguments)

    def report(self, item: Any, folder: Path) -> list[Path]:
        import matplotlib.pyplot as plt

        data = self.load_data(item.experiment, item.dataset, ("test",))
        figure, axis = plt.subplots()
        axis.plot(data.time, data.states["test"][:, 0].T)
        axis.set(xlabel="time (ms)", title="test responses")
        path = folder / "responses.png"
        figure.savefig(path)
        plt.close(figure)
        return [path]

    def serving(self) -> Serving:
        return StairnetServing()


class StairnetServing(Serving):
    def input_names(self, described: Mapping[str, Any]) -> list[str]:
        return ["height"]

    def predict(self, model: Any, described: Mapping[str, Any], inputs: Any) -> Any:
        return model.decode(model(inputs.to(model.scale.dtype)))

    def solve(self, described: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
        from ionops.datasets.ionic import get_ionic_model
        from ionops.datasets.solver import SolverSettings, solve_stimulus

        attributes = described["attributes"]
        model = get_ionic_model(attributes["model"])
        time = described["time"].double().numpy()
        settings = SolverSettings(1e-8, 1e-10)
        return np.stack([solve_stimulus(model, time, Staircase(float(h), attributes["width_ms"],
                                                               attributes["steps"]), settings
                                        ).states for (h,) in inputs])  # fmt: skip

    def errors(self, predicted: Any, truth: Any, described: Mapping[str, Any]) -> dict[str, Any]:
        return errors(predicted.float(), truth.float())


FAMILY = StairnetFamily()
