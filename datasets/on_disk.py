"""What a generation finds on disk before it solves and before it assembles.

Rank 0 settles the output first (:func:`prepare`): a finished file of the
same dataset is complete; another dataset, a file that is not one, or an
interrupted generation of other settings is refused by name; otherwise the
tasks the journals in ``OUTPUT.partial/`` do not hold yet are still to solve.
Before assembling, :func:`check_room` refuses a file the disk cannot hold.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ionops.datasets.journal import Record, read_journals
from ionops.errors import UserError

if TYPE_CHECKING:
    from ionops.datasets.generate import GenerationPlan


def partial_folder(output: Path) -> Path:
    return output.with_name(output.name + ".partial")


def prepare(plan: GenerationPlan, output: Path, *, overwrite: bool, resume: bool
             ) -> dict[str, Any]:  # fmt: skip
    """Rank 0: settle what exists on disk, and list the tasks still to solve."""
    spec = plan.spec
    n_samples = plan.n_samples()
    partial = partial_folder(output)
    manifest = spec.manifest()
    if output.is_dir():
        raise UserError(f"--output {output} is a folder: give the dataset file's path")
    if resume and not output.exists() and not partial.exists():
        raise UserError(f"--resume: no dataset or interrupted generation at {output} to continue")
    if output.exists() and not overwrite:
        found = _finished_attributes(output)
        if found is None:
            raise UserError(
                f"{output} already exists and is not a readable ionops dataset (another file, "
                "or one cut short): pass --overwrite to replace it"
            )
        changed = plan.differences(found)
        if not changed:
            if partial.is_dir():  # left by a kill between the file's rename and this removal
                shutil.rmtree(partial, ignore_errors=True)
            return {"complete": True, "n_samples": n_samples}
        listed = "; ".join(d.describe("this command")
                           for d in changed[:3])  # fmt: skip
        raise UserError(
            f"{output} already exists and holds another dataset ({listed}): pass --overwrite "
            "to replace it, or another --output"
        )
    if partial.exists():
        found = _read_manifest(partial)
        if overwrite or found is None:
            shutil.rmtree(partial)
        elif found != manifest:
            raise UserError(
                f"{partial} holds an interrupted generation with other settings "
                f"({_difference(found, manifest)}): rerun it with its own settings to finish "
                "it, or pass --overwrite to discard it"
            )
    try:
        partial.mkdir(parents=True, exist_ok=True)
        manifest_path = partial / "manifest.json"
        if not manifest_path.exists():
            temporary = partial / ".manifest.json.tmp"
            temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True))
            temporary.replace(manifest_path)
    except OSError as exc:
        raise UserError(f"cannot write the dataset at {output}: {exc.strerror}") from None
    done = read_journals(partial)
    index = plan.tasks()
    pending = [task for task, key in enumerate(index) if key not in done]
    pending.sort(key=lambda task: -plan.cost(index[task]))
    run_id = time.strftime("%Y%m%dT%H%M%S") + f"-{len(list(partial.glob('*.journal'))):03d}"
    return {"complete": False, "n_samples": n_samples, "pending": pending, "run_id": run_id,
            "done": len(done)}  # fmt: skip


def _read_manifest(partial: Path) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads((partial / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return found


def check_room(output: Path, records: Mapping[tuple[int, int], Record]) -> None:
    """Refuse to assemble where the file cannot fit (HDF5 on a full disk can crash the process
    when it closes the file): the journals hold the samples, so a rerun only assembles."""
    needed = int(1.1 * sum(record.length for record in records.values())) + 4 * 2**20  # tables
    free = shutil.disk_usage(output.parent).free
    if free < needed:
        raise UserError(f"disk full at {output.parent}: the dataset needs about "
                        f"{needed / 2**20:.1f} MiB and {free / 2**20:.1f} MiB are free; free "
                        "some space and run the same command again (the solved samples are "
                        "kept: it only assembles the file)")  # fmt: skip


def _finished_attributes(output: Path) -> dict[str, Any] | None:
    """The root attributes of a finished dataset file, or None if it is not one."""
    from ionops.datasets.store import FORMAT, read_attributes

    try:
        found = read_attributes(output)
    except (OSError, ValueError, UserError):
        return None
    return found if found.get("format") == FORMAT else None


def _difference(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    a, b = found.get("spec", {}), wanted["spec"]
    changed = [f"{k}: {a.get(k)!r} there, {b[k]!r} now" for k in b if a.get(k) != b[k]]
    return "; ".join(changed) or "format version"
