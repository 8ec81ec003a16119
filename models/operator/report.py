"""The report figures of a retrained operator surrogate (the FNO paper's Figs. 3 and 5).

- ``subsets.png`` (Fig. 3): the family's per-sample test error by subset, bars and boxes;
- ``examples.png`` (Fig. 5): the median test sample of each subset predicted
  against the solver, every state (or those ``ionops report --states`` names),
  with the point-wise error, by the registered seed.

Each figure's facts (seed, states, samples per subset, how each was drawn) are
written beside it as JSON.

The figures every family shares (training curves, per-variable errors) are
drawn by :mod:`ionops.hpo.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ionops.plotting import draw_groups, save_figure


def figures(item: Any, folder: Path) -> list[Path]:
    """Both figures for ``item`` (a :class:`ionops.hpo.report.Retrained`) into ``folder``.

    The test split is read in physical units and the examples are predicted as ``ionops
    predict`` would, with the normalisation the checkpoint carries: the figures never
    depend on how a family or an experiment would normalise the data now.
    """
    from ionops.datasets.loading import load_dataset

    data = load_dataset(item.dataset, "none", splits=("test",))
    return [
        _subsets_figure(item, data, folder / "subsets.png"),
        _examples_figure(item, data, folder / "examples.png"),
    ]


def _test_errors(item: Any) -> np.ndarray:
    """Per-sample, per-variable test error of the family's metric, averaged over seeds:
    (n_test, n_states)."""
    return np.mean([seed["test"][item.family.metric] for seed in item.per_sample], axis=0)


def _training_subsets(item: Any) -> set[int]:
    """The subsets the training split holds (labels only: the trajectories are not read)."""
    from ionops.datasets.store import open_file

    with open_file(item.dataset) as handle:
        return {int(k) for k in np.unique(handle["train"]["subset"][...])}


def _subsets_figure(item: Any, data: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    errors = np.nanmean(_test_errors(item), axis=1)
    labels = data.splits["test"].subset
    names = data.subset_names
    trained = _training_subsets(item)
    present = [k for k in range(len(names)) if np.any(labels == k)]
    groups = [errors[labels == k] for k in present]
    ticks = [names[k] + ("" if k in trained else "\n(not in training)") for k in present]
    figure, (bars, boxes) = plt.subplots(1, 2, figsize=(10, 4.2))
    means = [float(np.nanmean(g)) for g in groups]
    bars.bar(ticks, means, color="tab:blue")
    label = item.family.metric_of(item.family.metric).label
    bars.set(ylabel=f"mean test {label}", title="by subset (mean over samples and seeds)")
    drawn = draw_groups(boxes, groups, ticks)
    boxes.set(yscale="log", ylabel=f"test {label} per sample",
              title="distribution (1-2 samples: points)")  # fmt: skip
    figure.suptitle(item.name)
    facts = {"subsets": {
        names[k]: {"test_samples": len(group), "drawn_as": how, "in_training": k in trained}
        for k, group, how in zip(present, groups, drawn, strict=True)
    }}  # fmt: skip
    return save_figure(figure, path, facts=facts)


def _examples_figure(item: Any, data: Any, path: Path) -> Path:
    import warnings

    import matplotlib.pyplot as plt

    from ionops.serving.surrogate import Surrogate

    surrogate = Surrogate(item.checkpoint, f"{item.folder} (seed {item.seed})")
    split = data.splits["test"]
    errors = np.nanmean(_test_errors(item), axis=1)
    names = data.subset_names
    present = [k for k in range(len(names)) if np.any(split.subset == k)]
    states = item.show_states or list(data.state_names)
    rows = [data.state_names.index(state) for state in states]
    time = data.time
    figure, axes = plt.subplots(len(rows), len(present),
                                figsize=(3.6 * len(present), 0.6 + 1.9 * len(rows)),
                                squeeze=False, sharex=True)  # fmt: skip
    drawn = {}
    for column, subset in enumerate(present):
        members = np.flatnonzero(split.subset == subset)
        index = members[np.argsort(errors[members])[len(members) // 2]]  # the median sample
        drawn[names[subset]] = int(index)
        with warnings.catch_warnings():  # a test sample outside the trained range is drawn too
            warnings.simplefilter("ignore")
            sample = {"amplitude": split.amplitude[index : index + 1],
                      "t_stim": split.t_stim[index : index + 1]}  # fmt: skip
            predicted = surrogate.predict(sample).states[0]
        for line, row in enumerate(rows):
            truth = split.targets[index, row].numpy()
            axis = axes[line, column]
            axis.plot(time, truth, label="solver", color="black")
            axis.plot(time, predicted[row], label=surrogate.family.name, color="tab:red",
                      linestyle="--")  # fmt: skip
            error = axis.twinx()
            error.plot(time, np.abs(predicted[row] - truth), color="tab:gray", linewidth=0.8,
                       label="|error|")  # fmt: skip
            error.tick_params(labelsize=7, colors="tab:gray")
            if column == 0:
                axis.set_ylabel(data.state_names[row])
        axes[0, column].set_title(f"{names[subset]}: i={split.amplitude[index]:.3g}, "
                                  f"T={split.t_stim[index]:.3g} ms", fontsize=9)  # fmt: skip
        axes[-1, column].set_xlabel("t (ms)")
    axes[0, 0].legend(fontsize=8)
    figure.suptitle(f"{item.name}: median test sample of each subset, seed {item.seed} (the "
                    "registered one); grey, right axis: |error|")  # fmt: skip
    facts = {"seed": item.seed, "states": states, "samples": drawn}
    return save_figure(figure, path, facts=facts)
