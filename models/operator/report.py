"""The report figures of a retrained operator surrogate (the FNO paper's Figs. 3 and 5).

- ``subsets.png`` (Fig. 3): the family's per-sample test error by subset, bars and boxes;
- ``examples.png`` (Fig. 5): the median test sample of each subset predicted
  against the solver, with the point-wise error.

The figures every family shares (training curves, per-variable errors) are
drawn by :mod:`ionops.hpo.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ionops.plotting import save_figure


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


def _subsets_figure(item: Any, data: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    errors = np.nanmean(_test_errors(item), axis=1)
    labels = data.splits["test"].subset
    names = data.subset_names
    present = [k for k in range(len(names)) if np.any(labels == k)]
    groups = [errors[labels == k] for k in present]
    figure, (bars, boxes) = plt.subplots(1, 2, figsize=(10, 4.2))
    means = [float(np.nanmean(g)) for g in groups]
    bars.bar([names[k] for k in present], means, color="tab:blue")
    label = item.family.metric_of(item.family.metric).label
    bars.set(ylabel=f"mean test {label}", title="by subset (mean over samples)")
    boxes.boxplot(groups, tick_labels=[names[k] for k in present])
    boxes.set(yscale="log", ylabel=f"test {label} per sample", title="distribution")
    figure.suptitle(item.name)
    return save_figure(figure, path)


def _examples_figure(item: Any, data: Any, path: Path) -> Path:
    import warnings

    import matplotlib.pyplot as plt

    from ionops.serving.surrogate import Surrogate

    surrogate = Surrogate(item.checkpoint, str(item.folder))
    split = data.splits["test"]
    errors = np.nanmean(_test_errors(item), axis=1)
    names = data.subset_names
    present = [k for k in range(len(names)) if np.any(split.subset == k)]
    time, state = data.time, data.state_names[0]
    figure, axes = plt.subplots(2, len(present), figsize=(3.6 * len(present), 5.4),
                                squeeze=False, sharex=True)  # fmt: skip
    for column, subset in enumerate(present):
        members = np.flatnonzero(split.subset == subset)
        index = members[np.argsort(errors[members])[len(members) // 2]]  # the median sample
        with warnings.catch_warnings():  # a test sample outside the trained range is drawn too
            warnings.simplefilter("ignore")
            sample = {"amplitude": split.amplitude[index : index + 1],
                      "t_stim": split.t_stim[index : index + 1]}  # fmt: skip
            predicted = surrogate.predict(sample).states[0, 0]
        truth = split.targets[index, 0].numpy()
        top, bottom = axes[0, column], axes[1, column]
        top.plot(time, truth, label="solver", color="black")
        top.plot(time, predicted, label=surrogate.family.name, color="tab:red", linestyle="--")
        top.set_title(f"{names[subset]}: i={split.amplitude[index]:.3g}, "
                      f"T={split.t_stim[index]:.3g} ms", fontsize=9)  # fmt: skip
        bottom.plot(time, np.abs(predicted - truth), color="tab:gray")
        bottom.set(xlabel="t (ms)", yscale="log")
    axes[0, 0].set_ylabel(state)
    axes[1, 0].set_ylabel(f"|error| in {state}")
    axes[0, 0].legend()
    figure.suptitle(f"{item.name}: median test sample of each subset")
    return save_figure(figure, path)
