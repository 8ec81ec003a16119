"""``ionops train``: one training run of an experiment, logged to MLflow, with a summary."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ionops.config import dump_toml, load_experiment
from ionops.config_cli import add_experiment_argument, add_override_option
from ionops.workdir import default_workdir, ensure_dataset

SUMMARY_METRICS = ("rel_l1", "rel_l2", "rel_h1", "phys_rel_l2")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one surrogate of an experiment (logged to MLflow)",
        description=(
            "Train the experiment's FNO on its dataset (generated first if missing), with a "
            "progress bar; log parameters and per-epoch metrics to MLflow and print a summary."
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
    from ionops.datasets.loading import load_dataset
    from ionops.models import FNO, FNOArchitecture, validate
    from ionops.training.loop import EpochReport, TrainSettings, train

    config = load_experiment(args.experiment, args.overrides)
    workdir = default_workdir()
    path = args.data or ensure_dataset(config, workdir)
    data = load_dataset(path, config.training.normalisation)
    arch = FNOArchitecture(**config.fno.model_dump(), n_states=len(data.state_names))
    validate(arch, n_t=data.time.size)
    import torch

    torch.manual_seed(config.training.seed)
    model = FNO(arch)
    settings = TrainSettings.from_config(
        config.training, device=args.device, mixed_precision=args.mixed_precision
    )
    run_name = args.run_name or f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = workdir / "runs" / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "experiment.toml").write_text(dump_toml(config))

    client = tracking.client(workdir)
    experiment = tracking.experiment_id(client, f"ionops/{config.name}/train", workdir)
    writer = tracking.RunWriter.start(client, experiment, run_name, {"ionops.kind": "train"})
    writer.params({**config.model_dump(exclude_none=True), "dataset": str(path),
                   "parameter_count": model.parameter_count()})  # fmt: skip
    bar = tqdm(total=settings.epochs, disable=args.no_progress, unit="epoch", desc=run_name)

    def on_epoch(report: EpochReport, _: Path | None) -> None:
        writer.metrics(
            {"train_loss": report.train_loss, "learning_rate": report.learning_rate,
             **report.metrics}, step=report.epoch,
        )  # fmt: skip
        bar.update(1)
        validation = report.metrics.get("validation/rel_l2", float("nan"))
        bar.set_postfix(loss=f"{report.train_loss:.4f}", val=f"{validation:.4f}")

    try:
        result = train(model, data, settings, arguments=arch.as_dict(),
                       checkpoint=run_dir / "checkpoint.pt", on_epoch=on_epoch)  # fmt: skip
    except KeyboardInterrupt:
        writer.end(tracking.KILLED)
        raise
    except BaseException:
        writer.end(tracking.FAILED)
        raise
    finally:
        bar.close()
    writer.metrics({"peak_memory_bytes": result.peak_memory_bytes,
                    "train_seconds": result.train_seconds}, step=settings.epochs)  # fmt: skip
    writer.artifact(run_dir / "experiment.toml")
    writer.end(tracking.FINISHED)
    print(_summary(result, model.parameter_count(), data.state_names))
    print(f"checkpoint: {run_dir / 'checkpoint.pt'}")
    print(f"MLflow run {writer.run_id}; browse with: {tracking.ui_command(workdir)}")
    return 0


def _summary(result: Any, parameter_count: int, state_names: list[str]) -> str:
    header = f"{'split':<12}" + "".join(f"{m:>14}" for m in SUMMARY_METRICS)
    lines = ["", "relative errors (mean over samples and state variables)", header]
    for split in ("train", "validation", "test"):
        values = [result.final.get(f"{split}/{m}") for m in SUMMARY_METRICS]
        if all(v is None for v in values):
            continue
        cells = "".join(f"{v:>14.4%}" if v is not None else f"{'-':>14}" for v in values)
        lines.append(f"{split:<12}{cells}")
    worst = max(state_names, key=lambda s: result.final.get(f"test/rel_l2/{s}", 0.0))
    lines.append(f"worst state on test (rel L2): {worst} "
                 f"{result.final.get(f'test/rel_l2/{worst}', float('nan')):.4%}")  # fmt: skip
    lines.append(
        f"parameters {parameter_count:,}; peak memory {result.peak_memory_bytes / 2**20:,.0f} MiB;"
        f" training time {result.train_seconds:,.1f} s for {result.epochs} epochs"
    )
    return "\n".join(lines)
