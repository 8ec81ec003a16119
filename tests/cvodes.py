"""ORd trajectories from Myokit's CVODES, the reference that ionops' solver is checked against.

One compiled simulation of the reference CellML (../shared/reference/ord/)
serves every stimulus: the protocol's level is the applied current, entering
as I_stim = -level, as in ionops. Needs the dev extra (myokit) and Debian's
libsundials-dev; :func:`unavailable` says why it cannot run, or None. Used by
tests/test_ord_accuracy.py and benchmarks/ord_solver.py.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ORD = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ord"
CELLML = ORD / "ohara_rudy_2011_endo.cellml"
TRAJECTORIES = ORD / "ord_endo_reference.npz"
# The reference tolerances (absolute, relative): as tight as CVODES goes reliably.
REFERENCE_TOLERANCES = (1e-12, 1e-10)
# Myokit's defaults, the anchor of the speed comparison.
MYOKIT_DEFAULTS = (1e-6, 1e-4)


def unavailable() -> str | None:
    """Why CVODES references cannot be made here, or None."""
    if not CELLML.exists() or not TRAJECTORIES.exists():
        return f"the ORd reference model is not at {ORD} (it lives in ../shared/reference/)"
    try:
        _simulation()
    except ImportError:
        return "myokit is not installed (pip install -e '.[dev]')"
    except Exception as error:  # Myokit raises its own errors when it cannot build CVODES
        return f"Myokit cannot build CVODES ({error}); apt-get install libsundials-dev"
    return None


@cache
def _simulation() -> tuple[Any, list[str], list[str]]:
    """(simulation, ionops' states as Myokit names, Myokit's own state order)."""
    import myokit
    import myokit.formats

    model = myokit.formats.importer("cellml").model(str(CELLML))
    pace = model.get("membrane").add_variable("pace_level")
    pace.set_rhs(0)
    pace.set_binding("pace")
    model.get("membrane.Istim").set_rhs(myokit.PrefixMinus(myokit.Name(pace)))
    names = [str(n) for n in np.load(TRAJECTORIES)["state_names"]]
    by_suffix = {state.qname().split(".")[-1]: state.qname() for state in model.states()}
    model_order = [state.qname() for state in model.states()]
    return myokit.Simulation(model, myokit.Protocol()), [by_suffix[n] for n in names], model_order


def solve(
    amplitude: float,
    t_stim: float,
    times: NDArray[np.float64],
    y0: NDArray[np.float64],
    tolerances: tuple[float, float] = REFERENCE_TOLERANCES,
    states: bool = True,
) -> NDArray[np.float64]:
    """CVODES on ``times`` for I_app = amplitude while t <= t_stim, from ``y0`` (ionops order).

    Returns (n_t, 41) states in ionops' order, or (n_t,) V when ``states`` is False.
    """
    import myokit

    simulation, qnames, model_order = _simulation()
    protocol = myokit.Protocol()
    if amplitude != 0.0 and t_stim > 0.0:
        protocol.schedule(amplitude, 0.0, t_stim)
    simulation.set_protocol(protocol)
    state = dict(zip(qnames, y0, strict=True))
    simulation.set_default_state([state[name] for name in model_order])
    simulation.set_tolerance(*tolerances)
    simulation.reset()
    logged = qnames if states else [qnames[0]]
    log = simulation.run(float(times[-1]) + 1e-9, log_times=times, log=logged)
    if not states:
        return np.asarray(log[qnames[0]])
    return np.column_stack([np.asarray(log[name]) for name in qnames])


def paper_subset_stimuli(per_subset: int = 8, seed: int = 0) -> list[tuple[float, float]]:
    """(i, T_stim) drawn uniformly in each of the paper's ORd subsets, and the one without."""
    from ionops.datasets.protocols import PAPER_SUBSETS

    rng = np.random.default_rng(seed)
    stimuli = []
    for subset, _ in PAPER_SUBSETS["ord"]:
        for _ in range(1 if subset.i_high == 0.0 else per_subset):
            stimuli.append((float(rng.uniform(subset.i_low, subset.i_high)),
                            float(rng.uniform(subset.t_stim_low, subset.t_stim_high))))  # fmt: skip
    return stimuli
