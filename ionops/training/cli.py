"""``ionops train``: one training run of an experiment, logged to MLflow, with a summary."""

from __future__ import annotations

import argparse
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ionops.config import dump_toml, load_experiment
from ionops.config_cli import add_experiment_argument, add_override_option
from ionops.errors import UserError, disk_full
from ionops.workdir import default_workdir, ensure_dataset


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one surrogate of an experiment (logged to MLflow)",
        description=(
            "Train the experiment's surrogate ([model]) on its dataset (generated first if "
            "missing), with a progress bar; log parameters and per-epoch metrics to MLflow and "
            "print a summary."
        ),
    )
    add_experiment_argument(parser)
    add_override_option(parser)
    parser.add_argument("--data", type=Path, help="dataset file (default: from [data])")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--mixed-precision", action="store_true", help="bf16 autocast on GPU")
    parser.add_argument("--run-name", help="MLflow run name (default: experiment and time)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ionops import tracking
    from ionops.models.family import Training
    from ionops.models.registry import get_family
    from ionops.training.loop import EpochReport, train

    config = load_experiment(args.experiment, args.overrides)
    family: Training = get_family(config.family)
    workdir = default_workdir()
    settings = _settings(args, config, workdir)
    path = ensure_dataset(config, workdir, args.data)
    data = family.load_data(config, path)
    trial = family.own_trial(config, data)
    arguments = trial.arguments
    import torch

    torch.manual_seed(config.training.seed)
    model = family.build(arguments)
    objective = family.objective(data, trial, config)
    run_name = args.run_name or f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = workdir / "runs" / run_name
    _refuse_another_configuration(run_dir, family.name, arguments, settings)
    described = {"dataset": str(path), "parameter_count": trial.parameter_count}
    writer = _start_run(config, workdir, run_dir, described)
    bar = tqdm(total=settings.epochs, disable=args.no_progress, unit="epoch", desc=run_name)
    metric = f"validation/{family.metric}"

    def on_epoch(report: EpochReport, _: Path | None) -> None:
        writer.metrics(
            {"train_loss": report.train_loss, "learning_rate": report.learning_rate,
             **report.metrics}, step=report.epoch,
        )  # fmt: skip
        bar.update(1)
        validation = report.metrics.get(metric, float("nan"))
        bar.set_postfix(loss=f"{report.train_loss:.4g}", val=f"{validation:.4g}")

    try:
        result = train(model, objective, settings, family=family.name, arguments=arguments,
                       checkpoint=run_dir / "checkpoint.pt", on_epoch=on_epoch)  # fmt: skip
    except KeyboardInterrupt:
        writer.end_quietly(tracking.KILLED)
        raise
    except BaseException as exc:
        writer.end_quietly(tracking.FAILED)
        full = _full_disk(exc, args, run_dir)
        if full is not None:
            raise full from exc
        raise
    finally:
        bar.close()
    writer.metrics({"peak_memory_bytes": result.peak_memory_bytes,
                    "train_seconds": result.train_seconds}, step=settings.epochs)  # fmt: skip
    writer.artifact(run_dir / "experiment.toml")
    writer.end(tracking.FINISHED)
    print(summary(result, trial.parameter_count, objective.state_names, family))
    print(f"checkpoint: {run_dir / 'checkpoint.pt'}")
    print(f"MLflow run {writer.run_id}; browse with: {_ui(workdir, writer)}")
    return 0


def _ui(workdir: Path, writer: Any) -> str:
    """How to open the UI on this run."""
    from ionops import tracking

    experiment = writer.client.get_run(writer.run_id).info.experiment_id
    return tracking.ui_command(workdir, experiment, writer.run_id)


def _settings(args: argparse.Namespace, config: Any, workdir: Path) -> Any:
    """The training settings; a device that does not exist, and a tracking store that cannot
    be used, refused before any work."""
    from ionops import tracking
    from ionops.training.loop import TrainSettings

    settings = TrainSettings.from_config(config.training, device=args.device,
                                         mixed_precision=args.mixed_precision)  # fmt: skip
    settings.torch_device()
    tracking.client(workdir)
    return settings


def _full_disk(exc: BaseException, args: argparse.Namespace, run_dir: Path) -> UserError | None:
    """A full disk that stopped the training, as an error that says how to continue the run
    (the same command would start another run: the default run name holds the time)."""
    where = disk_full(exc)
    if where is None:
        return None
    again = " ".join(["ionops", "train", str(args.experiment),
                      *(f"--set {o}" for o in args.overrides),
                      *(["--data", str(args.data)] if args.data else []),
                      "--run-name", run_dir.name])  # fmt: skip
    return UserError(f"disk full{where or ' at ' + str(run_dir)}: the training stopped; its "
                     "run continues from its last checkpoint (if it wrote one) once there is "
                     f"room: free some space and run {again}")  # fmt: skip


def _refuse_another_configuration(run_dir: Path, family: str, arguments: dict[str, Any],
                                  settings: Any) -> None:  # fmt: skip
    """A run's checkpoint written by another configuration: refused before MLflow hears of it."""
    from ionops.training.checkpoint import load_checkpoint
    from ionops.training.loop import check_resumable

    path = run_dir / "checkpoint.pt"
    if path.exists():
        check_resumable(path, load_checkpoint(path), family, arguments, settings)


def _start_run(config: Any, workdir: Path, run_dir: Path, extra: dict[str, Any]) -> Any:
    """The run's MLflow run (parameters logged), then its folder with the experiment as it ran:
    a store that refuses the run leaves no folder behind."""
    from ionops import tracking
    from ionops.workdir import write_atomic

    client = tracking.client(workdir)
    experiment = tracking.experiment_id(client, f"ionops/{config.label}/train", workdir)
    _close_abandoned(client, experiment)
    writer = _open_run(client, experiment, run_dir)
    if writer is None:
        owner = _owner()
        writer = tracking.RunWriter.start(client, experiment, run_dir.name, owner)
        writer.params({**config.model_dump(exclude_none=True), **extra})
    try:
        write_atomic(run_dir / "experiment.toml", dump_toml(config))
    except BaseException:
        writer.end_quietly(tracking.FAILED)
        raise
    return writer


def _owner() -> dict[str, str]:
    """The tags that say which process runs a training (see :func:`_close_abandoned`)."""
    return {"ionops.kind": "train", "ionops.host": socket.gethostname(),
            "ionops.pid": str(os.getpid())}  # fmt: skip


def _open_run(client: Any, experiment: str, run_dir: Path) -> Any | None:
    """The MLflow run of a training continued from its checkpoint, reopened; None if there is
    none to continue (a new run is made)."""
    from ionops import tracking

    if not (run_dir / "checkpoint.pt").exists():
        return None
    earlier = client.search_runs(
        [experiment], f"attributes.run_name = '{run_dir.name}' and tags.`ionops.kind` = 'train'",
        max_results=1, order_by=["attributes.start_time DESC"],
    )  # fmt: skip
    if not earlier or earlier[0].info.status == tracking.FINISHED:
        return None
    run_id = earlier[0].info.run_id
    client.update_run(run_id, status="RUNNING")
    for key, value in _owner().items():
        client.set_tag(run_id, key, value)
    return tracking.RunWriter(client, run_id)


def _close_abandoned(client: Any, experiment: str) -> None:
    """End as FAILED the training runs left RUNNING by a process of this machine that is gone
    (killed, or stopped by a full disk that refused even the run's end), saying so."""
    from ionops import tracking

    host = socket.gethostname()
    for run in client.search_runs([experiment], "attributes.status = 'RUNNING' and "
                                  f"tags.`ionops.host` = '{host}'"):  # fmt: skip
        pid = int(run.data.tags.get("ionops.pid", "0"))
        if pid and not _alive(pid):
            client.set_tag(run.info.run_id, "ionops.outcome", "abandoned")
            client.set_tag(run.info.run_id, "ionops.failure", f"its process ({pid}) ended without "
                           "closing the run (killed, or a full disk); continue it with the same "
                           f"command and --run-name {run.info.run_name}")  # fmt: skip
            client.set_terminated(run.info.run_id, status=tracking.FAILED)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def summary(result: Any, parameter_count: int, state_names: Sequence[str],
            family: Any) -> str:  # fmt: skip
    """The end-of-run table of the family's summary metrics per split, the worst state, size,
    memory and time."""
    shown = [m for m in family.summary_metrics if any(f"{s}/{m}" in result.final
                                                     for s in ("validation", "test"))]  # fmt: skip
    metrics = [family.metric_of(m) for m in shown]
    units = {"state": "in each state's unit", "": ""}
    notes = [f"{m.name}: {m.label}" + (f" ({units.get(m.unit, m.unit)})" if m.unit else "")
             for m in metrics]  # fmt: skip
    widths = [max(14, len(m) + 2) for m in shown]  # a long name keeps a space before it
    lines = ["", "errors, mean over samples and state variables; " + "; ".join(notes),
             f"{'split':<12}"
             + "".join(f"{m:>{w}}" for m, w in zip(shown, widths, strict=True))]  # fmt: skip
    for split in ("train", "validation", "test"):
        values = [result.final.get(f"{split}/{m}") for m in shown]
        if all(v is None for v in values):
            continue
        cells = "".join(m.format(v, 4, w) for m, v, w in zip(metrics, values, widths, strict=True))
        lines.append(f"{split:<12}{cells}")
    main = family.metric_of(family.metric)
    key = f"test/{main.name}"
    if key in result.final and main.per_state:
        worst = max(state_names, key=lambda s: result.final.get(f"{key}/{s}", 0.0))
        value = result.final.get(f"{key}/{worst}", float("nan"))
        lines.append(f"worst state on test ({main.name}): {worst} {main.format(value, 4)}")
    lines.append(
        f"parameters {parameter_count:,}; peak memory {result.peak_memory_bytes / 2**20:,.0f} MiB;"
        f" training time {result.train_seconds:,.1f} s for {result.epochs} epochs"
    )
    return "\n".join(lines)
