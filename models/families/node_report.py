"""The neural-ODE family's report: the paper's figure panels and Tables 2 and 3.

- ``forecast.png`` (the paper's Figs. 1, 3-7 layout): spike raster, V(t) against the solver,
  the V-n phase portrait (top); each gate against the solver (bottom); the registered seed's
  forecast of the test trajectory from its initial state, the training window shaded;
- ``tables.md``: every seed's spike scores (Table 2) and RMSE per state over the
  extrapolation window and after ``t_end_ms`` (Table 3), mean ± std over the seeds, with
  how many seeds leave a score undefined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ionops.plotting import mean_std, save_figure
from ionops.workdir import write_atomic

SPIKE_ROWS = (("f1", "spike F1", ""), ("precision", "precision", ""), ("recall", "recall", ""),
              ("phase_drift", "phase drift", " ms"), ("isi_error", "ISI error", " ms"),
              ("amplitude_deviation", "amplitude deviation", " mV"),
              ("amplitude_error", "amplitude preservation error", " %"))  # fmt: skip


def figures(item: Any, folder: Path) -> list[Path]:
    """``forecast.png`` and ``tables.md`` of ``item`` (a :class:`ionops.hpo.report.Retrained`)."""
    from ionops.models.families.node_learning import NodeObjective

    family = item.family
    data, model = item.registered()
    trial = family.own_trial(item.experiment, data)
    objective = NodeObjective(data, trial)
    predicted = objective.trajectory(model, "test")
    return [_forecast_figure(item, data, predicted, folder / "forecast.png"),
            _tables(item, folder / "tables.md")]  # fmt: skip


def _forecast_figure(item: Any, data: Any, predicted: np.ndarray, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from ionops.models.spikes import peaks

    attributes = data.attributes
    time, truth = data.time["test"], data.states["test"]
    t_end, window = float(attributes["t_end_ms"]), float(attributes["window_ms"])
    short = time <= t_end
    names, units = data.state_names, attributes["state_units"]
    threshold = float(item.experiment.model.spike_threshold)
    gates = list(range(1, len(names)))
    columns = max(3, len(gates))
    figure, axes = plt.subplots(2, columns, figsize=(4.2 * columns, 7.2))
    raster, voltage, phase = axes[0, 0], axes[0, 1], axes[0, 2]
    finite = np.where(np.isfinite(predicted[0]), predicted[0], -np.inf)
    for row, values in enumerate((truth[0], finite)):
        found, _ = peaks(time[short], values[short], threshold)
        raster.vlines(found, row + 0.6, row + 1.4, color=f"C{row}")
    raster.set(yticks=[1, 2], yticklabels=["solver", "neural ODE"], xlabel="t (ms)",
               xlim=(0, t_end), title="spikes")  # fmt: skip
    for axis in (raster, voltage, *axes[1, : len(gates)]):
        axis.axvspan(0, window, color="0.9", zorder=0)
    voltage.plot(time[short], truth[0, short], label="solver", color="C0")
    voltage.plot(time[short], predicted[0, short], "--", label="neural ODE", color="C1")
    voltage.set(xlabel="t (ms)", ylabel=f"{names[0]} ({units[0]})", title=f"{names[0]}(t)")
    voltage.legend(loc="lower right")
    if gates:
        phase.plot(truth[0, short], truth[1, short], label="solver", color="C0")
        phase.plot(predicted[0, short], predicted[1, short], "--", label="neural ODE",
                   color="C1")  # fmt: skip
        phase.set(xlabel=f"{names[0]} ({units[0]})", ylabel=names[1], title="phase portrait")
    for column, state in enumerate(gates):
        axis = axes[1, column]
        axis.plot(time[short], truth[state, short], color="C0")
        axis.plot(time[short], predicted[state, short], "--", color="C1")
        axis.set(xlabel="t (ms)", ylabel=names[state], title=f"{names[state]}(t)")
    for axis in axes.flat[len(gates) + columns :]:
        axis.set_visible(False)
    figure.suptitle(f"{item.name}: test forecast of seed {item.seed} (the registered one; "
                    f"window [0, {window:g}] ms shaded)")  # fmt: skip
    return save_figure(figure, path, facts={"seed": item.seed, "states": list(names)})


def _tables(item: Any, path: Path) -> Path:
    tests = [seed["test"] for seed in item.per_sample]
    names = item.state_names
    lines = [f"# {item.name}: {len(tests)} seeds, test trajectory", "",
             "Table 2: spikes over the extrapolation window (mean ± std over seeds)", "",
             "| metric | value |", "|---|---|"]  # fmt: skip
    for key, label, unit in SPIKE_ROWS:
        if key in tests[0]:
            scale = 100.0 if unit == " %" else 1.0
            values = [float(np.asarray(t[key]).reshape(-1)[0]) * scale for t in tests]
            lines.append(f"| {label}{unit and f' ({unit.strip()})'} | {mean_std(values)} |")
    lines += ["", "Table 3: RMSE per state (mean ± std over seeds)", "",
              "| state | extrapolation window | after t_end |", "|---|---|---|"]  # fmt: skip
    for index, name in enumerate(names):
        cells = []
        for key in ("rmse", "long_rmse"):
            values = [float(np.asarray(t[key]).reshape(-1, len(names))[0, index])
                      for t in tests if key in t]  # fmt: skip
            cells.append(mean_std(values) if values else "-")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    write_atomic(path, "\n".join(lines) + "\n")
    return path
