"""A dataset's identity: the settings that determine its content, and the check against them.

Each generation plan names the root attributes that record its content's
settings and the ``[data]`` key each one comes from (``IDENTITY``). A file is
the dataset of an experiment when every one of those attributes, as recorded,
equals the plan's: the same check serves ``ionops generate`` (is the file at
``--output`` already this dataset?) and every command that reads a dataset for
an experiment (:func:`check_dataset`). A file that lacks one of them (written
by an earlier ionops, or not by ionops) cannot be checked and is refused by
name, never trusted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ionops.errors import UserError

# Attributes whose absence means a default: operator files never recorded their kind.
_ABSENT_MEANS = {"kind": "operator"}
# Computed values (the paced steady state of ORd) agree to this relative tolerance across
# CPUs and library versions; configured values must agree to rounding.
_LOOSE = {"initial_state": 1e-6}
_EXACT = 1e-12
_MISSING = object()


@dataclass(frozen=True)
class Difference:
    """One setting where a dataset file and the wanted dataset differ.

    ``setting`` is the ``[data]`` key (``data.parameters.e``); ``found`` is
    the file's value (``None`` with ``recorded`` False: the file does not
    record it), ``wanted`` the experiment's.
    """

    setting: str
    found: Any
    wanted: Any
    recorded: bool = True

    def describe(self, wanted_by: str = "the experiment") -> str:
        wanted = _show(self.wanted)
        if not self.recorded:
            return (
                f"{self.setting}: not recorded in the file (an earlier ionops, or not "
                f"an ionops dataset), so it cannot be checked; {wanted} in {wanted_by}"
            )
        return f"{self.setting}: {_show(self.found)} in the file, {wanted} in {wanted_by}"


def differences(
    found: Mapping[str, Any], wanted: Mapping[str, Any], identity: Mapping[str, str]
) -> list[Difference]:
    """Where the recorded attributes ``found`` differ from ``wanted`` on the ``identity`` keys.

    ``identity`` maps an attribute to its ``[data]`` key; a key with ``{}``
    is a mapping compared entry by entry (``data.parameters.{}``).
    """
    out: list[Difference] = []
    plain = _plain(dict(wanted))
    for attribute, setting in identity.items():
        value = found.get(attribute, _ABSENT_MEANS.get(attribute, _MISSING))
        expected = plain.get(attribute)
        if value is _MISSING:
            out.append(Difference(setting.replace(".{}", ""), None, expected, recorded=False))
        elif "{}" in setting and isinstance(value, Mapping) and isinstance(expected, Mapping):
            for key in sorted({*value, *expected}):
                a, b = value.get(key), expected.get(key)
                if not _same(a, b, _EXACT):
                    out.append(Difference(setting.format(key), a, b))
        elif not _same(value, expected, _LOOSE.get(attribute, _EXACT)):
            out.append(Difference(setting.replace(".{}", ""), value, expected))
    return out


def check_dataset(data: Any, path: Path, fix: str | None = None) -> None:
    """Refuse ``path`` unless it holds the dataset of the ``[data]`` section ``data``.

    Every difference is named with both values; ``fix`` says how to get the
    right file (default: generate it with the experiment's settings).
    """
    from ionops.datasets.generate import make_plan, spec_from_config
    from ionops.datasets.store import FORMAT, read_attributes

    found = read_attributes(Path(path))
    if found.get("format") != FORMAT:
        raise UserError(f"{path} is not an ionops dataset (no format attribute "
                        f"{FORMAT!r}); generate one with `ionops generate`")  # fmt: skip
    if "prediction" in found:
        raise UserError(f"{path} is a prediction (`ionops predict`), not a dataset to train or "
                        "report on: give the dataset it was predicted from")  # fmt: skip
    plan = make_plan(spec_from_config(data))
    changed = plan.differences(found)
    if changed:
        listed = "\n".join(f"  - {d.describe()}" for d in changed)
        fix = fix or (
            "generate the experiment's own dataset (`ionops generate` with the "
            "same experiment and --set options), or set these [data] keys to the "
            "file's"
        )
        raise UserError(f"{path} is not the dataset of the experiment's [data]:\n{listed}\n{fix}")


def settings_digest(values: Mapping[str, Any]) -> str:
    """Eight hex digits that name ``values`` (JSON, sorted keys) in a file name."""
    import hashlib

    text = json.dumps(_plain(dict(values)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back: tuples as lists, arrays and numpy scalars as lists
    and numbers (what a file's attributes decode to)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _same(a: Any, b: Any, rel: float) -> bool:
    if isinstance(a, np.ndarray | np.generic):
        a = a.tolist()
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k], rel) for k in a)
    if isinstance(a, Sequence) and not isinstance(a, str):
        return (isinstance(b, Sequence) and not isinstance(b, str) and len(a) == len(b)
                and all(_same(x, y, rel) for x, y in zip(a, b, strict=True)))  # fmt: skip
    if _number(a) and _number(b):
        return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=0.0) or a == b
    return bool(a == b)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    text = repr(_plain(value))
    return text if len(text) <= 120 else text[:117] + "..."
