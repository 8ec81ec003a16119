"""The MLP family's report figures (the paper's Figs. 1, 2 and 3).

- ``shapes.png`` (Fig. 2): validation MAE of every trial of the search by
  shape and neuron count;
- ``pareto.png`` (Fig. 3): validation MAE against the time to evaluate
  100,000 trajectories, every trial of the search, with the Pareto front and
  explicit Euler at Δt = 0.1 ms (the paper's baseline), the benchmark's kernel
  timed in this run on this machine's cores (:mod:`.mlp_baseline`);
- ``examples.png`` (Fig. 1): test trajectories of the retrained surrogate
  (the registered seed): solver, surrogate and their difference.

Trial times come from the search itself (each trial's last evaluation of its
validation split, scaled to 100,000 trajectories); trials that ran side by
side shared the machine, so the figure ranks them roughly. The benchmark
``benchmarks/mlp_surrogates.py`` measures them one at a time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ionops.models.families.mlp_baseline import PER, euler_baseline
from ionops.plotting import draw_groups, save_figure


def figures(item: Any, folder: Path) -> list[Path]:
    """The three figures of ``item`` (a :class:`ionops.hpo.report.Retrained`) into ``folder``."""
    from ionops.models.registry import get_family

    data = get_family("mlp").load_data(item.experiment, item.dataset,
                                       splits=("train", "validation", "test"))  # fmt: skip
    return [
        _shapes_figure(item, folder / "shapes.png"),
        _pareto_figure(item, data, folder / "pareto.png"),
        _examples_figure(item, data, folder / "examples.png"),
    ]


def _finished(item: Any) -> list[Any]:
    return [t for t in item.trials if t.outcome in ("completed", "stopped")
            and math.isfinite(t.metric)]  # fmt: skip


def _shapes_figure(item: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    trials = _finished(item)
    shapes = sorted({str(t.point["shape"]) for t in trials})
    figure, (scatter, boxes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for shape in shapes:
        members = [t for t in trials if t.point["shape"] == shape]
        scatter.scatter([t.point["neurons"] for t in members], [t.metric for t in members],
                        label=shape, s=18)  # fmt: skip
    scatter.set(xlabel="neurons (sum of hidden widths)", ylabel=f"{item.search_metric}",
                yscale="log", title="every trial by size and shape")  # fmt: skip
    scatter.legend(fontsize=8)
    groups = [np.array([t.metric for t in trials if t.point["shape"] == s]) for s in shapes]
    drawn = draw_groups(boxes, groups, shapes) if groups else []
    boxes.set(yscale="log", ylabel=item.search_metric, title="by shape (1-2 trials: points)")
    boxes.tick_params(axis="x", labelrotation=30)
    figure.suptitle(f"{item.name}: the search's trials ({len(trials)})")
    counts = {shape: {"trials": len(group), "drawn_as": how}
              for shape, group, how in zip(shapes, groups, drawn, strict=True)}  # fmt: skip
    facts = {"trials": len(trials), "shapes": counts}
    return save_figure(figure, path, facts=facts)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (time, error) points no other point beats in both, by increasing time."""
    front: list[tuple[float, float]] = []
    for seconds, error in sorted(points):
        if not front or error < front[-1][1]:
            front.append((seconds, error))
    return front


def _pareto_figure(item: Any, data: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    n = len(data.splits["validation"])
    trials = [t for t in _finished(item) if math.isfinite(t.eval_seconds)]
    points = [(t.eval_seconds * PER / n, t.metric) for t in trials]
    figure, axis = plt.subplots(figsize=(6.8, 4.6))
    if points:
        times, errors = zip(*points, strict=True)
        axis.scatter(times, errors, s=14, color="tab:blue", label="trials")
        front_times, front_errors = zip(*pareto_front(points), strict=True)
        axis.plot(front_times, front_errors, color="tab:red", label="Pareto front")
    baseline = euler_baseline(data)
    label = f"{baseline.what}: {baseline.seconds:.3g} s, MAE {baseline.error:.1e}"
    axis.axvline(baseline.seconds, color="black", linestyle="--", label=label)
    axis.axhline(baseline.error, color="black", linestyle="--")
    axis.set(xscale="log", yscale="log", xlabel="seconds per 100,000 trajectories",
             ylabel=item.search_metric)  # fmt: skip
    axis.set_title(f"{item.name}: error against inference time")
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def predicted_trajectories(checkpoint: dict[str, Any], data: Any, split: str) -> Any:
    """The checkpoint's surrogate on a trajectory split: (n, S, n_t) tensor, physical units."""
    import torch

    from ionops.models.families.mlp_learners import (
        point_inputs,
        predict_points,
        predict_trajectories,
        rollout,
        stimulus_columns,
    )
    from ionops.models.registry import build_surrogate

    model = build_surrogate(checkpoint["family"], checkpoint["arguments"])
    model.load_state_dict(checkpoint["model"])
    model.eval()
    part = data.splits[split]
    learner = (checkpoint.get("surrogate") or {}).get("learner")
    with torch.no_grad():
        if learner == "trajectory":
            return predict_trajectories(model, part, point_inputs(data), len(data.state_names))
        if not checkpoint["arguments"]["residual"]:
            return predict_points(model, part, point_inputs(data))
        infinite = torch.full((len(data.state_names),), math.inf)
        trajectory, _ = rollout(model, part, stimulus_columns(data), len(data.state_names),
                                -infinite, infinite)  # fmt: skip
        return trajectory


def _examples_figure(item: Any, data: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    split = data.splits["test"]
    predicted = predicted_trajectories(item.checkpoint, data, "test").numpy()
    truth = split.states.numpy()
    time_ms = split.time
    names = data.state_names
    if len(split) == 1 or not data.varied:  # one trajectory: lines
        figure, axes = plt.subplots(2, len(names), figsize=(5 * len(names), 5.4), squeeze=False)
        for k, name in enumerate(names):
            axes[0, k].plot(time_ms, truth[0, k], color="black", label="solver")
            axes[0, k].plot(time_ms, predicted[0, k], "--", color="tab:red", label="MLP")
            axes[0, k].set(ylabel=name)
            axes[1, k].plot(time_ms, np.abs(predicted[0, k] - truth[0, k]), color="tab:gray")
            axes[1, k].set(xlabel="t (ms)", ylabel=f"|error| in {name}", yscale="log")
        axes[0, 0].legend()
    else:  # many trajectories: maps over samples (sorted by the first varied input) and time
        first = data.input_names.index(data.varied[0])
        order = np.argsort(split.inputs[:, first].numpy())[:: max(1, len(split) // 200)]
        figure, axes = plt.subplots(len(names), 3, figsize=(13, 3.4 * len(names)), squeeze=False)
        for k, name in enumerate(names):
            panels = (truth[order, k], predicted[order, k], np.abs(predicted - truth)[order, k])
            for column, (values, title) in enumerate(zip(panels, ("solver", "MLP", "|error|"),
                                                          strict=True)):  # fmt: skip
                image = axes[k, column].imshow(
                    values, aspect="auto", origin="lower", cmap="viridis",
                    extent=(time_ms[0], time_ms[-1], 0, len(order)),
                )  # fmt: skip
                figure.colorbar(image, ax=axes[k, column])
                axes[k, column].set(title=f"{name}: {title}", xlabel="t (ms)",
                                    ylabel=f"samples by {data.varied[0]}")  # fmt: skip
    figure.suptitle(f"{item.name}: test trajectories (seed {item.state['seeds'][0]})")
    return save_figure(figure, path)
