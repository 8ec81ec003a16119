"""The paper's figures and tables from finished retrainings, as files and MLflow artifacts.

Per experiment (from ``WORKDIR/retrains/NAME``):

- ``training.png`` (Fig. 2): training loss and test relative L1/L2/H1 per epoch;
- ``subsets.png`` (Fig. 3): per-sample test relative L2 by subset, bars and boxes;
- ``examples.png`` (Fig. 5): one test prediction per subset against the solver,
  with the point-wise error;
- ``variables.png`` (Fig. 13): per-sample test relative L2 of every state variable;
- ``summary.md`` / ``summary.csv``: the mean ± std table over seeds.

Given several experiments, ``models.png`` (Fig. 12) sets test error,
parameters, peak memory and training time against the number of state
variables, and ``models.csv`` / ``models.md`` tabulate them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ionops import tracking
from ionops.config import ExperimentConfig
from ionops.errors import UserError
from ionops.workdir import write_atomic

SEED_METRICS = ("rel_l1", "rel_l2", "rel_h1")


@dataclass
class Retrained:
    """One finished retraining, read back: its experiment, summary, seeds' outputs and data."""

    name: str
    experiment: ExperimentConfig
    folder: Path
    state: dict[str, Any]
    summary: dict[str, Any]
    checkpoint: dict[str, Any]  # the first seed's
    per_sample: list[dict[str, dict[str, np.ndarray]]]  # every seed's
    data: Any  # the test split, normalised as in training


def make_report(
    experiments: list[tuple[str, ExperimentConfig]], workdir: Path, out: Path | None = None
) -> Path:
    """Report each named retraining (and compare several); return the report's folder."""
    import matplotlib

    matplotlib.use("Agg")
    loaded = [_load(name, experiment, workdir) for name, experiment in experiments]
    out = out or workdir / "reports" / "-".join(r.name for r in loaded)
    out.mkdir(parents=True, exist_ok=True)
    client = tracking.client(workdir)
    for item in loaded:
        folder = out / item.name if len(loaded) > 1 else out
        folder.mkdir(parents=True, exist_ok=True)
        files = [
            _training_figure(item, folder / "training.png"),
            _subsets_figure(item, folder / "subsets.png"),
            _examples_figure(item, folder / "examples.png"),
            _variables_figure(item, folder / "variables.png"),
        ]
        for table in ("summary.md", "summary.csv"):
            shutil.copyfile(item.folder / table, folder / table)
            files.append(folder / table)
        writer = tracking.RunWriter(client, item.state["parent_run_id"])
        for path in files:
            writer.artifact(path, "report")
    if len(loaded) > 1:
        _models_figure(loaded, out / "models.png")
        _models_table(loaded, out)
    return out


def _load(name: str, experiment: ExperimentConfig, workdir: Path) -> Retrained:
    import torch

    from ionops.datasets.loading import load_dataset
    from ionops.hpo.retrain import retrain_folder
    from ionops.hpo.trainable import PER_SAMPLE_FILE
    from ionops.training.checkpoint import load_checkpoint
    from ionops.workdir import dataset_path

    folder = retrain_folder(workdir, name)
    if not (folder / "summary.json").exists():
        raise UserError(
            f"no finished retraining in {folder}: run `ionops retrain` with the same arguments"
        )
    state = json.loads((folder / "retrain.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    seeds = state["seeds"]
    checkpoint = load_checkpoint(folder / f"seed-{seeds[0]}" / "checkpoint.pt")
    per_sample = []
    for seed in seeds:
        raw = torch.load(folder / f"seed-{seed}" / PER_SAMPLE_FILE, weights_only=True)
        per_sample.append({s: {k: v.numpy() for k, v in e.items()} for s, e in raw.items()})
    data = load_dataset(dataset_path(experiment.data, workdir), experiment.training.normalisation,
                        splits=("test",))  # fmt: skip
    return Retrained(name, experiment, folder, state, summary, checkpoint, per_sample, data)


def _training_figure(item: Retrained, path: Path) -> Path:
    import matplotlib.pyplot as plt

    history = item.checkpoint["history"]
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    epochs = [row["epoch"] for row in history]
    axis.plot(epochs, [row["train_loss"] for row in history], label="training loss (rel. L2)")
    for metric in SEED_METRICS:
        rows = [(row["epoch"], row[f"test/{metric}"]) for row in history if f"test/{metric}" in row]
        if rows:
            x, y = zip(*rows, strict=True)
            axis.plot(x, y, label=f"test relative {metric[4:].upper()}")
    axis.set(xlabel="epoch", ylabel="relative error", yscale="log",
             title=f"{item.name}: training (seed {item.state['seeds'][0]})")  # fmt: skip
    axis.legend()
    return _save(figure, path)


def _test_errors(item: Retrained) -> np.ndarray:
    """Per-sample, per-variable test relative L2, averaged over seeds: (n_test, n_states)."""
    return np.mean([seed["test"]["rel_l2"] for seed in item.per_sample], axis=0)


def _subsets_figure(item: Retrained, path: Path) -> Path:
    import matplotlib.pyplot as plt

    errors = np.nanmean(_test_errors(item), axis=1)
    labels = item.data.splits["test"].subset
    names = item.data.subset_names
    present = [k for k in range(len(names)) if np.any(labels == k)]
    groups = [errors[labels == k] for k in present]
    figure, (bars, boxes) = plt.subplots(1, 2, figsize=(10, 4.2))
    means = [float(np.nanmean(g)) for g in groups]
    bars.bar([names[k] for k in present], means, color="tab:blue")
    bars.set(ylabel="mean test relative L2", title="by subset (mean over samples)")
    boxes.boxplot(groups, tick_labels=[names[k] for k in present])
    boxes.set(yscale="log", ylabel="test relative L2 per sample", title="distribution")
    figure.suptitle(item.name)
    return _save(figure, path)


def _examples_figure(item: Retrained, path: Path) -> Path:
    import matplotlib.pyplot as plt
    import torch

    from ionops.models import build_surrogate

    model = build_surrogate(item.checkpoint["family"], item.checkpoint["arguments"])
    model.load_state_dict(item.checkpoint["model"])
    model.eval()
    split, normalizer = item.data.splits["test"], item.data.target_normalizer
    errors = np.nanmean(_test_errors(item), axis=1)
    names = item.data.subset_names
    present = [k for k in range(len(names)) if np.any(split.subset == k)]
    time, state = item.data.time, item.data.state_names[0]
    figure, axes = plt.subplots(2, len(present), figsize=(3.6 * len(present), 5.4),
                                squeeze=False, sharex=True)  # fmt: skip
    for column, subset in enumerate(present):
        members = np.flatnonzero(split.subset == subset)
        index = members[np.argsort(errors[members])[len(members) // 2]]  # the median sample
        with torch.no_grad():
            predicted = normalizer.decode(model(split.inputs[index : index + 1]).float())[0, 0]
        truth = normalizer.decode(split.targets[index : index + 1])[0, 0]
        top, bottom = axes[0, column], axes[1, column]
        top.plot(time, truth.numpy(), label="solver", color="black")
        top.plot(time, predicted.numpy(), label="FNO", color="tab:red", linestyle="--")
        top.set_title(f"{names[subset]}: i={split.amplitude[index]:.3g}, "
                      f"T={split.t_stim[index]:.3g} ms", fontsize=9)  # fmt: skip
        bottom.plot(time, (predicted - truth).abs().numpy(), color="tab:gray")
        bottom.set(xlabel="t (ms)", yscale="log")
    axes[0, 0].set_ylabel(state)
    axes[1, 0].set_ylabel(f"|error| in {state}")
    axes[0, 0].legend()
    figure.suptitle(f"{item.name}: median test sample of each subset")
    return _save(figure, path)


def _variables_figure(item: Retrained, path: Path) -> Path:
    import matplotlib.pyplot as plt

    errors = _test_errors(item)
    names = item.data.state_names
    figure, axis = plt.subplots(figsize=(max(6.4, 0.35 * len(names) + 2), 4.2))
    columns = [errors[:, k][np.isfinite(errors[:, k])] for k in range(len(names))]
    axis.boxplot(columns, tick_labels=names)
    axis.set(yscale="log", ylabel="test relative L2 per sample",
             title=f"{item.name}: per state variable")  # fmt: skip
    axis.tick_params(axis="x", labelrotation=90 if len(names) > 8 else 0)
    return _save(figure, path)


def _model_rows(loaded: list[Retrained]) -> list[dict[str, Any]]:
    rows = []
    for item in sorted(loaded, key=lambda r: len(r.data.state_names)):
        mean_std = item.summary["mean_std"]
        rows.append({
            "name": item.name, "n_states": len(item.data.state_names),
            "parameters": item.summary["parameter_count"],
            "test_rel_l2": mean_std["test/rel_l2"], "peak_memory_bytes":
            mean_std["peak_memory_bytes"], "train_seconds": mean_std["train_seconds"],
        })  # fmt: skip
    return rows


def _models_figure(loaded: list[Retrained], path: Path) -> Path:
    import matplotlib.pyplot as plt

    rows = _model_rows(loaded)
    x = [r["n_states"] for r in rows]
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    panels = (("test_rel_l2", "test relative L2", 1.0), ("peak_memory_bytes", "peak memory (MiB)",
              2**-20), ("train_seconds", "training time (s)", 1.0))  # fmt: skip
    for axis, (key, label, scale) in zip(axes[[0, 2, 3]], panels, strict=True):
        mean = [r[key][0] * scale for r in rows]
        spread = [r[key][1] * scale for r in rows]
        axis.errorbar(x, mean, yerr=spread, marker="o", capsize=3)
        axis.set(xlabel="state variables", ylabel=label)
    axes[1].plot(x, [r["parameters"] for r in rows], marker="o")
    axes[1].set(xlabel="state variables", ylabel="parameters")
    for row in rows:
        axes[0].annotate(row["name"], (row["n_states"], row["test_rel_l2"][0]), fontsize=8)
    return _save(figure, path)


def _models_table(loaded: list[Retrained], out: Path) -> None:
    rows = _model_rows(loaded)
    header = "name,n_states,parameters,test_rel_l2_mean,test_rel_l2_std,peak_memory_mib_mean,"
    header += "train_seconds_mean"
    lines, markdown = (
        [header],
        [
            "| model | state variables | parameters | test rel. L2 | peak memory | training time |",
            "|---|---|---|---|---|---|",
        ],
    )
    for r in rows:
        memory = r["peak_memory_bytes"][0] / 2**20
        error, seconds = r["test_rel_l2"], r["train_seconds"][0]
        lines.append(f"{r['name']},{r['n_states']},{r['parameters']},{error[0]!r},{error[1]!r},"
                     f"{memory:.1f},{seconds:.1f}")  # fmt: skip
        markdown.append(
            f"| {r['name']} | {r['n_states']} | {r['parameters']:,} | {r['test_rel_l2'][0]:.3%}"
            f" ± {r['test_rel_l2'][1]:.3%} | {memory:,.0f} MiB | {r['train_seconds'][0]:,.0f} s |"
        )
    write_atomic(out / "models.csv", "\n".join(lines) + "\n")
    write_atomic(out / "models.md", "\n".join(markdown) + "\n")


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    temporary.replace(path)
    return path
