"""The splitting-PINN family's report: the registered seed's trajectory against the reference
and a table of every seed's errors.

- ``trajectory.png``: each state of the test problem, the network's (a march: at its windows'
  ends) against the reference, spikes marked;
- ``tables.md``: relative L2 per state and the spike scores, mean ± std over the seeds, with
  how many seeds leave a score undefined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ionops.plotting import mean_std, save_figure
from ionops.workdir import write_atomic

ROWS = (("f1", "spike F1"), ("precision", "spike precision"), ("recall", "spike recall"),
        ("phase_drift", "phase drift (ms)"), ("window_cost", "seconds per window"))  # fmt: skip


def figures(item: Any, folder: Path) -> list[Path]:
    """``trajectory.png`` and ``tables.md`` of ``item`` (a :class:`ionops.hpo.report.Retrained`)."""
    from ionops.models.families.splitting_learning import SplittingObjective

    family = item.family
    data, model = item.registered()
    objective = SplittingObjective(data, family.own_trial(item.experiment, data))
    times, states, _ = objective.trajectory(model, "test")
    return [_figure(item, data, times, states, folder / "trajectory.png"),
            _tables(item, folder / "tables.md")]  # fmt: skip


def _figure(item: Any, data: Any, times: np.ndarray, states: np.ndarray, path: Path) -> Path:
    import matplotlib.pyplot as plt

    names, units = data.state_names, data.attributes["state_units"]
    reference, truth = data.time["test"], data.states["test"]
    figure, axes = plt.subplots(len(names), 1, figsize=(9.0, 2.4 * len(names)), sharex=True,
                                squeeze=False)  # fmt: skip
    method = str(item.experiment.model.method)
    for index, (axis, name) in enumerate(zip(axes[:, 0], names, strict=True)):
        axis.plot(reference, truth[index], color="C0", label="reference")
        axis.plot(times, states[index], "--", color="C1", label=f"{method} PINN")
        axis.set(ylabel=f"{name} ({units[index]})")
    events = data.events["test"]
    if events.size:
        axes[0, 0].plot(events, np.full(events.size, truth[0].max()), "|", color="C0",
                        markersize=12, label="reference spikes")  # fmt: skip
    axes[0, 0].legend(loc="lower right")
    axes[-1, 0].set(xlabel="t (ms)")
    figure.suptitle(f"{item.name}: the test problem, seed {item.seed} (the registered one)")
    return save_figure(figure, path, facts={"seed": item.seed, "states": list(names)})


def _tables(item: Any, path: Path) -> Path:
    tests = [seed["test"] for seed in item.per_sample]
    names = item.state_names
    lines = [f"# {item.name}: {len(tests)} seeds, the test problem against its reference", "",
             "| state | relative L2 (mean ± std) |", "|---|---|"]  # fmt: skip
    for index, name in enumerate(names):
        values = [float(np.asarray(t["rel_l2"]).reshape(-1, len(names))[0, index])
                  for t in tests]  # fmt: skip
        lines.append(f"| {name} | {mean_std(values)} |")
    lines += ["", "| score | mean ± std |", "|---|---|"]
    for key, label in ROWS:
        if key in tests[0]:
            values = [float(np.asarray(t[key]).reshape(-1)[0]) for t in tests]
            lines.append(f"| {label} | {mean_std(values)} |")
    write_atomic(path, "\n".join(lines) + "\n")
    return path
