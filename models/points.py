"""What a point of a family's search space may hold, checked before a search spends anything.

The platform adds two keys to points itself: a retraining's seed and a
candidate's index. A family's space, default point and candidates never use
them, and a trial's record (what MLflow and ``trials.csv`` keep) is itself a
point: configuring it again gives the same trial, which the retraining relies on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ionops.errors import UserError

if TYPE_CHECKING:
    from ionops.config import ExperimentConfig
    from ionops.models.family import SurrogateFamily

#: the keys the platform adds to a point: a retraining's seed, a candidate's index. A family's
#: space, its default point and its candidates never use them (checked when a search starts)
SEED_KEY, CANDIDATE_KEY = "seed", "candidate"
RESERVED_KEYS = frozenset({SEED_KEY, CANDIDATE_KEY})


def check_reserved(where: str, keys: Iterable[str]) -> None:
    """Refuse a family's point that uses one of :data:`RESERVED_KEYS`."""
    taken = sorted(RESERVED_KEYS.intersection(keys))
    if taken:
        raise UserError(
            f"{where} uses {', '.join(repr(k) for k in taken)}, which ionops adds to points "
            f"itself ({', '.join(sorted(RESERVED_KEYS))}): the family must name it otherwise"
        )


def check_points(
    family: SurrogateFamily,
    experiment: ExperimentConfig,
    data: Any,
    candidates: tuple[dict[str, Any], ...],
    first_point: dict[str, Any],
) -> None:
    """Refuse a family whose space or points use a key the search adds itself, or whose
    record of a trial is not the same trial again (a retraining configures the record)."""
    check_reserved(f"the {family.name} family's search space", family.hyperopt_space(experiment))
    check_reserved(f"the {family.name} family's default point", first_point)
    for index, candidate in enumerate(candidates):
        check_reserved(f"the {family.name} family's candidate {index}", candidate)
    trial = family.configure(candidates[0] if candidates else first_point, experiment, data)
    again = family.configure(trial.record, experiment, data)
    changed = sorted(k for k in {*trial.record, *again.record}
                     if trial.record.get(k) != again.record.get(k))  # fmt: skip
    if changed or again.arguments != trial.arguments:
        raise RuntimeError(
            f"the {family.name} family configures its own record of a trial as another trial "
            f"(record keys {changed}, arguments {trial.arguments} -> {again.arguments}): "
            "configure(record) must give the same trial back"
        )


def point_widths(point: Mapping[str, Any], widths: Sequence[int]) -> list[int] | None:
    """The hidden widths a point names: a space's one width per layer (``widths`` and
    ``depth``, the depth ``widths``' own where the point has none), or a record's
    ``"64-64-64"``; None where it names none."""
    if "widths" not in point:
        return None
    width = point["widths"]
    if isinstance(width, str):
        return [int(w) for w in width.split("-")]
    return [int(width)] * int(point.get("depth", len(widths)))


def check_cap(experiment: ExperimentConfig, widths: Sequence[int], count: int) -> None:
    """Refuse a network over an integer ``search.parameter_cap`` in the constrained space."""
    cap = experiment.search.parameter_cap
    if experiment.search.space == "constrained" and isinstance(cap, int) and count > cap:
        raise UserError(f"widths {list(widths)} give {count} parameters, over "
                        f"search.parameter_cap = {cap}")  # fmt: skip
