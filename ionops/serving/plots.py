"""The figure of ``ionops predict --plot``: predicted trajectories, against the solver's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ionops.plotting import save_figure

MAX_SAMPLES = 6
MAX_STATES = 4


def prediction_figure(prediction: Any, path: Path) -> Path:
    """The first states (up to four) of the first samples (up to six): prediction solid, the
    solver dashed in the same colour where compared."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = prediction.state_names[:MAX_STATES]
    units = prediction.state_units
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shown = range(min(MAX_SAMPLES, len(prediction)))
    for column, (axis, name) in enumerate(zip(axes[0], names, strict=True)):
        for sample in shown:
            colour = colours[sample % len(colours)]
            label = ", ".join(f"{k} {v[sample]:g}" for k, v in prediction.inputs.items())
            axis.plot(prediction.time, prediction.states[sample, column], color=colour,
                      label=label, linewidth=1.2)  # fmt: skip
            if prediction.solver_states is not None:
                axis.plot(prediction.time, prediction.solver_states[sample, column],
                          color=colour, linestyle="--", linewidth=1.0)  # fmt: skip
        unit = f" ({units[column]})" if column < len(units) and units[column] else ""
        axis.set_xlabel("t (ms)")
        axis.set_ylabel(f"{name}{unit}")
    axes[0][0].legend(fontsize=7)
    compared = " (dashed: solver)" if prediction.solver_states is not None else ""
    figure.suptitle(f"surrogate prediction{compared}", fontsize=10)
    return save_figure(figure, path)
