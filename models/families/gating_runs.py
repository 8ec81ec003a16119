"""A trained gating network's runs and their errors (:mod:`ionops.models.families.gating`).

A run starts from a recorded state and goes ``beats`` beats under the dataset's pacing, on a
clock started where in its cycle the segment's first kept sample lies: the network
free-running (each prediction fed back), or its converted ODE (:mod:`ionops.models.gating_ode`)
solved by the project's BDF (``predictor``). Its errors against the recording: RMSE per state
and APD90 per beat. Evaluation, serving and the benchmark all run and score this way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray

from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.stimuli import Pacing
from ionops.models.gating_rnn import apd

if TYPE_CHECKING:
    from ionops.models.families.gating_learning import GatingModel

UPSTROKE_MV = -40.0  # a beat's upstroke crosses it (APD90 is measured from just before)


def onset_phase(attributes: Mapping[str, Any], cycle_length: float) -> float:
    """Where in its cycle the first kept sample of a segment at ``cycle_length`` lies (ms)."""
    offset, discard = float(attributes["stimulus_offset_ms"]), float(attributes["discard_ms"])
    return (discard - offset) % cycle_length


def pacing_from(attributes: Mapping[str, Any], cycle_length: float, phase: float) -> Pacing:
    """The dataset's pacing at ``cycle_length`` on a clock started ``phase`` ms into a cycle."""
    return Pacing(float(attributes["stimulus_amplitude"]), float(attributes["stimulus_ms"]),
                  (-phase) % cycle_length, cycle_length)  # fmt: skip


def whole_beats(time: NDArray[np.float64], cycle: float) -> int:
    """The whole beats at ``cycle`` that the grid ``time`` holds."""
    return int(np.floor(float(time[-1] - time[0]) / cycle + 1e-9))


def run_steps(dt: float, cycle: float, beats: int) -> int:
    """Samples of a run of ``beats`` beats at ``cycle``, its start included."""
    return round(beats * cycle / dt) + 1


def predict_runs(model: torch.nn.Module, attributes: Mapping[str, Any], predictor: str,
                 cycles: Sequence[float], phases: Sequence[float], starts: NDArray[np.float64],
                 time: NDArray[np.float64], lengths: Sequence[int],
                 ) -> NDArray[np.float64]:  # fmt: skip
    """Runs from ``starts`` (n, S) paced at ``cycles``, each clock ``phases`` ms into a cycle at
    t = 0, over ``time`` (physical units (n, S, n_t), NaN after each run's length)."""
    from ionops.models.families.gating_learning import GatingModel

    assert isinstance(model, GatingModel)
    dt = float(attributes["dt_ms"])
    n_states = starts.shape[1]
    out = np.full((len(cycles), n_states, time.size), np.nan)
    if predictor == "ode":
        for k, (cycle, phase) in enumerate(zip(cycles, phases, strict=True)):
            out[k, :, : lengths[k]] = solve_converted(model, attributes, float(cycle),
                                                      float(phase), starts[k],
                                                      time[: lengths[k]])  # fmt: skip
        return out
    amplitude = float(attributes["stimulus_amplitude"]) or 1.0
    current = np.stack([pacing_from(attributes, float(c), float(p)).step_means(time, dt)
                        for c, p in zip(cycles, phases, strict=True)]) / amplitude  # fmt: skip
    parameter = next(model.parameters())
    start = torch.as_tensor(starts, dtype=torch.float64)
    scaled = model.scaling.forward(start).to(parameter.dtype).to(parameter.device)
    drive = torch.as_tensor(current, dtype=parameter.dtype, device=parameter.device)
    with torch.no_grad():
        run = model.network.free_run(scaled, drive)
    physical = model.scaling.inverse(run.double().cpu()).numpy().transpose(0, 2, 1)
    for k, n in enumerate(lengths):
        out[k, :, :n] = physical[k, :, :n]
    return out


def solve_converted(model: GatingModel, attributes: Mapping[str, Any], cycle: float,
                    phase: float, start: NDArray[np.float64],
                    time: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
    """The converted ODE's trajectory (S, n_t) on ``time``: the model the network learned
    (:meth:`GatingModel.model_parameters`) with its gates; NaN where the solver fails."""
    from ionops.datasets.solver import SolverSettings, integrate_protocol
    from ionops.models.gating_ode import converted_model, parameter_vector

    ionic = get_ionic_model(str(attributes["model"]))
    network = model.network
    width = network.gating.steady.in_features
    converted = converted_model(ionic, tuple(network.gates), tuple(network.gate_inputs), width)
    parameters = parameter_vector(ionic.parameter_vector(model.model_parameters(attributes)),
                                  network, model.scaling, float(attributes["dt_ms"]))  # fmt: skip
    pieces = np.array(pacing_from(attributes, cycle, phase).pieces(float(time[-1])))
    rtol, atol = ionic.tolerances
    settings = SolverSettings(rtol=rtol, atol=atol, max_steps=50_000_000)
    status, states, _, _ = integrate_protocol(converted, parameters, start, pieces,
                                              np.ascontiguousarray(time), settings)  # fmt: skip
    return states if status == 0 else np.full((start.size, time.size), np.nan)


def beat_onsets(time: NDArray[np.float64], v: NDArray[np.float64]) -> list[float]:
    """Each beat's onset in a V trace: the sample before the one before its upstroke crosses
    -40 mV (where APD90 is measured from)."""
    rises = np.flatnonzero((v[:-1] < UPSTROKE_MV) & (v[1:] >= UPSTROKE_MV))
    return [float(time[max(int(k) - 1, 0)]) for k in rises]


def run_errors(time: NDArray[np.float64], truth: NDArray[np.float64],
               predicted: NDArray[np.float64]) -> dict[str, Any]:  # fmt: skip
    """One run's errors: ``rmse`` per state, ``v_rmse`` (mV), and ``apd90_error``, the mean
    |APD90 difference| over the true run's beats that have one (each from two samples before
    its upstroke through -40 mV; a beat the run's end cuts, or one that does not repolarise
    before the next, has none). NaN where no true beat has one, or where the prediction has
    none for such a beat or is not finite: a failure, never a small number."""
    rmse = np.sqrt(np.mean((predicted - truth) ** 2, axis=1))
    onsets = beat_onsets(time, truth[0])
    true_apd = apd(time, truth[0], onsets) if onsets else np.array([])
    defined = np.isfinite(true_apd)
    if not defined.any() or not np.isfinite(predicted[0]).all():
        apd_error = math.nan
    else:
        difference = apd(time, predicted[0], onsets)[defined] - true_apd[defined]
        apd_error = float(np.mean(np.abs(difference)))
    return {"rmse": rmse, "v_rmse": float(rmse[0]), "apd90_error": apd_error}
