"""Splitting PINNs (paper 003): an ionic model's right-hand side split into sub-problems, each
solved over short windows by a small physics-informed network, marched over the horizon.

The split is by states (:func:`state_groups`): the membrane potential is one sub-problem and
every other state the other (V and the gates for Hodgkin-Huxley, v and u for Izhikevich);
within a sub-problem the other states are held at their values when it starts. ``lie`` solves
A then B over each window, ``strang`` A over half the window, B over all of it and A over the
second half; ``none`` solves the whole field at once (the only choice for a one-state model).

A sub-problem over a window [a, a + H] from u0 is the network ansatz (the network and its
solver are in :mod:`ionops.models.collocation`)

    u(t) = u0 + (t - a) (g0 + s * N((t - a) / H; theta))

which meets the initial condition exactly (g0 is the sub-field at u0, s a per-state rate
scale, N a tanh MLP of one input). Its residual, du/dt - g(u) over s at collocation points
(Chebyshev points of (0, 1]), is minimised by Levenberg-Marquardt on theta, started from the
previous window's theta: a few Gauss-Newton steps bring it to the solver's tolerance, which
the accuracy targets need and first-order optimisers do not reach in the time there is.

A state with a Caputo derivative (the fractional HH membrane) is collocated at the L1 scheme's
uniform step instead, and its residual is the L1 discretisation of D^alpha u at each node: the
weights of the nodes inside the window act on the network, those of every earlier node (the
history of earlier windows, kept on the grid) are a constant computed once per sub-step.

A model with resets (integrate-and-fire, Izhikevich) is checked after each window: where its
event function has crossed zero, the crossing is located by the Illinois method on the window's
length (each try a new solve of the shortened window), the state is reset there and the march
goes on from the crossing. Everything here is float64 on the CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ionops.datasets.ionic import IonicModel
from ionops.errors import UserError
from ionops.models.collocation import Features, chebyshev, gauss_newton, l1_weights

SPLITTINGS = ("lie", "strang", "none")


@dataclass(frozen=True)
class WindowSettings:
    """How each window is solved: its length (ms), the network's hidden widths, the
    collocation points of an ordinary sub-problem, the splitting, the range of the first
    hidden layer's fixed weights and the Gauss-Newton budget (steps per sub-step, and the
    RMS residual at which it stops)."""

    window_ms: float
    widths: tuple[int, ...] = (16,)
    collocation: int = 12
    splitting: str = "strang"
    feature_scale: float = 4.0
    iterations: int = 8
    tolerance: float = 1e-10
    caputo_step_ms: float = 1e-3

    def __post_init__(self) -> None:
        if self.splitting not in SPLITTINGS:
            raise UserError(f"model.splitting = {self.splitting!r} does not exist; known: "
                            f"{', '.join(SPLITTINGS)}")  # fmt: skip


def state_groups(model: IonicModel, splitting: str) -> list[list[int]]:
    """The sub-problems' state indices: the membrane potential (the first state), then the
    rest; one group of every state for ``none``."""
    if splitting == "none":
        return [list(range(model.n_states))]
    if model.n_states < 2:
        raise UserError(f"model.splitting = {splitting!r}: {model.name} has one state "
                        f"({model.state_names[0]}), nothing to split; use splitting = "
                        "'none'")  # fmt: skip
    return [[0], list(range(1, model.n_states))]


def sequence(splitting: str) -> list[tuple[int, float, float]]:
    """The sub-steps of one window: (group, start, end) as fractions of the window."""
    if splitting == "strang":
        return [(0, 0.0, 0.5), (1, 0.0, 1.0), (0, 0.5, 1.0)]
    if splitting == "lie":
        return [(0, 0.0, 1.0), (1, 0.0, 1.0)]
    return [(0, 0.0, 1.0)]


# -- the march ------------------------------------------------------------------------------------


@dataclass
class Problem:
    """One initial-value problem of an ionic model: parameters, start, stimulus pieces
    ((start, end, current) rows covering [0, t_end]) and horizon."""

    model: IonicModel
    parameters: NDArray[np.float64]
    start: NDArray[np.float64]
    pieces: NDArray[np.float64]
    t_end: float

    def current(self, t: float) -> float:
        """The stimulus in force just after ``t``."""
        row = int(np.searchsorted(self.pieces[:, 1], t, side="right"))
        return float(self.pieces[min(row, len(self.pieces) - 1), 2])


@dataclass
class March:
    """A march's result: the state at every window's end (``times``, ``states`` (S, K)),
    the events (spike times, ms), each sub-step's final RMS residual, the Gauss-Newton steps
    and the seconds the march took."""

    times: list[float] = field(default_factory=list)
    states: list[NDArray[np.float64]] = field(default_factory=list)
    events: list[float] = field(default_factory=list)
    residuals: list[float] = field(default_factory=list)
    iterations: int = 0
    seconds: float = 0.0

    def arrays(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return np.array(self.times), np.array(self.states).T


class Marcher:
    """Marches one :class:`Problem` with :class:`WindowSettings`, from a seeded network."""

    def __init__(self, problem: Problem, settings: WindowSettings, seed: int) -> None:
        model = problem.model
        if model.vector_field is None:
            raise UserError(f"{model.name} gives no differentiable right-hand side "
                            "(vector_field): a PINN cannot be trained on it")  # fmt: skip
        self.problem, self.settings = problem, settings
        self.groups = state_groups(model, settings.splitting)
        self.steps = sequence(settings.splitting)
        self.orders = model.derivative_orders(problem.parameters)
        names = model.state_names
        self.caputo_states = {names.index(state) for state in model.caputo}
        rng = np.random.default_rng(seed)
        self.features = [Features.seeded(settings.widths, settings.feature_scale, rng)
                         for _ in self.groups]  # fmt: skip
        self.coefficients = [
            np.zeros(len(group) * features.count)
            for group, features in zip(self.groups, self.features, strict=True)
        ]
        self.tau = chebyshev(settings.collocation)
        self._phi: dict[tuple[int, int], tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        self.last = (0.0, 0)
        if self.caputo_states:
            h = settings.caputo_step_ms
            ratio = settings.window_ms / h
            halves = settings.splitting == "strang"
            if abs(ratio - round(ratio)) > 1e-9 * ratio or (halves and round(ratio) % 2):
                raise UserError(f"model.window_ms = {settings.window_ms:g} is not a whole (for "
                                f"strang, even) number of L1 steps of {h:g} ms")  # fmt: skip
            n_total = round(problem.t_end / h)
            off = [t for t in self.boundaries() if abs(t / h - round(t / h)) > 1e-9 * t / h]
            if off:
                raise UserError(f"the stimulus changes at {off[0]:g} ms, off the L1 step of "
                                f"{h:g} ms (model.caputo_step_ms): put it on the step")  # fmt: skip
            self.nodes = np.empty((model.n_states, n_total + 1))
            self.nodes[:, 0] = problem.start
            self.l1 = {a: l1_weights(a, n_total + 1) for a in set(self.orders.tolist())}

    # -- one sub-problem ------------------------------------------------------------------------

    def _field(self, z: NDArray[np.float64], current: float, states: Sequence[int]) -> NDArray:
        """The sub-field of ``states`` at full states ``z`` (S, C), as (C, d)."""
        field = self.problem.model.vector_field
        assert field is not None  # checked when the march was made
        values = field(list(z), current, self.problem.parameters)
        return np.stack([np.broadcast_to(values[k], z.shape[1:]) for k in states], axis=-1)

    def _field_jacobian(self, z: NDArray[np.float64], current: float, states: Sequence[int],
                        base: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
        """d(sub-field)/d(sub-states) at ``z``, (C, d, d), by forward differences."""
        out = np.empty((z.shape[1], len(states), len(states)))
        for col, k in enumerate(states):
            step = 1e-7 * np.maximum(np.abs(z[k]), 1.0)
            shifted = z.copy()
            shifted[k] += step
            out[:, :, col] = (self._field(shifted, current, states) - base) / step[:, None]
        return out

    def _substep(self, z0: NDArray[np.float64], group: int, t0: float, length: float,
                 node0: int) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:  # fmt: skip
        """Solve sub-problem ``group`` over [t0, t0 + length] from state z0 (others frozen).
        The state at the end, and for a Caputo model the group's states at the L1 nodes.

        Each state j of the group is u_j = u0_j + (t - t0) (g0_j + s_j phi c_j): the residual
        (du/dt - g(u)) / s at the collocation points (or the L1 form of D^alpha u for a Caputo
        state) is minimised over the coefficients c by Gauss-Newton."""
        states = self.groups[group]
        current = self.problem.current(t0)
        u0 = z0[states]
        g0 = self._field(z0[:, None], current, states)[0]
        s = np.abs(g0) + 1e-2 * np.maximum(np.abs(u0), 1.0)
        on_nodes = any(k in self.caputo_states for k in states)
        m, tau = 0, self.tau
        if on_nodes:  # collocated at the L1 nodes; ordinary states in the group need enough
            m = round(length / self.settings.caputo_step_ms)
            tau = np.arange(1, m + 1) / m
            if len(states) > 1 and m < self.features[group].count:
                raise UserError(f"model.window_ms = {length:g} ms holds {m} L1 steps, fewer "
                                f"than the {self.features[group].count} coefficients of each "
                                "ordinary state solved with it: lengthen the window or narrow "
                                "the network")  # fmt: skip
        key = (group, m)
        if key not in self._phi:
            self._phi[key] = self.features[group].at(tau)
        phi, dphi = self._phi[key]
        caputo = self._caputo_terms(states, node0, tau.size) if on_nodes else {}
        d, count, size = len(states), phi.shape[1], tau.size
        z = np.repeat(z0[:, None], size, axis=1)
        # du_j/dc_j and d(du_j/dt)/dc_j, (C, d, count): each state has its own coefficients
        ju = (tau[:, None] * length)[:, :, None] * s[None, :, None] * phi[:, None, :]
        jdu = s[None, :, None] * (phi + tau[:, None] * dphi)[:, None, :]
        jd = jdu.copy()
        for j, k in enumerate(states):
            if k in caputo:
                jd[:, j] = caputo[k][1] @ np.diff(ju[:, j], axis=0, prepend=0.0 * ju[:1, j])

        def solution(c: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            n, dn = phi @ c.reshape(d, count).T, dphi @ c.reshape(d, count).T
            u = u0 + tau[:, None] * length * (g0 + s * n)
            return u, g0 + s * n + tau[:, None] * s * dn

        def residual(c: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            u, derivative = solution(c)
            z[states] = u.T
            g = self._field(z, current, states)
            for j, k in enumerate(states):
                if k in caputo:
                    history, lower = caputo[k]
                    derivative[:, j] = lower @ np.diff(u[:, j], prepend=u0[j]) + history
            r = ((derivative - g) / s).T.ravel()
            jg = self._field_jacobian(z, current, states, g)  # (C, d, d)
            jr = np.zeros((d, size, d, count))
            for j in range(d):
                jr[j, :, j] += jd[:, j]
                for col in range(d):
                    jr[j, :, col] -= jg[:, j, col, None] * ju[:, col]
                jr[j] /= s[j]
            return r, jr.reshape(d * size, d * count)

        c, rms, used = gauss_newton(residual, self.coefficients[group], self.settings.iterations,
                                    self.settings.tolerance)  # fmt: skip
        self.coefficients[group], self.last = c, (rms, used)
        u = solution(c)[0]
        end = z0.copy()
        end[states] = u[-1]
        return end, (u.T if on_nodes else None)

    def _caputo_terms(
        self, states: Sequence[int], node0: int, m: int
    ) -> dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]]:
        """For each Caputo state of the group: the history term at the window's m nodes (the
        L1 sum over the increments of nodes 1..node0) and the matrix of the in-window ones."""
        h = self.settings.caputo_step_ms
        terms = {}
        for k in states:
            if k not in self.caputo_states:
                continue
            alpha = float(self.orders[k])
            w = self.l1[alpha]
            scale = h**-alpha / math.gamma(2.0 - alpha)
            term = np.zeros(m)
            if node0:
                past = np.diff(self.nodes[k, : node0 + 1])
                # node node0 + j weighs increment i (1..node0) by w[node0 + j - i]
                rows = np.lib.stride_tricks.sliding_window_view(w[: node0 + m], node0)[1 : m + 1]
                term = scale * (rows[:, ::-1] @ past)
            idx = np.arange(m)
            gap = idx[:, None] - idx[None, :]
            lower = np.where(gap >= 0, w[np.abs(gap)], 0.0) * scale
            terms[k] = (term, lower)
        return terms

    # -- a march's state, for checkpoints ------------------------------------------------------

    def state(self, record: March) -> dict[str, Any]:
        """What resuming this march needs: every group's coefficients, the L1 nodes, the
        record so far (numpy arrays and numbers only)."""
        return {"coefficients": [c.copy() for c in self.coefficients],
                "nodes": self.nodes.copy() if self.caputo_states else np.empty(0),
                "times": np.array(record.times), "states": np.array(record.states),
                "events": np.array(record.events), "residuals": np.array(record.residuals),
                "iterations": record.iterations, "seconds": record.seconds}  # fmt: skip

    def restore(self, state: Mapping[str, Any]) -> March:
        """The march :meth:`state` saved, in place; its record."""
        self.coefficients = [np.asarray(c, dtype=np.float64).copy()
                             for c in state["coefficients"]]  # fmt: skip
        if self.caputo_states:
            self.nodes = np.asarray(state["nodes"], dtype=np.float64).copy()
        return March(list(np.asarray(state["times"], dtype=np.float64)),
                     [np.asarray(z, dtype=np.float64) for z in state["states"]],
                     list(np.asarray(state["events"], dtype=np.float64)),
                     list(np.asarray(state["residuals"], dtype=np.float64)),
                     int(state["iterations"]), float(state["seconds"]))  # fmt: skip

    # -- windows --------------------------------------------------------------------------------

    def window(self, z0: NDArray[np.float64], t0: float, length: float,
               record: March | None = None) -> NDArray[np.float64]:  # fmt: skip
        """The state after one window of the split from ``z0`` at ``t0``."""
        z = z0.copy()
        for group, start, end in self.steps:
            begin = t0 + start * length
            node = self._node(begin)
            z, nodes = self._substep(z, group, begin, (end - start) * length, node)
            if nodes is not None:  # the group's states at the L1 nodes it covered
                covered = range(node + 1, node + 1 + nodes.shape[1])
                self.nodes[np.ix_(self.groups[group], covered)] = nodes
            if record is not None:
                record.residuals.append(self.last[0])
                record.iterations += self.last[1]
        return z

    def _node(self, t: float) -> int:
        """The L1 node at time ``t`` (0 for a model without a Caputo state)."""
        return round(t / self.settings.caputo_step_ms) if self.caputo_states else 0

    def boundaries(self) -> NDArray[np.float64]:
        """The window ends: multiples of the window length, and every stimulus change."""
        H, t_end = self.settings.window_ms, self.problem.t_end
        lattice = np.arange(1, math.floor(t_end / H + 1e-9) + 1) * H
        cuts = self.problem.pieces[:, 1]
        ends = np.union1d(np.round(lattice, 12), np.round(cuts[cuts <= t_end], 12))
        return ends[ends > 0]

    def run(self, until: float | None = None, record: March | None = None) -> March:
        """March from the start to ``until`` (default: the horizon)."""
        record = record or March([0.0], [self.problem.start.copy()])
        z, t = record.states[-1].copy(), record.times[-1]
        model = self.problem.model
        events = model.has_events
        p = self.problem.parameters
        started = time.perf_counter()
        for end in self.boundaries():
            if end <= t + 1e-12 or (until is not None and end > until + 1e-12):
                continue
            z_new = self.window(z, t, end - t, record)
            if events and model.event(end, z_new, p) >= 0.0:
                t_spike, z_spike = self._locate(z, t, end - t, record)
                model.reset(t_spike, z_spike, p)
                record.events.append(t_spike)
                z, t = z_spike, t_spike
                z_new = self.window(z, t, end - t, record) if end - t > 1e-9 else z
                if events and model.event(end, z_new, p) >= 0.0:
                    raise UserError(f"two events within one window at {t:g} ms: make "
                                    "model.window_ms shorter")  # fmt: skip
            z, t = z_new, end
            record.times.append(t)
            record.states.append(z.copy())
        record.seconds += time.perf_counter() - started
        return record

    def _locate(self, z0: NDArray[np.float64], t0: float, length: float,
                record: March) -> tuple[float, NDArray[np.float64]]:  # fmt: skip
        """The event's time within a window and the state there (Illinois on the length)."""
        model, p = self.problem.model, self.problem.parameters
        low, g_low = 0.0, float(model.event(t0, z0, p))
        high, z_high = length, self.window(z0, t0, length)
        g_high = float(model.event(t0 + length, z_high, p))
        side = 0
        for _ in range(60):
            middle = (low * g_high - high * g_low) / (g_high - g_low)
            z_mid = self.window(z0, t0, middle)
            g_mid = float(model.event(t0 + middle, z_mid, p))
            if g_mid >= 0.0:
                high, g_high, z_high = middle, g_mid, z_mid
                if side == 1:
                    g_low /= 2.0
                side = 1
            else:
                low, g_low = middle, g_mid
                if side == -1:
                    g_high /= 2.0
                side = -1
            if high - low < 1e-10 or abs(g_mid) < 1e-10:
                break
        return t0 + high, z_high.copy()


def problem_of(model: IonicModel, parameters: NDArray[np.float64], start: NDArray[np.float64],
               pieces: Sequence[tuple[float, float, float]], t_end: float) -> Problem:  # fmt: skip
    return Problem(model, parameters, np.asarray(start, dtype=np.float64),
                   np.asarray(pieces, dtype=np.float64), float(t_end))  # fmt: skip


def relative_l2(predicted: NDArray[np.float64], truth: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each state's |predicted - truth|_2 / |truth|_2 over time (states on the first axis)."""
    return np.asarray(np.linalg.norm(predicted - truth, axis=-1) / np.linalg.norm(truth, axis=-1))
