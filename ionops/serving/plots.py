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
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
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
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(
        handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=7, frameon=False
    )  # below the panels, off the curves
    compared = " (dashed: solver)" if prediction.solver_states is not None else ""
    drawn = (f"; {len(shown)} of {len(prediction)} samples" if len(shown) < len(prediction)
             else "")  # fmt: skip
    states = (f"; states {', '.join(names)} of {len(prediction.state_names)}"
              if len(names) < len(prediction.state_names) else "")  # fmt: skip
    figure.suptitle(f"surrogate prediction{compared}{drawn}{states}", fontsize=10)
    figure.tight_layout(rect=(0, 0.08 + 0.04 * ((len(labels) - 1) // 3), 1, 1))
    facts = {"samples": len(shown), "of_samples": len(prediction), "states": list(names)}
    return save_figure(figure, path, facts=facts, tight=False)
