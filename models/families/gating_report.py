"""The gating-RNN family's report: the registered seed's runs against the model, and for a
second pass the currents its retrained gates give against the first pass's.

- ``runs.png``: V and Ca_i of the first validation segment predicted from its first state
  (the training's ``predictor``) against the recording;
- ``currents.png`` (second pass): each current of the model over the same recording, from the
  retrained gating layer and from the original one (both driven by the recorded observables;
  the other states N2's);
- ``tables.md``: V RMSE and APD90 error, mean ± std over the seeds; for a second pass, each
  current's change (its mean |I| over the recording, retrained against original) per seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ionops.plotting import mean_std, save_figure
from ionops.workdir import write_atomic


def figures(item: Any, folder: Path) -> list[Path]:
    """The figures and table of ``item`` (a :class:`ionops.hpo.report.Retrained`)."""
    from ionops.models.families.gating_learning import GatingObjective

    family = item.family
    data, model = item.registered()
    objective = GatingObjective(data, family.own_trial(item.experiment, data))
    runs, lengths = objective.run(model, "validation")
    out = [_runs(item, data, runs[0], lengths[0], folder / "runs.png")]
    changes: list[dict[str, float]] = []
    if model.second_pass:
        currents = [current_pair(model, data) for model in _seed_models(item, family)]
        out.append(_currents(item, data, currents[0], folder / "currents.png"))
        changes = [change(pair) for pair in currents]
    out.append(_tables(item, changes, folder / "tables.md"))
    return out


def _seed_models(item: Any, family: Any) -> list[Any]:
    """Every seed's network (the registered one first)."""
    from ionops.training.checkpoint import load_checkpoint

    models = []
    for path in item.seed_checkpoints():
        state = load_checkpoint(path)
        model = family.build(state["arguments"])
        model.load_state_dict(state["model"])
        models.append(model.eval())
    return models


def current_pair(model: Any, data: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each current over the first validation recording after its first :data:`SETTLE_MS`
    (the hidden gates start from their steady state): (from the retrained gates, from the
    original ones), both through the ionic model the first pass learned."""
    import torch

    from ionops.datasets.ionic import get_ionic_model
    from ionops.models.families.gating import SETTLE_MS
    from ionops.models.families.gating_learning import observed_run, with_n2_hidden

    attributes = data.attributes
    ionic = get_ionic_model(str(attributes["model"]))
    states = torch.as_tensor(data.states["validation"][:1].transpose(0, 2, 1).astype(np.float64))
    current = torch.as_tensor(data.stimulus["validation"][:1].astype(np.float64))
    amplitude = float(attributes["stimulus_amplitude"]) or 1.0
    scaled = model.scaling.forward(states).float()
    network = model.network
    with torch.no_grad():
        _, retrained, original = observed_run(model, scaled, current.float() / amplitude)
        others = network.phi3(
            network.lstm(
                network.phi2(network.n2_inputs(scaled, current.float() / amplitude, retrained)),
                network.memory(scaled[:, 0]),
            )[0]
        )
    parameters = ionic.parameter_vector(model.model_parameters(attributes))
    out: dict[str, list[np.ndarray]] = {}
    for gates in (retrained, original):
        full = with_n2_hidden(network, scaled, gates, others)
        physical = model.scaling.inverse(full.double())[0].numpy().T
        for name, value in ionic.current_values(physical, parameters).items():
            out.setdefault(name, []).append(np.asarray(value, dtype=np.float64))
    settle = min(round(SETTLE_MS / float(attributes["dt_ms"])), states.shape[1] // 2)
    return {name: (pair[0][settle:], pair[1][settle:]) for name, pair in out.items()}


def change(pair: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Each current's relative change of mean |I|, retrained against original."""
    out = {}
    for name, (retrained, original) in pair.items():
        base = float(np.mean(np.abs(original)))
        out[name] = float(np.mean(np.abs(retrained))) / base - 1.0 if base > 0 else float("nan")
    return out


def _runs(item: Any, data: Any, run: np.ndarray, steps: int, path: Path) -> Path:
    import matplotlib.pyplot as plt

    names = list(data.attributes["state_names"])
    units = list(data.attributes["state_units"])
    time = data.time[:steps]
    shown = [names.index(n) for n in ("V", "Ca_i") if n in names] or [0]
    figure, axes = plt.subplots(len(shown), 1, figsize=(10.0, 2.8 * len(shown)), sharex=True,
                                squeeze=False)  # fmt: skip
    cycle = float(data.cycle_length["validation"][0])
    for axis, index in zip(axes[:, 0], shown, strict=True):
        axis.plot(time, data.states["validation"][0, index, :steps], color="C0",
                  label="recording (ionic model)")  # fmt: skip
        axis.plot(time, run[index, :steps], "--", color="C1", label="gating network")
        axis.set(ylabel=f"{names[index]} ({units[index]})")
    axes[0, 0].legend(loc="upper right")
    axes[-1, 0].set(xlabel="t (ms)")
    figure.suptitle(f"{item.name}: validation segment at {cycle:g} ms, seed {item.seed}")
    return save_figure(figure, path, facts={"cycle_length_ms": cycle, "seed": item.seed})


def _currents(item: Any, data: Any, pair: dict[str, tuple[np.ndarray, np.ndarray]],
              path: Path) -> Path:  # fmt: skip
    import matplotlib.pyplot as plt

    names = list(pair)
    columns = 3
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(12.0, 2.2 * rows), sharex=True,
                                squeeze=False)  # fmt: skip
    kept = next(iter(pair.values()))[0].size  # the recording after it settled
    time = data.time[data.time.size - kept :]
    span = time <= time[0] + 2.0 * float(data.cycle_length["validation"][0])
    for axis, name in zip(axes.ravel(), names, strict=False):
        retrained, original = pair[name]
        axis.plot(time[span], original[span], color="C0", label="first pass")
        axis.plot(time[span], retrained[span], color="C3", label="retrained")
        axis.set(title=name)
    for axis in axes.ravel()[len(names) :]:
        axis.set_visible(False)
    axes[0, 0].legend(loc="upper right", fontsize="small")
    figure.suptitle(f"{item.name}: currents from the retrained gates against the first pass's")
    return save_figure(figure, path, facts={"currents": names})


def _tables(item: Any, changes: list[dict[str, float]], path: Path) -> Path:
    tests = [seed["test"] for seed in item.per_sample]
    lines = [f"# {item.name}: {len(tests)} seeds", "", "| error | mean ± std over seeds |",
             "|---|---|"]  # fmt: skip
    for key, label in (("v_rmse", "V RMSE (mV)"), ("apd90_error", "APD90 error (ms)")):
        values = [float(np.mean(t[key])) for t in tests if key in t]
        lines.append(f"| {label} | {mean_std(values)} |")
    if changes:
        lines += ["", "Change of each current's mean |I| (retrained against the first pass), "
                  "per seed:", "", "| current | " + " | ".join(
                      f"seed {k}" for k in range(len(changes))) + " |",
                  "|---|" + "---|" * len(changes)]  # fmt: skip
        for name in changes[0]:
            lines.append(f"| {name} | " + " | ".join(f"{c[name]:+.1%}" for c in changes) + " |")
    write_atomic(path, "\n".join(lines) + "\n")
    return path
