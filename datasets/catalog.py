"""The ionic models an experiment may name, and the inputs of their initial-value problems.

Reading an experiment must not compile the models (numba): the names come from the entry
points ``ionops.ionic_models``, and a model's facts from its module, whose kernels compile
on first use only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from ionops.plugins import IONIC_MODELS, declared

# the declared ionic models, as the schema's literal
if TYPE_CHECKING:
    IonicModelName = str
else:
    IonicModelName = Literal[tuple(declared(IONIC_MODELS))]


def problem_inputs(model: str) -> list[str]:
    """An initial-value problem's inputs: every state's initial value (``u0``), the stimulus."""
    from ionops.datasets.ionic import get_ionic_model

    facts = get_ionic_model(model)
    return [f"{name}0" for name in facts.state_names] + [facts.stimulus_name]


def settings_error(model: str, parameters: Mapping[str, float],
                   initial_state: str | None = None) -> str | None:  # fmt: skip
    """What is wrong with ``data.parameters`` or ``data.initial_state`` for ``model``, or None:
    checked when the experiment is read, not when generation reaches them."""
    from ionops.datasets.ionic import get_ionic_model
    from ionops.errors import UserError

    facts = get_ionic_model(model)
    try:
        facts.parameter_vector(parameters)
    except UserError as exc:
        return f"data.parameters: {exc}"
    if initial_state is not None and initial_state not in facts.initial_states:
        return (f"data.initial_state = {initial_state!r}: {model} has no such initial state; "
                f"known: {', '.join(facts.initial_states)}")  # fmt: skip
    return None


def problem_error(model: str, vary: Mapping[str, tuple[float, float]],
                  fixed: Mapping[str, float]) -> str | None:  # fmt: skip
    """What is wrong with a problem's varied and fixed inputs, or None."""
    names = problem_inputs(model)
    for table, given in (("vary", vary), ("fixed", fixed)):
        unknown = sorted(set(given) - set(names))
        if unknown:
            return (f"data.{table} names {', '.join(unknown)}, not inputs of {model}; its inputs "
                    f"are {', '.join(names)} (initial states, then the stimulus)")  # fmt: skip
    missing = [name for name in names if name not in vary and name not in fixed]
    if missing:
        return (f"the problem leaves {', '.join(missing)} unset: give each a range in "
                f"[data.vary] (e.g. data.vary.{missing[0]} = [0.0, 1.0]) or a value in "
                "[data.fixed]")  # fmt: skip
    for name, (low, high) in vary.items():
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            return f"data.vary.{name} = {[low, high]}: need finite low <= high"
    for name, value in fixed.items():
        if not math.isfinite(value):
            return f"data.fixed.{name} = {value}: must be finite"
    both = sorted(set(vary) & set(fixed))
    if both:
        return f"{', '.join(both)} both varied and fixed: keep each in one table"
    return None
