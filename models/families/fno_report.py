"""The FNO family's report figures (the paper's Figs. 3 and 5) of a finished retraining.

- ``subsets.png`` (Fig. 3): per-sample test relative L2 by subset, bars and boxes;
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
    """Both figures for ``item`` (a :class:`ionops.hpo.report.Retrained`) into ``folder``."""
    from ionops.models.registry import get_family

    data = get_family("fno").load_data(item.experiment, item.dataset, splits=("test",))
    return [
        _subsets_figure(item, data, folder / "subsets.png"),
        _examples_figure(item, data, folder / "examples.png"),
    ]


def _test_errors(item: Any) -> np.ndarray:
    """Per-sample, per-variable test relative L2, averaged over seeds: (n_test, n_states)."""
    return np.mean([seed["test"]["rel_l2"] for seed in item.per_sample], axis=0)


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
    bars.set(ylabel="mean test relative L2", title="by subset (mean over samples)")
    boxes.boxplot(groups, tick_labels=[names[k] for k in present])
    boxes.set(yscale="log", ylabel="test relative L2 per sample", title="distribution")
    figure.suptitle(item.name)
    return save_figure(figure, path)


def _examples_figure(item: Any, data: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt
    import torch

    from ionops.models.registry import build_surrogate

    model = build_surrogate(item.checkpoint["family"], item.checkpoint["arguments"])
    model.load_state_dict(item.checkpoint["model"])
    model.eval()
    split, normalizer = data.splits["test"], data.target_normalizer
    errors = np.nanmean(_test_errors(item), axis=1)
    names = data.subset_names
    present = [k for k in range(len(names)) if np.any(split.subset == k)]
    time, state = data.time, data.state_names[0]
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
    return save_figure(figure, path)
