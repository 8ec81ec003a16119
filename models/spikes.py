"""Spike metrics of a forecast membrane potential against the solver's (paper 002, section 3.6).

A spike is a local maximum of V above ``threshold``, its time and height refined by the
parabola through the sample and its two neighbours. Predicted and true spikes are matched
one to one, the closest pairs first, when they lie within ``window`` ms. Then:

- precision, recall and F1 of the matching;
- phase drift: the mean |t_pred - t_true| of matched spikes (ms);
- ISI error: the mean |ISI_pred - ISI_true| over consecutive matched pairs (ms);
- amplitude deviation: the mean |V_peak_pred - V_peak_true| of matched spikes (mV);
- amplitude preservation error: how far the predicted V's range (max - min) over the
  window is from the truth's, as a fraction of the truth's.

A metric that cannot be computed is NaN in :attr:`SpikeScore.values`, and
:attr:`SpikeScore.undefined` says why (no spike predicted, fewer than two matched spikes);
never a 0 that looks like a perfect score. F1 is 0 when spikes were due and none was
predicted, and undefined when neither has a spike.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

SPIKE_METRICS = ("f1", "precision", "recall", "phase_drift", "isi_error", "amplitude_deviation",
                 "amplitude_error")  # fmt: skip


def peaks(time: NDArray[np.float64], v: NDArray[np.float64],
          threshold: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """(times, heights) of the local maxima of ``v`` above ``threshold``, refined by a parabola."""
    v = np.asarray(v, dtype=np.float64)
    if v.size < 3:
        return np.empty(0), np.empty(0)
    left, mid, right = v[:-2], v[1:-1], v[2:]
    found = np.flatnonzero((mid > left) & (mid >= right) & (mid > threshold)) + 1
    a, b, c = v[found - 1], v[found], v[found + 1]
    curvature = a - 2 * b + c
    shift = np.where(curvature < 0, 0.5 * (a - c) / np.where(curvature < 0, curvature, -1.0), 0.0)
    dt = np.asarray(time)[found + 1] - np.asarray(time)[found]
    return np.asarray(time)[found] + shift * dt, b - 0.25 * (a - c) * shift


def match(true: NDArray[np.float64], predicted: NDArray[np.float64],
          window: float) -> list[tuple[int, int]]:  # fmt: skip
    """One-to-one pairs (true index, predicted index) within ``window``, closest first, in
    the true spikes' order."""
    pairs = [(abs(p - t), i, j) for i, t in enumerate(true) for j, p in enumerate(predicted)
             if abs(p - t) <= window]  # fmt: skip
    used_true: set[int] = set()
    used_predicted: set[int] = set()
    out = []
    for _, i, j in sorted(pairs):
        if i not in used_true and j not in used_predicted:
            used_true.add(i)
            used_predicted.add(j)
            out.append((i, j))
    return sorted(out)


@dataclass(frozen=True)
class SpikeScore:
    """The spike metrics of one forecast (NaN where undefined; the reason in ``undefined``)."""

    values: dict[str, float]
    undefined: dict[str, str] = field(default_factory=dict)
    true_spikes: int = 0
    predicted_spikes: int = 0


def score(time: NDArray[np.float64], truth: NDArray[np.float64], predicted: NDArray[np.float64],
          threshold: float, window: float) -> SpikeScore:  # fmt: skip
    """The spike metrics of ``predicted`` V against ``truth`` V on ``time``."""
    true_t, true_h = peaks(time, truth, threshold)
    pred_t, pred_h = peaks(time, predicted, threshold) if np.isfinite(predicted).all() else (
        np.empty(0), np.empty(0))  # fmt: skip
    values, undefined, pairs = _timing(true_t, pred_t, window)
    if pairs:
        i, j = np.array(pairs).T
        values["amplitude_deviation"] = float(np.mean(np.abs(pred_h[j] - true_h[i])))
    else:
        undefined["amplitude_deviation"] = undefined["phase_drift"]
    span = float(np.ptp(truth))
    if np.isfinite(predicted).all() and span > 0:
        values["amplitude_error"] = abs(float(np.ptp(predicted)) - span) / span
    else:
        undefined["amplitude_error"] = ("the forecast is not finite" if span > 0 else
                                        "the truth is flat")  # fmt: skip
    return SpikeScore(values, undefined, true_t.size, pred_t.size)


def event_score(true_times: NDArray[np.float64], predicted_times: NDArray[np.float64],
                window: float) -> SpikeScore:  # fmt: skip
    """The timing metrics of spikes given as times (a reset model's events); their
    amplitudes are the reset's, so the amplitude metrics are undefined."""
    true_t, pred_t = np.asarray(true_times, float), np.asarray(predicted_times, float)
    values, undefined, _ = _timing(true_t, pred_t, window)
    undefined["amplitude_deviation"] = undefined["amplitude_error"] = (
        "spikes are events with a reset, not peaks")  # fmt: skip
    return SpikeScore(values, undefined, true_t.size, pred_t.size)


Timing = tuple[dict[str, float], dict[str, str], list[tuple[int, int]]]


def _timing(true_t: NDArray[np.float64], pred_t: NDArray[np.float64], window: float) -> Timing:
    """Precision, recall, F1, phase drift and ISI error of matched spike times (NaN where
    undefined, the reason beside), and the matched pairs."""
    pairs = match(true_t, pred_t, window)
    values = dict.fromkeys(SPIKE_METRICS, math.nan)
    undefined: dict[str, str] = {}
    n_true, n_pred, n_match = true_t.size, pred_t.size, len(pairs)
    no_prediction = "no spike predicted" if n_true else "no spike in the truth or the forecast"
    if n_pred:
        values["precision"] = n_match / n_pred
    else:
        undefined["precision"] = no_prediction
    if n_true:
        values["recall"] = n_match / n_true
    else:
        undefined["recall"] = "no spike in the truth"
    if n_true or n_pred:
        values["f1"] = 2 * n_match / (n_true + n_pred)
    else:
        undefined["f1"] = "no spike in the truth or the forecast"
    if n_match:
        i, j = np.array(pairs).T
        values["phase_drift"] = float(np.mean(np.abs(pred_t[j] - true_t[i])))
    else:
        undefined["phase_drift"] = (no_prediction if not n_pred else
                                    f"no predicted spike within {window:g} ms")  # fmt: skip
    consecutive = [(a, b) for a, b in itertools.pairwise(pairs) if b[0] == a[0] + 1]
    if consecutive:
        errors = [abs((pred_t[b[1]] - pred_t[a[1]]) - (true_t[b[0]] - true_t[a[0]]))
                  for a, b in consecutive]  # fmt: skip
        values["isi_error"] = float(np.mean(errors))
    else:
        undefined["isi_error"] = ("no two consecutive spikes matched" if n_pred else
                                  no_prediction)  # fmt: skip
    return values, undefined, pairs
