"""``ionops cluster``: Ray over a SLURM allocation, and job steps that survive time limits.

- ``ionops cluster up``: head here, a worker on every other node (through
  ``srun``), each told the CPUs and GPUs SLURM gave it; prints the shell
  exports (``RAY_ADDRESS``, ``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN_PATH``) the
  driver needs: ``eval "$(ionops cluster up)"``.
- ``ionops cluster down``: stops this job's Ray processes, by PID.
- ``ionops cluster run [--ray] -- COMMAND...``: what an sbatch script runs:
  (optionally) the cluster up, COMMAND with the cluster's address, SIGUSR1 and
  SIGTERM forwarded to COMMAND, the cluster down; and when COMMAND stopped
  early (status 75, or ended after such a signal), ``scontrol requeue`` of the
  job, at most ``--max-requeues`` times, so it continues by itself.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from ionops.errors import EXIT_INTERRUPTED, UserError
from ionops.workdir import default_workdir


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cluster",
        help="Ray over a SLURM allocation; job steps that checkpoint and requeue",
        description=_plain(__doc__.split("\n\n", 1)[1]) if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start Ray on the allocation; print shell exports")
    down = actions.add_parser("down", help="stop this job's Ray processes")
    run = actions.add_parser("run", help="run a command as a requeueable job step")
    for each in (up, down, run):
        each.add_argument(
            "--job-dir", type=Path, help="the job's folder (default: WORKDIR/jobs/$SLURM_JOB_ID)"
        )
    for each in (up, run):
        each.add_argument("--no-auth", action="store_true",
                          help="no token authentication (trusted networks only)")  # fmt: skip
    run.add_argument("--ray", action="store_true", help="start a Ray cluster around COMMAND")
    run.add_argument("--max-requeues", type=int, default=5,
                     help="requeue the job at most this many times (default 5)")  # fmt: skip
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    up.set_defaults(handler=_up)
    down.set_defaults(handler=_down)
    run.set_defaults(handler=_run)


def _job_dir(args: argparse.Namespace) -> Path:
    if args.job_dir:
        return Path(args.job_dir)
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        raise UserError("SLURM_JOB_ID is unset: give --job-dir, or run inside a SLURM job")
    from ionops.cluster.slurm import slurm_count

    return default_workdir() / "jobs" / str(slurm_count(os.environ, "SLURM_JOB_ID"))


def _up(args: argparse.Namespace) -> int:
    from ionops.cluster.slurm import cluster_up

    plan = cluster_up(_job_dir(args), auth=not args.no_auth)
    print(exports(plan.environment()))
    print(
        f"# Ray: {len(plan.allocation.nodes)} nodes, {sum(plan.allocation.cpus)} CPUs, "
        f"{plan.allocation.gpus_per_node} GPUs per node; dashboard on the head's loopback: "
        f"ssh -L 8265:127.0.0.1:{plan.ports.dashboard} {plan.allocation.nodes[0]}",
        file=sys.stderr,
    )
    return 0


def exports(environment: dict[str, str]) -> str:
    """``export K=V`` lines for ``eval``, each value quoted for the shell."""
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in environment.items())


def _down(args: argparse.Namespace) -> int:
    from ionops.cluster.slurm import cluster_down

    stopped = cluster_down(_job_dir(args))
    print(f"stopped {stopped} Ray process groups of this job", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    from ionops import tracking
    from ionops.cluster.slurm import cluster_down, cluster_up, slurm_count

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UserError("give the command to run after --, e.g. -- ionops tune ord")
    if args.max_requeues < 0:
        raise UserError(f"--max-requeues = {args.max_requeues}: give 0 or more")
    job_dir = _job_dir(args)
    env = dict(os.environ)
    restarts = slurm_count(env, "SLURM_RESTART_COUNT", env.get("SLURM_RESTART_COUNT") or "0")
    print(f"ionops cluster run: job {env.get('SLURM_JOB_ID', '-')}, start {restarts + 1}: "
          f"{' '.join(command)}", flush=True)  # fmt: skip
    workdir = Path(env.get("IONOPS_WORKDIR", "ionops-work")).resolve()
    print(f"ionops cluster run: results under {workdir}; MLflow: {tracking.ui_command(workdir)}",
          flush=True)  # fmt: skip
    if args.ray:
        env |= cluster_up(job_dir, auth=not args.no_auth).environment()
    signalled: list[int] = []
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)
        child.send_signal(signal.SIGUSR1 if signum == signal.SIGUSR1 else signal.SIGTERM)

    for signum in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    status = child.wait()
    if args.ray:
        cluster_down(job_dir)
    stopped_early = status == EXIT_INTERRUPTED or (bool(signalled) and status != 0)
    if not stopped_early:
        return status
    job = env.get("SLURM_JOB_ID")
    if job and restarts < args.max_requeues:
        print(f"ionops cluster run: stopped early (status {status}); requeueing job {job} "
              f"({restarts + 1} of at most {args.max_requeues})", flush=True)  # fmt: skip
        subprocess.run(["scontrol", "requeue", job], check=True)
        return 0
    print(f"ionops cluster run: stopped early (status {status}) and not requeued "
          f"({restarts} requeues of at most {args.max_requeues}); resubmit to continue",
          flush=True)  # fmt: skip
    return EXIT_INTERRUPTED


def _plain(text: str) -> str:
    """The module's reST as terminal text: ``code`` and `code` shown bare."""
    return text.replace("``", "").replace("`", "")
