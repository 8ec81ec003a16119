"""The gating-RNN family's targets (paper 004) on ten Tusscher 2004, M cell.

1. Generation: the paper's 101-segment dataset (300 to 800 ms in steps of 5, 20 s each) by
   ``ionops generate`` on 2 MPI ranks, timed.
2. First pass on the reduced grid (300:25:800, 21 segments: 16 training, 5 validation),
   timed (target: 30 minutes on 2 cores).
3. On the test cycle lengths (between the grid's points, never seen): 10 beats from each
   segment's first state, free-running network and converted ODE: V RMSE (target 3 mV) and
   APD90 error (target 5 ms); the converted ODE over 20 s at 500 ms (target: stable).
4. Second pass, ``--seeds`` seeds, each perturbed dataset (long QT: g_Kr x 0.5; short QT:
   g_CaL x 0.5; increased I_to: g_to x 3) and the control data itself (a second pass that
   should change nothing): the APD90 change the retrained network predicts
   against the model's (long QT target: within 10 %), and which currents the retrained gates
   raise or lower (long QT: I_Kr + I_Ks reduced in 4 of 5 seeds; I_to: the largest increase
   in 4 of 5).
5. Why: per gate, the share of the one-step change (variance of h_{i+1} - h_i over training
   samples) that the gating layer's form h_{i+1} = rho h_i + (1 - rho) h_inf leaves unexplained
   with the model's own kinetics at the step's start and at its midpoint (exact Rush-Larsen
   over the step: the best the form can do with either clock at this sampling step) and with
   the trained layer; and each trained gate run on the recorded V alone (as the second pass and
   the converted ODE run it), its RMSE over its standard deviation.

    python benchmarks/gating_rnn.py [--gate-epochs 70] [--epochs 300] [--rollout-epochs 12]
        [--seeds 5] [--drift ETA] [--second-epochs 30] [--second-pass-loss model|network]
        [--out DIR] [--reuse-first-pass]
        [--skip-generation] [--set 'model.gate_clock="midpoint"' ...]
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from ionops.config import load_experiment
from ionops.datasets.generate import generate, spec_from_config
from ionops.datasets.ionic import get_ionic_model
from ionops.models.families.gating import SETTLE_MS
from ionops.models.families.gating_learning import recorded_gates
from ionops.models.families.gating_report import change, current_pair
from ionops.models.families.gating_runs import (
    beat_onsets,
    onset_phase,
    predict_runs,
    run_errors,
    run_steps,
)
from ionops.models.gating_rnn import apd
from ionops.models.registry import get_family
from ionops.training import TrainSettings, train
from ionops.training.checkpoint import load_checkpoint

REDUCED = ("data.cycle_lengths=[300,800,25]", "data.validation=5", "model.lstm_width=32")
# "control": a second pass on the first pass's own data, which should move nothing
SCENARIOS = {"long QT": "g_Kr=0.5", "short QT": "g_CaL=0.5", "increased I_to": "g_to=3",
             "control": ""}  # fmt: skip
FAMILY = get_family("gating")


SETTINGS: list[str] = []  # --set, for both passes


def experiment(*settings: str) -> Any:
    return load_experiment("tt04-gating", overrides=[*REDUCED, *SETTINGS, *settings])


def dataset(config: Any, folder: Path) -> Path:
    from ionops.datasets.paced import KIND

    path = folder / KIND.file_name(config.data)
    generate(spec_from_config(config.data), path, progress=False)
    return path


def fit(config: Any, path: Path, checkpoint: Path, seed: int) -> tuple[Any, Any, float]:
    """Train ``config`` on ``path``; the network, the data and the seconds it took."""
    data = FAMILY.load_data(config, path)
    trial = FAMILY.own_trial(config, data)
    torch.manual_seed(seed)
    model = FAMILY.build(trial.arguments)
    settings = TrainSettings.from_config(trial.training, eval_splits=("validation",),
                                         final_splits=("test",))  # fmt: skip
    started = time.perf_counter()
    train(model, FAMILY.objective(data, trial, config), settings, family=FAMILY.name,
          arguments=trial.arguments, checkpoint=checkpoint)  # fmt: skip
    seconds = time.perf_counter() - started
    return trained_model(checkpoint), data, seconds


def trained_model(checkpoint: Path) -> Any:
    state = load_checkpoint(checkpoint)
    model = FAMILY.build(state["arguments"])
    model.load_state_dict(state["model"])
    return model.eval()


def runs(model: Any, data: Any, split: str, predictor: str, beats: int) -> list[dict[str, Any]]:
    """Each segment of ``split`` from its first state for ``beats`` beats: its errors."""
    cycles = [float(c) for c in data.cycle_length[split]]
    lengths = [run_steps(float(data.attributes["dt_ms"]), c, beats) for c in cycles]
    phases = [onset_phase(data.attributes, c) for c in cycles]
    starts = data.states[split][:, :, 0].astype(np.float64)
    predicted = predict_runs(model, data.attributes, predictor, cycles, phases, starts,
                             data.time[: max(lengths)], lengths)  # fmt: skip
    truth = data.states[split].astype(np.float64)
    return [run_errors(data.time[:n], truth[k, :, :n], predicted[k, :, :n])
            for k, n in enumerate(lengths)]  # fmt: skip


def mean_apd(model: Any, data: Any, predictor: str, beats: int = 5) -> np.ndarray:
    """The mean APD90 over ``beats`` beats of each validation segment, predicted."""
    out = []
    for k, cycle in enumerate(data.cycle_length["validation"]):
        n = run_steps(float(data.attributes["dt_ms"]), float(cycle), beats)
        start = data.states["validation"][k : k + 1, :, 0].astype(np.float64)
        phase = onset_phase(data.attributes, float(cycle))
        run = predict_runs(model, data.attributes, predictor, [float(cycle)], [phase], start,
                           data.time[:n], [n])[0]  # fmt: skip
        out.append(np.nanmean(apd(data.time[:n], run[0], _onsets(data, "validation", k, n))))
    return np.array(out)


def true_apd(data: Any, beats: int = 5) -> np.ndarray:
    out = []
    for k, cycle in enumerate(data.cycle_length["validation"]):
        n = run_steps(float(data.attributes["dt_ms"]), float(cycle), beats)
        v = data.states["validation"][k, 0, :n].astype(np.float64)
        out.append(np.nanmean(apd(data.time[:n], v, _onsets(data, "validation", k, n))))
    return np.array(out)


def _onsets(data: Any, split: str, k: int, n: int) -> list[float]:
    return beat_onsets(data.time[:n], data.states[split][k, 0, :n].astype(np.float64))


def generation(out: Path) -> float:
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    started = time.perf_counter()
    subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "ionops.cli", "generate",
                    "tt04-gating", "--output", str(out / "full.h5")], check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)  # N2's; 10 steps an epoch
    parser.add_argument("--gate-epochs", type=int, default=70)  # N1's; 156 steps an epoch
    parser.add_argument("--rollout-epochs", type=int, default=12)  # N2 free; 50 steps an epoch
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--drift", type=float, default=None,
                        help="eta of the second pass (default: the experiment's)")  # fmt: skip
    parser.add_argument("--second-epochs", type=int, default=30)
    parser.add_argument("--second-pass-loss", choices=("network", "model"), default=None,
                        help="how a second pass scores its gates (default: the experiment's "
                        "model.second_pass_loss)")  # fmt: skip
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS),
                        default=list(SCENARIOS), help="the second passes to run")  # fmt: skip
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--reuse-first-pass", action="store_true",
                        help="the first pass in --out from an earlier run, if there")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("gating-benchmark"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an experiment setting for both passes (repeatable)")  # fmt: skip
    args = parser.parse_args()
    SETTINGS.extend(args.set)
    torch.set_flush_denormal(True)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.skip_generation:
        print(f"generation, 101 segments of 20 s on 2 MPI ranks: {generation(out):.1f} s")

    epochs = args.gate_epochs + args.epochs + args.rollout_epochs
    control = experiment(f"model.gate_epochs={args.gate_epochs}", f"training.epochs={epochs}",
                         f"model.rollout_epochs={args.rollout_epochs}",
                         f"training.eval_every={max(epochs // 6, 1)}")  # fmt: skip
    control_path = dataset(control, out)
    if args.reuse_first_pass and (out / "first.pt").is_file():
        model, data = trained_model(out / "first.pt"), FAMILY.load_data(control, control_path)
        print(f"first pass: {out / 'first.pt'} reused")
    else:
        model, data, seconds = fit(control, control_path, out / "first.pt", 0)
        print(f"first pass, {len(data.cycle_length['train'])} training segments, "
              f"{args.gate_epochs} epochs of N1, {args.epochs} of N2 on windows and "
              f"{args.rollout_epochs} free-running: {seconds / 60:.1f} min "
              "(target 30)")  # fmt: skip
    for predictor in ("network", "ode"):
        rows = runs(model, data, "test", predictor, 10)
        v = np.array([r["v_rmse"] for r in rows])
        a = np.array([r["apd90_error"] for r in rows])
        print(f"  {predictor:7s} 10 beats at {len(rows)} unseen cycle lengths: V RMSE median "
              f"{np.median(v):.2f} max {np.max(v):.2f} mV (target 3); APD90 error median "
              f"{np.median(a):.2f} max {np.max(a):.2f} ms (target 5; nan: a beat without "
              f"one, {int(np.isnan(a).sum())} of {a.size} runs)")  # fmt: skip
    long_run = runs_ode_20s(model, data)
    print(f"  converted ODE over 20 s at 500 ms: {long_run}")
    print("  one-step change of each gate left unexplained (share of its variance) by the "
          "model's own kinetics at the step's start / at its midpoint / by the trained gating "
          "layer:")  # fmt: skip
    names = data.attributes["state_names"]
    print("    " + ", ".join(f"{names[g]} {a:.3f} / {b:.3f} / {c:.3f}"
                             for g, a, b, c in unexplained(model, data)))  # fmt: skip
    print("  the gating layer driven by the recorded V of the validation segments (10 s) from "
          f"each gate's steady state, after {SETTLE_MS:g} ms: RMSE over the gate's standard "
          "deviation:")  # fmt: skip
    print("    " + ", ".join(f"{names[g]} {e:.3f}" for g, e in driven_gates(model, data)))

    second_passes(args, out, model, data)


def second_passes(args: Any, out: Path, model: Any, data: Any) -> None:
    """Every scenario's second pass from ``out``/first.pt, each seed: the APD90 change against
    the model's and the currents that moved most."""
    control_apd = true_apd(data)
    first_apd = mean_apd(model, data, "network")
    first_ode_apd = mean_apd(model, data, "ode")
    for scenario in args.scenarios:
        scale = SCENARIOS[scenario]
        scaled = [f"data.scale.{scale}"] if scale else []
        chosen = [] if args.drift is None else [f"model.drift={args.drift}"]
        if args.second_pass_loss is not None:
            chosen.append(f'model.second_pass_loss="{args.second_pass_loss}"')
        perturbed = experiment(*scaled, *chosen, f"model.first_pass={out / 'first.pt'}",
                               f"training.epochs={args.second_epochs}",
                               "training.eval_every=10")  # fmt: skip
        path = dataset(perturbed, out)
        shifts, ode_shifts, changes, potassium = [], [], [], []
        for seed in range(args.seeds):
            retrained, pdata, _ = fit(perturbed.model_copy(update={
                "training": perturbed.training.model_copy(update={"seed": seed})}), path,
                out / f"{scenario.replace(' ', '_')}-{seed}.pt", seed)  # fmt: skip
            pair = current_pair(retrained, pdata)
            changes.append(change(pair))
            potassium.append(delayed_rectifiers(pair))
            if not scale:
                continue
            wanted = true_apd(pdata) - control_apd
            got = mean_apd(retrained, pdata, "network") - first_apd
            shifts.append(float(np.median(got / wanted)))
            got = mean_apd(retrained, pdata, "ode") - first_ode_apd
            ode_shifts.append(float(np.median(got / wanted)))
        if scale:
            print(f"{scenario}: APD90 change predicted / true, median over validation segments, "
                  f"per seed: network {', '.join(f'{s:.2f}' for s in shifts)}; converted ODE "
                  f"{', '.join(f'{s:.2f}' for s in ode_shifts)}")  # fmt: skip
        else:
            print(f"{scenario} (the first pass's own data: every change is the second pass's "
                  "own doing):")  # fmt: skip
        for k, c in enumerate(changes):
            ranked = sorted(c.items(), key=lambda item: -abs(item[1]))[:5]
            print(f"  seed {k}: " + ", ".join(f"{n} {v:+.1%}" for n, v in ranked))
        print("  I_Kr + I_Ks (mean |I| of the two together), per seed: "
              + ", ".join(f"{v:+.1%}" for v in potassium))  # fmt: skip


def delayed_rectifiers(pair: dict[str, tuple[NDArray, NDArray]]) -> float:
    """The relative change of mean |I_Kr| + mean |I_Ks|, retrained against original."""
    new, old = (sum(float(np.mean(np.abs(pair[n][k]))) for n in ("I_Kr", "I_Ks"))
                for k in (0, 1))  # fmt: skip
    return new / old - 1.0


def unexplained(model: Any, data: Any, samples: int = 20_000,
                ) -> list[tuple[int, float, float, float]]:  # fmt: skip
    """(gate, share left by the model's kinetics at the step's start, at its midpoint, share
    left by the trained layer) for each gate: the squared one-step error over the variance of
    the step's change, on ``samples`` training transitions."""
    ionic = get_ionic_model(str(data.attributes["model"]))
    rhs = importlib.import_module(str(ionic.kernels)).rhs
    parameters = ionic.parameter_vector(dict(data.attributes["parameters"]))
    states = data.states["train"].astype(np.float64)
    n, n_states, n_t = states.shape
    dt = float(data.attributes["dt_ms"])
    chosen = np.random.default_rng(0).choice(n * (n_t - 1), samples, replace=False)
    now = np.stack([states[k // (n_t - 1), :, k % (n_t - 1)] for k in chosen])
    after = np.stack([states[k // (n_t - 1), :, k % (n_t - 1) + 1] for k in chosen])
    gates = model.network.gates
    slope = np.zeros(n_states)

    def exact_step(at: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each gate's exact step from ``now`` with the model's kinetics at the states ``at``."""
        out = np.empty((samples, len(gates)))
        for r, y in enumerate(at):
            for c, g in enumerate(gates):
                at_zero, at_one = y.copy(), y.copy()
                at_zero[g], at_one[g] = 0.0, 1.0
                rhs(0.0, at_zero, parameters, 0.0, slope)
                rise = slope[g]
                rhs(0.0, at_one, parameters, 0.0, slope)
                tau = 1.0 / (rise - slope[g])  # h' = (h_inf - h) / tau is linear in h
                steady = rise * tau
                out[r, c] = steady + (now[r, g] - steady) * np.exp(-dt / tau)
        return out

    with torch.no_grad():
        ends = [model.scaling.forward(torch.as_tensor(y)).float() for y in (now, after)]
        scaled = model.network.gates_after(*ends)
    low, high = np.asarray(model.scaling.low)[gates], np.asarray(model.scaling.high)[gates]
    learned = low + scaled.double().numpy() * (high - low)
    change = (after[:, gates] - now[:, gates]).var(axis=0)
    shares = [((step - after[:, gates]) ** 2).mean(axis=0) / change
              for step in (exact_step(now), exact_step(0.5 * (now + after)), learned)]  # fmt: skip
    return [(g, *(float(share[c]) for share in shares)) for c, g in enumerate(gates)]


def driven_gates(model: Any, data: Any) -> list[tuple[int, float]]:
    """(gate, RMSE over its standard deviation) of the gating layer run on the validation
    segments' recorded V alone, as the second pass runs it, after its first ``SETTLE_MS``
    (the gates start from their steady state)."""
    network = model.network
    states = model.scaling.forward(torch.as_tensor(
        data.states["validation"].transpose(0, 2, 1).astype(np.float64))).float()  # fmt: skip
    with torch.no_grad():
        gates = recorded_gates(network, network.gating, states)
    settle = round(SETTLE_MS / float(data.attributes["dt_ms"]))
    true, gates = states[:, settle:, network.gates], gates[:, settle:]
    error = (gates - true).pow(2).mean((0, 1)).sqrt() / true.std((0, 1)).clamp_min(1e-9)
    return list(zip(network.gates, error.tolist(), strict=True))


def runs_ode_20s(model: Any, data: Any) -> str:
    cycle = 500.0
    time_grid = np.arange(0.0, 20000.0 + 0.5, 1.0)
    k = int(np.argmin(np.abs(data.cycle_length["train"] - cycle)))
    start = data.states["train"][k : k + 1, :, 0].astype(np.float64)
    phase = onset_phase(data.attributes, float(data.cycle_length["train"][k]))
    run = predict_runs(model, data.attributes, "ode", [cycle], [phase], start, time_grid,
                       [time_grid.size])[0]  # fmt: skip
    if not np.isfinite(run).all():
        return "failed (the solver stopped)"
    last = run[0, -int(cycle) :]
    return (f"finite; V over the last cycle in [{last.min():.1f}, {last.max():.1f}] mV "
            f"(over 20 s in [{run[0].min():.1f}, {run[0].max():.1f}])")  # fmt: skip


if __name__ == "__main__":
    main()
