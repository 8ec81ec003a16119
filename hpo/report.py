"""The paper's figures and tables from finished retrainings, as files and MLflow artifacts.

Per experiment (from ``WORKDIR/retrains/NAME``), for every family:

- ``training.png`` (the FNO paper's Fig. 2): training loss and the test errors per epoch;
- ``variables.png`` (its Fig. 13): per-sample test error of every state variable;
- ``summary.md`` / ``summary.csv``: the mean ± std table over seeds;

and the family's own figures (``SurrogateFamily.report``): the FNO's errors
by stimulus subset and example predictions, the MLP's errors by shape and
size, its error against inference time and its example trajectories.

Given several experiments, ``models.png`` (the FNO paper's Fig. 12) sets test
error, parameters, peak memory and training time against the number of state
variables, and ``models.csv`` / ``models.md`` tabulate them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ionops import tracking
from ionops.config import ExperimentConfig
from ionops.errors import UserError
from ionops.models.family import Training
from ionops.models.registry import get_family
from ionops.plotting import draw_groups, save_figure
from ionops.workdir import write_atomic


@dataclass
class Retrained:
    """One finished retraining, read back: its experiment, summary, seeds' outputs, search."""

    name: str
    experiment: ExperimentConfig
    folder: Path
    state: dict[str, Any]
    summary: dict[str, Any]
    checkpoint: dict[str, Any]  # the registered seed's (the best by validation)
    per_sample: list[dict[str, dict[str, np.ndarray]]]  # every seed's
    dataset: Path  # the experiment's dataset file
    state_names: list[str]
    trials: list[Any]  # the search's TrialRecords (every candidate of a candidate search)
    search_metric: str
    seed: int = 0  # the seed whose surrogate was registered, drawn in one-seed figures
    show_states: list[str] | None = None  # the states example figures draw (None: all)

    @property
    def family(self) -> Training:
        return get_family(self.experiment.family)

    def seed_checkpoints(self) -> list[Path]:
        """Every seed's checkpoint, the registered seed's first."""
        seeds = [int(s) for s in self.state["seeds"]]
        ordered = [self.seed, *[s for s in seeds if s != self.seed]]
        return [self.folder / f"seed-{seed}" / "checkpoint.pt" for seed in ordered]

    def registered(self) -> tuple[Any, Any]:
        """The experiment's dataset as the family loads it, and the registered seed's network
        with its trained weights, in evaluation mode."""
        family = self.family
        data = family.load_data(self.experiment, self.dataset)
        model = family.build(self.checkpoint["arguments"])
        model.load_state_dict(self.checkpoint["model"])
        model.eval()
        return data, model


def make_report(
    experiments: list[tuple[str, ExperimentConfig]],
    workdir: Path,
    out: Path | None = None,
    states: list[str] | None = None,
) -> Path:
    """Report each named retraining (and compare several); return the report's folder.
    ``states``: the state variables example figures draw (default: every one)."""
    import matplotlib

    matplotlib.use("Agg")
    loaded = [_load(name, experiment, workdir) for name, experiment in experiments]
    for item in loaded:
        unknown = [name for name in states or () if name not in item.state_names]
        if unknown:
            raise UserError(f"--states {','.join(states or ())}: {item.name} has no state "
                            f"{', '.join(unknown)}; its states: "
                            f"{', '.join(item.state_names)}")  # fmt: skip
        item.show_states = list(states) if states else None
    out = out or workdir / "reports" / "-".join(r.name for r in loaded)
    _check_writable(out)
    client = tracking.client(workdir)
    for item in loaded:
        folder = out / item.name if len(loaded) > 1 else out
        folder.mkdir(parents=True, exist_ok=True)
        files = [
            _training_figure(item, folder / "training.png"),
            *_variables_figure(item, folder / "variables.png"),
            *item.family.report(item, folder),
        ]
        for table in ("summary.md", "summary.csv"):
            shutil.copyfile(item.folder / table, folder / table)
            files.append(folder / table)
        writer = tracking.RunWriter(client, item.state["parent_run_id"])
        files += [path.with_suffix(".json") for path in files
                  if path.suffix == ".png" and path.with_suffix(".json").exists()]  # fmt: skip
        for path in files:
            writer.artifact(path, "report")
    if len(loaded) > 1:
        _models_figure(loaded, out / "models.png")
        _models_table(loaded, out)
    return out


def _load(name: str, experiment: ExperimentConfig, workdir: Path) -> Retrained:
    from ionops.datasets.store import read_attributes
    from ionops.hpo.outcome import load_outcome
    from ionops.hpo.retrain import retrain_folder
    from ionops.hpo.trainable import PER_SAMPLE_FILE
    from ionops.training.checkpoint import load_checkpoint
    from ionops.workdir import ensure_dataset

    folder = retrain_folder(workdir, name)
    if not (folder / "summary.json").exists():
        raise UserError(
            f"no finished retraining in {folder}: run `ionops retrain` with the same arguments"
        )
    state = json.loads((folder / "retrain.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    seeds = state["seeds"]
    seed = int((state.get("model") or {}).get("seed", seeds[0]))  # the registered one
    checkpoint = load_checkpoint(folder / f"seed-{seed}" / "checkpoint.pt")
    per_sample = []
    for seed in seeds:
        per_sample.append(_per_sample(folder / f"seed-{seed}" / PER_SAMPLE_FILE))
    dataset = ensure_dataset(experiment, workdir)
    state_names = list(read_attributes(dataset)["state_names"])
    recorded = Path(state["search"])  # absolute: where the working folder was when retrained
    here = workdir / "searches" / recorded.name  # where it is now, if it moved
    search = load_outcome(here if (here / "search.json").exists() else recorded)
    return Retrained(name, experiment, folder, state, summary, checkpoint, per_sample, dataset,
                     state_names, search.trials, search.metric, seed)  # fmt: skip


def _check_writable(out: Path) -> None:
    """The report's folder, made and written to once before any figure is drawn."""
    probe = out / f".ionops-write-check-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc}); give a "
                        "folder you can write to") from None  # fmt: skip


def _per_sample(path: Path) -> dict[str, dict[str, Any]]:
    """A seed's per-sample errors, read with ``weights_only``; anything else a clear error."""
    import torch

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        return {split: {key: value.numpy() for key, value in errors.items()}
                for split, errors in raw.items()}  # fmt: skip
    except FileNotFoundError:
        raise UserError(f"no per-sample errors at {path}: run `ionops retrain` again") from None
    except Exception as exc:  # torch refuses a pickle that would run code, and foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not per-sample errors ionops wrote ({first[:200]}): refusing "
                        "it; run `ionops retrain` again with --overwrite") from None  # fmt: skip


def _training_figure(item: Retrained, path: Path) -> Path:
    import matplotlib.pyplot as plt

    history = item.checkpoint["history"]
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    epochs = [row["epoch"] for row in history]
    axis.plot(epochs, [row["train_loss"] for row in history], label="training loss")
    for metric in item.family.summary_metrics:
        rows = [(row["epoch"], row[f"test/{metric}"]) for row in history if f"test/{metric}" in row]
        if rows:
            x, y = zip(*rows, strict=True)
            axis.plot(x, y, label=f"test {item.family.metric_of(metric).label}")
    axis.set(xlabel="epoch", ylabel="error", yscale="log",
             title=f"{item.name}: training of seed {item.seed} (registered: best by "
                   "validation)")  # fmt: skip
    axis.legend()
    return save_figure(figure, path, facts={"seed": item.seed, "epochs": len(history)})


def state_metric(item: Retrained) -> str | None:
    """The metric drawn per state variable: the search's where it has one value per state,
    else the first such metric the family declares (None: it has none)."""
    family = item.family
    if family.metric_of(family.metric).per_state:
        return family.metric
    return next((m.name for m in family.metrics if m.per_state), None)


def test_errors(item: Retrained, metric: str | None = None) -> np.ndarray:
    """Per-sample, per-variable test error of ``metric`` (the family's by default), mean over
    seeds: (n, S)."""
    metric = metric or item.family.metric
    return np.mean([seed["test"][metric] for seed in item.per_sample], axis=0)


def _variables_figure(item: Retrained, path: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    metric = state_metric(item)
    if metric is None:
        return []
    errors = test_errors(item, metric)
    names = item.state_names
    figure, axis = plt.subplots(figsize=(max(6.4, 0.35 * len(names) + 2), 4.2))
    columns = [errors[:, k][np.isfinite(errors[:, k])] for k in range(len(names))]
    draw_groups(axis, columns, names)
    axis.set(yscale="log", ylabel=f"test {item.family.metric_of(metric).label} "
             "per sample (mean over seeds)",
             title=f"{item.name}: per state variable")  # fmt: skip
    axis.tick_params(axis="x", labelrotation=90 if len(names) > 8 else 0)
    counts = {name: len(column) for name, column in zip(names, columns, strict=True)}
    return [save_figure(figure, path, facts={"states": names, "samples": counts})]


def _model_rows(loaded: list[Retrained]) -> list[dict[str, Any]]:
    rows = []
    for item in sorted(loaded, key=lambda r: len(r.state_names)):
        mean_std = item.summary["mean_std"]
        rows.append({
            "name": item.name, "n_states": len(item.state_names),
            "parameters": item.summary["parameter_count"],
            "metric": item.family.metric_of(item.family.metric),
            "test_error": mean_std[f"test/{item.family.metric}"], "peak_memory_bytes":
            mean_std["peak_memory_bytes"], "train_seconds": mean_std["train_seconds"],
        })  # fmt: skip
    return rows


def _models_figure(loaded: list[Retrained], path: Path) -> Path:
    import matplotlib.pyplot as plt

    rows = _model_rows(loaded)
    x = [r["n_states"] for r in rows]
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    labels = {r["metric"].label for r in rows}  # each family's own metric
    error = f"test {labels.pop()}" if len(labels) == 1 else "test error (each family's metric)"
    panels = (("test_error", error, 1.0), ("peak_memory_bytes", "peak memory (MiB)", 2**-20),
              ("train_seconds", "training time (s)", 1.0))  # fmt: skip
    for axis, (key, label, scale) in zip(axes[[0, 2, 3]], panels, strict=True):
        mean = [r[key][0] * scale for r in rows]
        spread = [r[key][1] * scale for r in rows]
        axis.errorbar(x, mean, yerr=spread, marker="o", capsize=3)
        axis.set(xlabel="state variables", ylabel=label)
    axes[1].plot(x, [r["parameters"] for r in rows], marker="o")
    axes[1].set(xlabel="state variables", ylabel="parameters")
    for row in rows:
        axes[0].annotate(row["name"], (row["n_states"], row["test_error"][0]), fontsize=8)
    return save_figure(figure, path)


def _models_table(loaded: list[Retrained], out: Path) -> None:
    rows = _model_rows(loaded)
    header = ("name,n_states,parameters,test_metric,test_error_mean,test_error_std,"
              "peak_memory_mib_mean,train_seconds_mean")  # fmt: skip
    lines, markdown = (
        [header],
        [
            "| model | state variables | parameters | test error (the family's metric) | peak "
            "memory | training time |",
            "|---|---|---|---|---|---|",
        ],
    )
    for r in rows:
        memory = r["peak_memory_bytes"][0] / 2**20
        metric, (mean, spread), seconds = r["metric"], r["test_error"], r["train_seconds"][0]
        lines.append(f"{r['name']},{r['n_states']},{r['parameters']},{metric.name},{mean!r},"
                     f"{spread!r},{memory:.1f},{seconds:.1f}")  # fmt: skip
        markdown.append(
            f"| {r['name']} | {r['n_states']} | {r['parameters']:,} | {metric.format(mean)} ± "
            f"{metric.format(spread)} ({metric.label}) | {memory:,.0f} MiB | {seconds:,.0f} s |"
        )
    write_atomic(out / "models.csv", "\n".join(lines) + "\n")
    write_atomic(out / "models.md", "\n".join(markdown) + "\n")
