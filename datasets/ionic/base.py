"""What every ionic model provides, and the registry that finds one by name.

A model is a declaration (its module: states, units, parameters, what families
read) plus compiled functions in a module of their own, ``kernels``, imported
and compiled on first use with the fixed signatures of
:mod:`ionops.datasets.ionic.signatures`, so that one cached solver serves every model.
Reading an experiment that names a model therefore compiles nothing. The
right-hand side is
``rhs(t, y, p, i_app, dydt)``: time t in ms, state y (n_states,),
parameter vector p (n_parameters,), the applied current ``i_app`` (constant
within a solver segment, positive depolarising, in the model's current unit)
and the output dydt (n_states,), written in place. A model whose Jacobian is
cheap in closed form also provides ``jacobian(t, y, p, i_app, jac)`` filling
``jac`` (n_states, n_states) with d(dydt_i)/d(y_j); otherwise the solver
uses finite differences. A model may also give ``vector_field(y, i_app, p)``,
the right-hand side in arithmetic alone (numpy arrays or torch tensors, any
batch shape), for losses that differentiate it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from ionops.errors import UserError
from ionops.plugins import IONIC_MODELS, declared, load

__all__ = ["IonicModel", "available", "get_ionic_model"]


@dataclass(frozen=True)
class IonicModel:
    """One ionic model: its states, units, parameters and compiled equations.

    ``parameters`` maps each name to its default, in the order of the vector
    the compiled functions read; ``initial_states`` maps the name of each
    available initial state to a function returning it (the first is the
    default). ``tolerances`` is the (rtol, atol) the model's datasets use
    unless told otherwise. ``stimulus_name`` is what the model calls its
    applied current (``k``, a dimensionless stimulus parameter, for some).

    What families read about a model, beside its equations: ``gates``, the
    states that are classic Hodgkin-Huxley gates (dx/dt linear in x, and x
    kept in [0, 1]); ``observables``, the states an experiment records (the
    membrane potential, intracellular calcium); ``currents``, each ionic
    current as a function ``(y, p) -> value`` in ``current_unit``, of numpy
    arrays with the states on the first axis (any batch shape after it), so
    that a trained network's states can be read as currents.

    ``kernels`` is the import path of the module (or any object) holding the
    compiled ``rhs`` and, where the model has one, ``jacobian``. A model with
    resets (integrate-and-fire, Izhikevich) also gives ``event(t, y, p)``, whose
    crossing from negative to non-negative is the event (V - V_th), and
    ``reset(t, y, p)``, which maps the state in place there; the solver locates
    each crossing to its tolerance, resets and restarts, and returns the event
    times (:attr:`ionops.datasets.solver.Solution.events`).

    ``parameter_sets`` names published sets of parameter values (Izhikevich's RS, IB, CH,
    FS), each a mapping of overrides.

    ``caputo`` maps each state whose time derivative is a Caputo derivative to the
    parameter holding its order alpha, in (0, 1] (1: the ordinary derivative), as in the
    fractional Hodgkin-Huxley membrane C_m D^alpha V = I - I_ion; the right-hand side is
    then D^alpha of that state. Such a model is solved by the L1 scheme on a uniform step
    (:mod:`ionops.datasets._l1`; the step is the solver's ``max_step``, at most the grid's).
    """

    name: str
    title: str
    state_names: tuple[str, ...]
    state_units: tuple[str, ...]
    parameters: Mapping[str, float]
    kernels: str | Any
    initial_states: Mapping[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]]
    time_unit: str = "ms"
    current_unit: str = "uA/cm^2"
    tolerances: tuple[float, float | tuple[float, ...]] = (1e-7, 1e-9)
    parameter_check: Callable[[dict[str, float]], None] | None = None
    notes: Mapping[str, str] = field(default_factory=dict)
    vector_field: Callable[..., Any] | None = None
    stimulus_name: str = "i_app"
    gates: tuple[str, ...] = ()
    observables: tuple[str, ...] = ()
    currents: Mapping[str, Callable[[Any, Any], Any]] = field(default_factory=dict)
    caputo: Mapping[str, str] = field(default_factory=dict)
    parameter_sets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for state, order in self.caputo.items():
            if state not in self.state_names or order not in self.parameters:
                raise ValueError(f"{self.name}: caputo {state!r}: {order!r} needs a state and "
                                 "a parameter of the model")  # fmt: skip
        for what in ("gates", "observables"):
            unknown = [n for n in getattr(self, what) if n not in self.state_names]
            if unknown:
                raise ValueError(f"{self.name}: {what} {unknown} are not states "
                                 f"({', '.join(self.state_names)})")  # fmt: skip

    @property
    def rhs(self) -> Any:
        """The compiled right-hand side (its module imported on first use)."""
        return _kernels(self.kernels).rhs

    @property
    def jacobian(self) -> Any | None:
        """The compiled Jacobian, or None where the solver takes finite differences."""
        return getattr(_kernels(self.kernels), "jacobian", None)

    @property
    def has_events(self) -> bool:
        """Whether the model has resets: its kernels give ``event`` and ``reset``."""
        module = _kernels(self.kernels)
        return hasattr(module, "event") and hasattr(module, "reset")

    @property
    def event(self) -> Any:
        """The compiled event function ``event(t, y, p)``: its crossing from negative to
        non-negative is an event (a spike: V - V_th)."""
        return _kernels(self.kernels).event

    @property
    def reset(self) -> Any:
        """The compiled reset ``reset(t, y, p)``, applied to the state in place at an event."""
        return _kernels(self.kernels).reset

    def current_values(self, y: Any, p: NDArray[np.float64] | None = None) -> dict[str, Any]:
        """Every declared current at states ``y`` (states on the first axis), by name."""
        vector = self.parameter_vector() if p is None else p
        return {name: current(y, vector) for name, current in self.currents.items()}

    def derivative_orders(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each state's time-derivative order for parameters ``p`` (1 unless Caputo)."""
        orders = np.ones(self.n_states)
        names = list(self.parameters)
        for state, order in self.caputo.items():
            orders[self.state_names.index(state)] = p[names.index(order)]
        return orders

    @property
    def n_states(self) -> int:
        return len(self.state_names)

    def parameter_set(self, name: str | None) -> dict[str, float]:
        """The parameter values of the named set (none: no overrides); an unknown name lists
        the sets that exist."""
        if name is None:
            return {}
        if name not in self.parameter_sets:
            known = ", ".join(self.parameter_sets) or "none"
            raise UserError(f"{self.name} has no parameter set {name!r}; its sets: {known}")
        return dict(self.parameter_sets[name])

    def parameter_vector(self, overrides: Mapping[str, float] | None = None) -> NDArray[np.float64]:
        """The parameter vector in compiled order, with named overrides applied."""
        values = dict(self.parameters)
        for key, value in (overrides or {}).items():
            if key not in values:
                valid = ", ".join(f"{k} (default {v:g})" for k, v in self.parameters.items())
                raise UserError(f"{self.name} has no parameter '{key}'; valid: {valid}")
            if not math.isfinite(float(value)):
                raise UserError(f"{self.name} parameter {key} = {value}: must be a finite number "
                                f"(default {self.parameters[key]:g})")  # fmt: skip
            values[key] = float(value)
        for state, order in self.caputo.items():
            if not 0.0 < values[order] <= 1.0:
                raise UserError(f"{self.name} parameter {order} = {values[order]:g}: the order "
                                f"of the Caputo derivative of {state} must be in (0, 1] "
                                "(1: the ordinary derivative)")  # fmt: skip
        if self.parameter_check is not None:
            self.parameter_check(values)
        return np.array(list(values.values()), dtype=np.float64)

    def initial_state(
        self, p: NDArray[np.float64] | None = None, kind: str | None = None
    ) -> NDArray[np.float64]:
        """The named initial state (default: the model's first) for parameters ``p``."""
        kind = kind or next(iter(self.initial_states))
        if kind not in self.initial_states:
            valid = ", ".join(self.initial_states)
            raise UserError(f"{self.name} has no initial state '{kind}'; valid: {valid}")
        vector = self.parameter_vector() if p is None else p
        return np.array(self.initial_states[kind](vector), dtype=np.float64)

    def derivative(
        self,
        t: float,
        y: NDArray[np.float64],
        i_app: float = 0.0,
        p: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]:
        """dy/dt at one point (a convenience for tests and inspection)."""
        out = np.empty(self.n_states)
        vector = self.parameter_vector() if p is None else p
        self.rhs(float(t), np.ascontiguousarray(y, dtype=np.float64), vector, float(i_app), out)
        return out


def array_module(x: Any) -> Any:
    """numpy, or torch where ``x`` is a tensor: the arithmetic of a ``vector_field``."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    return np


def check_celltype(model: str, values: Mapping[str, float], celltypes: Mapping[float, str]) -> None:
    """Reject a ``celltype`` parameter that names none of ``celltypes`` (value -> name)."""
    if values["celltype"] not in celltypes:
        allowed = ", ".join(f"{int(k)} ({v})" for k, v in celltypes.items())
        raise UserError(f"{model}: celltype = {values['celltype']:g}; allowed: {allowed}")


def _kernels(kernels: str | Any) -> Any:
    return importlib.import_module(kernels) if isinstance(kernels, str) else kernels


def available() -> list[str]:
    """Names of every ionic model (the entry points ``ionops.ionic_models``)."""
    return list(declared(IONIC_MODELS))


def get_ionic_model(name: str) -> IonicModel:
    """The model declared under ``name``; an unknown name lists the known ones."""
    if name not in declared(IONIC_MODELS):
        raise UserError(f"unknown ionic model '{name}'; known models: {', '.join(available())}")
    model = load(IONIC_MODELS, name)()
    if model.name != name:
        raise UserError(f"the ionic model declared as {name!r} calls itself {model.name!r}: "
                        "make its entry point's name and IonicModel.name equal")  # fmt: skip
    return cast(IonicModel, model)
