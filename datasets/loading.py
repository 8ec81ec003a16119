"""Dataset files into tensors: inputs I_app(t), targets (all states), normalised.

Shapes: inputs (n, n_t), targets (n, n_states, n_t), both float32 on the grid
of the file. Targets are read straight into the tensor's memory and
normalised in place, so a split occupies its size once (the ORd training
split is ~5 GB at full size). Normalisation statistics come from the
training split only, accumulated in float64 a block of samples at a time.

Normalisations:

- ``per_time`` (the paper's): z-score at every time point and state,
  ``(x - mean[s, t]) / (std[s, t] + eps)``, like neuraloperator's
  ``UnitGaussianNormalizer``, except where the training split has almost no
  spread at a time point (std below ``FLAT`` times the variable's overall
  std: every training stimulus ended before t, or the shared initial state
  at t = 0). There the variable's overall std divides instead, so a
  validation sample whose stimulus lasts longer than every training one
  stays of order one rather than being divided by eps;
- ``per_variable``: one mean and standard deviation per state;
- ``none``: the physical values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import torch

from ionops.datasets.protocols import SPLITS, stimulus_on_grid
from ionops.datasets.store import PROBLEM_KINDS, open_file, read_attributes
from ionops.errors import UserError

Normalisation = Literal["per_time", "per_variable", "none"]
NORMALISATIONS: tuple[str, ...] = ("per_time", "per_variable", "none")
EPS = 1e-5
FLAT = 1e-3
_BLOCK_BYTES = 16 * 2**20  # statistics are accumulated in float64 blocks of about this size


@dataclass
class Normalizer:
    """z-score with statistics of shape (channels, n_t) or (channels, 1); see the module doc."""

    mean: torch.Tensor
    std: torch.Tensor
    eps: float = EPS

    def encode_(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (..., channels, n_t) in place and return it."""
        return x.sub_(self.mean.to(x)).div_(self.std.to(x) + self.eps)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Physical values of normalised ``x`` (..., channels, n_t): a new tensor in one pass,
        float32 at least (a network's bfloat16 output is decoded in float32)."""
        dtype = torch.promote_types(x.dtype, torch.float32)
        mean, std = self.mean.to(x.device, dtype), self.std.to(x.device, dtype)
        return torch.addcmul(mean, x, std + self.eps)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "eps": self.eps}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Normalizer:
        return cls(state["mean"], state["std"], float(state["eps"]))

    @classmethod
    def identity(cls, channels: int) -> Normalizer:
        return cls(torch.zeros(channels, 1), torch.ones(channels, 1), 0.0)


def fit_normalizer(
    blocks: Sequence[np.ndarray] | Any, kind: Normalisation, channels: int, n_t: int
) -> Normalizer:
    """Mean and std over samples (and time, for ``per_variable``) of (b, channels, n_t) blocks."""
    if kind == "none":
        return Normalizer.identity(channels)
    total = np.zeros((channels, n_t))
    total_sq = np.zeros((channels, n_t))
    count = 0
    for block in blocks:
        values = np.array(block, dtype=np.float64)
        total += values.sum(axis=0)
        np.square(values, out=values)
        total_sq += values.sum(axis=0)
        count += values.shape[0]
    if count == 0:
        raise UserError("cannot fit a normalisation on an empty training split")
    overall_mean = total.sum(axis=1, keepdims=True) / (count * n_t)
    overall = np.maximum(total_sq.sum(axis=1, keepdims=True) / (count * n_t)
                         - np.square(overall_mean), 0.0) ** 0.5  # fmt: skip
    if kind == "per_variable":
        mean, std = overall_mean, overall
    else:
        mean = total / count
        std = np.maximum(total_sq / count - np.square(mean), 0.0) ** 0.5
        std = np.where(std < FLAT * overall, overall, std)
    return Normalizer(torch.from_numpy(mean).float(), torch.from_numpy(std).float())


@dataclass
class Split:
    """One split in memory: normalised ``inputs`` (n, n_t) and ``targets`` (n, n_states, n_t)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    amplitude: np.ndarray
    t_stim: np.ndarray
    subset: np.ndarray

    def __len__(self) -> int:
        return int(self.targets.shape[0])


@dataclass
class Dataset:
    """The splits of one file, the normalisers fitted on its training split, and its metadata."""

    splits: dict[str, Split]
    input_normalizer: Normalizer
    target_normalizer: Normalizer
    attributes: dict[str, Any]
    time: np.ndarray

    @property
    def state_names(self) -> list[str]:
        return list(self.attributes["state_names"])

    @property
    def nbytes(self) -> int:
        """Bytes of the tensors of every split (what Ray's object store holds of it)."""
        return sum(s.inputs.nbytes + s.targets.nbytes for s in self.splits.values())

    @property
    def subset_names(self) -> list[str]:
        return [s["name"] for s in self.attributes["subsets"]]


def load_dataset(
    path: Path,
    normalisation: Normalisation = "per_time",
    splits: Sequence[str] = SPLITS,
) -> Dataset:
    """Read ``splits`` of a dataset file as normalised float32 tensors."""
    if normalisation not in NORMALISATIONS:
        raise UserError(
            f"normalisation = {normalisation!r}; choose one of {', '.join(NORMALISATIONS)}"
        )
    for split in splits:
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)}")
    if not Path(path).is_file():
        raise UserError(f"no dataset at {path}: generate one with `ionops generate`")
    attributes = read_attributes(path)
    kind = attributes.get("kind", "operator")
    if kind != "operator":
        raise UserError(f"{path} is a {kind} dataset, not an operator dataset of stimulus "
                        "protocols (the FNO family's)")  # fmt: skip
    fitted = normalisation != "none"  # statistics of the training split (a prediction has none)
    if "prediction" in attributes and (fitted or set(splits) != {"test"}):
        raise UserError(f"{path} is a prediction (`ionops predict`): its samples are its test "
                        "split; read it with normalisation='none', splits=('test',)")  # fmt: skip
    with open_file(path) as handle:
        _check_layout(handle, path, {*splits} | ({"train"} if fitted else set()), attributes)
        time = handle["time"][...]
        channels = len(attributes["state_names"])
        target_normalizer, input_normalizer = Normalizer.identity(channels), Normalizer.identity(1)
        if fitted:
            train_states = handle["train/states"]
            train_inputs = _inputs(handle["train"], time)
            n, channels, n_t = train_states.shape
            block = max(1, _BLOCK_BYTES // (channels * n_t * 8))
            blocks = (train_states[k : k + block] for k in range(0, n, block))
            target_normalizer = fit_normalizer(blocks, normalisation, channels, n_t)
            input_normalizer = fit_normalizer([train_inputs[:, None, :]], normalisation, 1, n_t)
        loaded = {name: _read_split(handle[name], time) for name in splits}
    for name, tensors in loaded.items():
        check_finite(path, name, tensors.targets, list(attributes["state_names"]))
    for tensors in loaded.values():
        target_normalizer.encode_(tensors.targets)
        input_normalizer.encode_(tensors.inputs[:, None, :])
    return Dataset(loaded, input_normalizer, target_normalizer, attributes, time)


def _member(handle: h5py.File, path: Path, name: str, ndim: int | None) -> h5py.Dataset:
    found = handle.get(name)
    if not isinstance(found, h5py.Dataset):
        raise UserError(f"{path} has no {name}: not a complete ionops dataset; generate it "
                        "again with `ionops generate --overwrite`")  # fmt: skip
    if ndim is not None and found.ndim != ndim:
        raise UserError(f"{path}: {name} has shape {found.shape}, {found.ndim} dimensions "
                        f"where a dataset has {ndim}")  # fmt: skip
    return found


def _check_layout(handle: h5py.File, path: Path, splits: set[str],
                  attributes: dict[str, Any]) -> None:  # fmt: skip
    """An operator dataset's members, their ranks and their sizes, checked before reading."""
    names = attributes.get("state_names")
    if not names:
        raise UserError(f"{path} names no states (no state_names attribute): not a dataset "
                        "ionops wrote; generate one with `ionops generate`")  # fmt: skip
    n_t = _member(handle, path, "time", 1).shape[0]
    for split in sorted(splits):
        shape = _member(handle, path, f"{split}/states", 3).shape
        if shape[1:] != (len(names), n_t):
            raise UserError(f"{path}: {split}/states has shape {shape}; a dataset of "
                            f"{len(names)} states on its {n_t} time points has (samples, "
                            f"{len(names)}, {n_t})")  # fmt: skip
        if shape[0] == 0:
            raise UserError(f"{path}: the {split} split is empty; generate more samples "
                            "(data.fraction)")  # fmt: skip
        for column in ("amplitude", "t_stim", "subset"):
            rows = _member(handle, path, f"{split}/{column}", 1).shape[0]
            if rows != shape[0]:
                raise UserError(f"{path}: {split}/{column} has {rows} rows for {shape[0]} "
                                "samples")  # fmt: skip


def check_finite(path: Path, split: str, states: torch.Tensor, names: Sequence[str],
                 axis: int = 1) -> None:  # fmt: skip
    """Refuse NaN or Inf states, naming the split, the sample and the variable (on ``axis``),
    in blocks, so checking never doubles the memory."""
    per_sample = max(1, states[0].numel() if len(states) else 1) * 4
    block = max(1, _BLOCK_BYTES // 8 // per_sample)  # small blocks: little temporary memory
    values = states.numpy()
    for begin in range(0, len(states), block):
        chunk = values[begin : begin + block]
        if np.isfinite(chunk).all():
            continue
        where = np.argwhere(~np.isfinite(chunk))[0].tolist()
        sample, variable = begin + where[0], where[axis]
        value = float(values[tuple([sample, *where[1:]])])
        raise UserError(
            f"{path}: {split} sample {sample} holds {value} in {names[variable]}; a dataset "
            "must be finite: generate it again with `ionops generate --overwrite`"
        )


def _inputs(group: h5py.Group, time: np.ndarray) -> np.ndarray:
    return stimulus_on_grid(group["amplitude"][...], group["t_stim"][...], time)


def _read_split(group: h5py.Group, time: np.ndarray) -> Split:
    states = group["states"]
    targets = torch.empty(states.shape, dtype=torch.float32)
    if targets.numel():
        states.read_direct(targets.numpy())
    return Split(
        inputs=torch.from_numpy(_inputs(group, time)),
        targets=targets,
        amplitude=group["amplitude"][...],
        t_stim=group["t_stim"][...],
        subset=group["subset"][...],
    )


@dataclass
class ProblemSplit:
    """One split of a point, transition or trajectory dataset, as stored, in physical units.

    ``inputs`` (n, n_inputs): every input (initial states, then the stimulus);
    ``t`` (n,): the time of each training sample (None for trajectories);
    ``states``: points (n, S), transitions (n, 2, S), trajectories (n, S, n_t);
    ``time`` (n_t,): the grid of trajectory splits.
    """

    layout: str
    inputs: torch.Tensor
    t: torch.Tensor | None
    states: torch.Tensor
    time: np.ndarray | None

    def __len__(self) -> int:
        return int(self.states.shape[0])


@dataclass
class ProblemDataset:
    """The splits of a point, transition or trajectory dataset file and its metadata."""

    splits: dict[str, ProblemSplit]
    attributes: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.attributes["kind"])

    @property
    def state_names(self) -> list[str]:
        return list(self.attributes["state_names"])

    @property
    def input_names(self) -> list[str]:
        return list(self.attributes["input_names"])

    @property
    def varied(self) -> list[str]:
        return list(self.attributes["varied"])

    @property
    def nbytes(self) -> int:
        return sum(s.inputs.nbytes + s.states.nbytes for s in self.splits.values())


def load_problem_dataset(path: Path, splits: Sequence[str] = SPLITS) -> ProblemDataset:
    """Read ``splits`` of a point, transition or trajectory dataset file (float32 tensors,
    physical units)."""
    for split in splits:
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)}")
    if not Path(path).is_file():
        raise UserError(f"no dataset at {path}: generate one with `ionops generate`")
    attributes = read_attributes(path)
    if attributes.get("kind") not in PROBLEM_KINDS:
        kind = attributes.get("kind", "operator")
        raise UserError(f"{path} is an {kind} dataset, not a point, transition or trajectory "
                        "dataset")  # fmt: skip
    loaded = {}
    with open_file(path) as handle:
        for name in splits:
            _member(handle, path, f"{name}/inputs", 2)
            if len(_member(handle, path, f"{name}/states", None)) == 0:
                raise UserError(f"{path}: the {name} split is empty; generate more samples")
            group = handle[name]
            if "layout" not in group.attrs:
                raise UserError(f"{path}: {name} has no layout attribute: not a dataset ionops "
                                "wrote; generate one with `ionops generate`")  # fmt: skip
            states = torch.from_numpy(group["states"][...])
            layout = str(group.attrs["layout"])
            check_finite(path, name, states, list(attributes["state_names"]),
                         axis=2 if layout == "transitions" else 1)  # fmt: skip
            t = torch.from_numpy(group["t"][...]).float() if "t" in group else None
            time = group["time"][...] if "time" in group else None
            loaded[name] = ProblemSplit(layout,
                                        torch.from_numpy(group["inputs"][...]).float(), t,
                                        states, time)  # fmt: skip
    return ProblemDataset(loaded, attributes)
