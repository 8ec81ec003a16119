"""The Ray Tune trainable: one point of the space trained by :func:`ionops.training.train`.

The same function serves a search trial and a retraining seed, of any
surrogate family: the family configures the point, builds the network and
gives the objective. Every ``tune.report`` is a round trip to the driver that
the trial waits for, so it reports only when somebody needs the result: at
the epochs where ASHA decides (its rungs), with each checkpoint (every
``checkpoint_every`` epochs), at the last epoch (each of these evaluated
whatever ``training.eval_every`` says), and at the first evaluated epoch
after ``report_seconds``. Each report carries the epochs since the previous
one in ``history``, so MLflow still gets every epoch. It continues from
``tune.get_checkpoint()`` when Tune restarts it after a failure or a resume.
The dataset arrives through Ray's object store (``tune.with_parameters``),
once per node rather than once per trial.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ionops.config import ExperimentConfig
from ionops.models.family import Training
from ionops.models.points import CANDIDATE_KEY, SEED_KEY
from ionops.models.registry import get_family

HISTORY = "history"  # the epochs a report carries before its own, oldest first
PER_SAMPLE_FILE = "per_sample.pt"
CANDIDATE = CANDIDATE_KEY  # a trial of the candidate protocol: its index into the candidate set


def search_metric(experiment: ExperimentConfig, split: str = "validation") -> str:
    """The metric a search of ``experiment`` minimises: ``split/`` and the family's error."""
    return f"{split}/{get_family(experiment.family).metric}"


@dataclass(frozen=True)
class TrialPlan:
    """How every trial of one search (or retraining) trains, beside its sampled point."""

    experiment: ExperimentConfig
    eval_splits: tuple[str, ...] = ("validation",)
    final_splits: tuple[str, ...] = ()
    eval_every: int | None = None  # None: the experiment's training.eval_every
    checkpoint_every: int = 10
    threads: int = 1
    keep_outputs: bool = False
    device: str = "auto"
    mixed_precision: bool = False
    report_epochs: frozenset[int] = frozenset()  # where the scheduler decides: always reported
    report_seconds: float = 30.0
    candidates: tuple[dict[str, Any], ...] = ()  # the candidate protocol's points, in order


def trial_point(config: dict[str, Any], candidates: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """The point a trial's Tune config stands for (a candidate index stands for its point)."""
    config = dict(config)
    if CANDIDATE in config:
        return {**candidates[int(config.pop(CANDIDATE))], **config}
    return config


def run_trial(config: dict[str, Any], data: Any, plan: TrialPlan) -> None:
    """Train one point; ``config["seed"]``, when present, replaces the experiment's seed."""
    import torch
    from ray import tune

    from ionops.cluster.runtime import quiet_ray_loggers
    from ionops.training.checkpoint import FILENAME
    from ionops.training.loop import EpochReport, TrainSettings, train

    quiet_ray_loggers()
    torch.set_num_threads(plan.threads)
    family: Training = get_family(plan.experiment.family)
    point = trial_point(config, plan.candidates)
    trial = family.configure(point, plan.experiment, data)
    seed = int(point.get(SEED_KEY, plan.experiment.training.seed))
    settings = TrainSettings.from_config(
        trial.training.model_copy(update={"seed": seed}),
        device=plan.device,
        mixed_precision=plan.mixed_precision,
        eval_splits=plan.eval_splits,
        final_splits=plan.final_splits,
        eval_every=plan.eval_every or trial.training.eval_every,
        checkpoint_every=plan.checkpoint_every,
    )
    torch.manual_seed(seed)
    model = family.build(trial.arguments)
    objective = family.objective(data, trial, plan.experiment)
    workspace = Path(tempfile.mkdtemp(prefix="ionops-trial-"))
    local = workspace / FILENAME
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as folder:
            shutil.copyfile(Path(folder) / FILENAME, local)

    # seconds this trial spent in its own work (epochs, evaluation, checkpoint files), not
    # in Tune's reporting: the search-overhead benchmark compares their sum with the wall time
    busy: dict[str, float] = {"seconds": 0.0, "since": time.perf_counter()}
    reports = _Reports(
        plan,
        settings.epochs,
        settings.checkpoint_every,
        metric=search_metric(plan.experiment, plan.eval_splits[0]),
    )

    def on_epoch(report: EpochReport, written: Path | None) -> None:
        busy["seconds"] += time.perf_counter() - busy["since"]
        row: dict[str, Any] = {
            "epoch": report.epoch, "train_loss": report.train_loss,
            "learning_rate": report.learning_rate, "train_seconds": report.seconds,
            "trial_seconds": busy["seconds"], **report.metrics,
        }  # fmt: skip
        if restored is not None and not busy.get("resumed"):
            row["resumed_from_epoch"] = report.epoch - 1  # Tune restarted it from a checkpoint
            busy["resumed"] = True
        result = reports.due(row, checkpointed=written is not None)
        busy["reported"] = busy.get("reported", 0) + (result is not None)
        last = report.epoch == settings.epochs
        if result is not None and (written is None or (last and plan.keep_outputs)):
            tune.report(result)  # the last epoch's checkpoint goes with the outputs below
        elif result is not None:
            tune.report({**result, "checkpointed": True},
                        checkpoint=tune.Checkpoint.from_directory(str(workspace)))  # fmt: skip
        busy["since"] = time.perf_counter()

    try:
        result = train(model, objective, settings, family=family.name,
                       arguments=trial.arguments, checkpoint=local, on_epoch=on_epoch,
                       evaluate_now=reports.must_report)  # fmt: skip
        if restored is not None and not busy.get("reported") and not plan.keep_outputs:
            # restored from its last epoch's checkpoint (a kill came before Tune's snapshot took
            # that report): nothing left to train, so the report Tune lost is made again
            last_row = result.history[-1]
            tune.report({"epoch": last_row["epoch"], "train_loss": last_row["train_loss"],
                         "learning_rate": last_row["learning_rate"],
                         "train_seconds": last_row["seconds"], "checkpointed": True,
                         **{k: v for k, v in last_row.items() if "/" in k}},
                        checkpoint=tune.Checkpoint.from_directory(str(workspace)))  # fmt: skip
        if plan.keep_outputs:
            torch.save({split: {k: torch.from_numpy(v) for k, v in errors.items()}
                        for split, errors in result.per_sample.items()},
                       workspace / PER_SAMPLE_FILE)  # fmt: skip
            summary = {
                "epoch": settings.epochs, "final": True, "checkpointed": True,
                "peak_memory_bytes": result.peak_memory_bytes,
                "train_seconds": result.train_seconds,
                **result.final,
            }  # fmt: skip
            tune.report(summary, checkpoint=tune.Checkpoint.from_directory(str(workspace)))
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


class _Reports:
    """When a trial reports to Tune, and the epochs each report carries.

    Every report holds the search's metric. The epochs that must be reported
    (ASHA's rungs, checkpoints, the last) are evaluated whatever
    ``training.eval_every`` says (:meth:`must_report`, asked by the training
    loop); otherwise an evaluated epoch is reported once ``report_seconds``
    have passed since the last report.
    """

    def __init__(self, plan: TrialPlan, epochs: int, checkpoint_every: int = 0,
                 metric: str | None = None) -> None:  # fmt: skip
        self.plan, self.epochs, self.checkpoint_every = plan, epochs, checkpoint_every
        self.metric = metric
        self.held: list[dict[str, Any]] = []
        self.reported_at = time.monotonic()

    def must_report(self, epoch: int) -> bool:
        """Whether ``epoch`` is reported whatever happens (and so must be evaluated)."""
        checkpointed = self.checkpoint_every > 0 and epoch % self.checkpoint_every == 0
        return checkpointed or epoch == self.epochs or epoch in self.plan.report_epochs

    def due(self, row: dict[str, Any], checkpointed: bool) -> dict[str, Any] | None:
        """The result to report for this epoch's ``row``, or None to hold it for the next one."""
        epoch = row["epoch"]
        evaluated = self.metric is None or self.metric in row
        late = time.monotonic() - self.reported_at >= self.plan.report_seconds
        if not (checkpointed or self.must_report(epoch) or (late and evaluated)):
            self.held.append(row)
            return None
        self.reported_at = time.monotonic()
        if not self.held:
            return row
        result = {**row, HISTORY: self.held}
        self.held = []
        return result
