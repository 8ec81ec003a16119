"""What an experiment needs to know of each ionic model before compiling it.

Reading an experiment must not compile the models (numba), so the facts the
schema and the families check at load time live here: state names and the
stimulus name, and from them the inputs of an initial-value problem. A test
keeps them equal to the registry in :mod:`ionops.datasets.ionic`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal


@dataclass(frozen=True)
class ModelFacts:
    state_names: tuple[str, ...]
    stimulus_name: str = "i_app"

    @property
    def n_states(self) -> int:
        return len(self.state_names)


# fmt: off
ORD_STATES = (
    "v", "nai", "nass", "ki", "kss", "cai", "cass", "cansr", "cajsr", "m", "hf", "hs", "j",
    "hsp", "jp", "mL", "hL", "hLp", "a", "iF", "iS", "ap", "iFp", "iSp", "d", "ff", "fs",
    "fcaf", "fcas", "jca", "nca", "ffp", "fcafp", "xrf", "xrs", "xs1", "xs2", "xk1",
    "Jrelnp", "Jrelp", "CaMKt",
)
# fmt: on
IONIC_MODELS = {
    "fhn": ModelFacts(("V", "w")),
    "fhn_werneck": ModelFacts(("u", "w"), stimulus_name="k"),
    "hh": ModelFacts(("V", "m", "h", "n")),
    "ord": ModelFacts(ORD_STATES),
}

# the registered ionic models, as the schema's literal (a test keeps the two equal)
if TYPE_CHECKING:
    IonicModelName = str
else:
    IonicModelName = Literal[tuple(IONIC_MODELS)]


def problem_inputs(model: str) -> list[str]:
    """An initial-value problem's inputs: every state's initial value (``u0``), the stimulus."""
    facts = IONIC_MODELS[model]
    return [f"{name}0" for name in facts.state_names] + [facts.stimulus_name]


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
