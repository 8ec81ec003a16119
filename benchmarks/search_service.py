"""The search service's costs: time outside training, epochs saved by ASHA, Ray and MLflow memory.

Runs one real `ionops tune` (a subprocess, local Ray, MLflow on a real
`mlflow server` on 127.0.0.1) on a small FHN problem and measures, side by
side in that one run:

- search overhead: the command's wall time times the concurrency against the
  summed work of all trials (their epochs, evaluations and checkpoint files,
  as each trial reports ``trial_seconds``); the rest is Ray's start-up, trial
  scheduling, reporting, Tune's snapshots and MLflow. Given for the whole
  command and for the steady state (first trial start to last trial end).
  Target: <= 3 % outside training;
- ASHA: epochs trained against every trial trained to the last epoch;
- memory (proportional set size, peaks, sampled every second): the driver
  (which holds the MLflow client), Ray's own processes, the trial workers,
  and the MLflow server;
- serial costs per trial: the CPU seconds of the driver (Tune's loop, the
  searcher, the MLflow client), of Ray's own processes and of the MLflow
  server, per trial: what 32 concurrent trials (4 nodes x 4 GPUs, half a GPU
  each) would ask of them, against trials of the given length.

    python benchmarks/search_service.py [--trials 8] [--epochs 30] [--n-t 630]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

BIN = Path(sys.executable).parent


def start_mlflow_server(root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return server, uri
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("mlflow server did not start")


def pss(process: psutil.Process) -> int:
    try:
        return int(process.memory_full_info().pss)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def kind_of(process: psutil.Process) -> str:
    try:
        line = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    if "default_worker.py" in line or line.startswith("ray::"):  # a worker: a trial or idle
        return "trial workers"
    return "Ray processes"


def cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    return float(times.user + times.system)


def remember(cpu: dict[int, tuple[str, float]], process: psutil.Process, kind: str) -> None:
    """The process's CPU seconds so far (the last reading stays once it has exited)."""
    seconds = cpu_seconds(process)
    if seconds > 0.0:
        cpu[process.pid] = (kind, seconds)


def sample(
    driver: psutil.Process,
    server: psutil.Process,
    peaks: dict[str, int],
    cpu: dict[int, tuple[str, float]],
) -> None:
    """Memory peaks by kind into ``peaks``; each process's latest CPU seconds into ``cpu``."""
    sizes = {"driver (with the MLflow client)": pss(driver), "MLflow server": pss(server)}
    remember(cpu, driver, "driver")
    for process in [server, *server.children(recursive=True)]:
        if process is not server:
            sizes["MLflow server"] += pss(process)
        remember(cpu, process, "MLflow server")
    try:
        children = driver.children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for child in children:
        kind = kind_of(child)
        sizes[kind] = sizes.get(kind, 0) + pss(child)
        if kind == "Ray processes":
            remember(cpu, child, kind)
    sizes["all Ray (driver, Ray, workers)"] = sum(
        v for k, v in sizes.items() if k not in ("MLflow server", "gone")
    )
    for key, value in sizes.items():
        peaks[key] = max(peaks.get(key, 0), value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--n-t", type=int, default=630)
    parser.add_argument(
        "--marginal", type=int, metavar="N", default=0,
        help="also run N more trials: the difference is each extra trial's serial cost",
    )  # fmt: skip
    parser.add_argument(
        "--marginal-epochs", type=int, metavar="E", default=0,
        help="also run every trial for E more epochs: the difference is each report's cost",
    )  # fmt: skip
    args = parser.parse_args()
    wall, concurrency, spans, epochs, peaks, cpu = run_search(args, args.trials, args.epochs)
    report(args, wall, concurrency, spans, epochs, len(spans), peaks)
    if args.marginal:
        _, _, more_spans, _, _, more_cpu = run_search(args, args.trials + args.marginal,
                                                      args.epochs)  # fmt: skip
        serial_costs(cpu, more_cpu, args.marginal, "trial", more_spans)
    if args.marginal_epochs:
        longer = args.epochs + args.marginal_epochs
        _, _, _, more_epochs, _, more_cpu = run_search(args, args.trials, longer)
        serial_costs(cpu, more_cpu, more_epochs - epochs, "epoch", spans)


def run_search(args: argparse.Namespace, trials: int, epochs: int) -> tuple[Any, ...]:
    """One real `ionops tune`: (wall, concurrency, spans, epochs trained, peaks, cpu)."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="ionops-bench-") as scratch:
        root = Path(scratch)
        settings = [
            "--set", f"data.fraction={args.fraction}", "--set", f"data.n_t={args.n_t}",
            "--set", f"training.epochs={epochs}", "--set", f"search.num_samples={trials}",
            "--set", "search.space=constrained",
        ]  # fmt: skip
        env = {**os.environ, "IONOPS_WORKDIR": str(root / "work")}
        subprocess.run([str(BIN / "ionops"), "generate", "fhn", "--fraction", str(args.fraction),
                        "--n-t", str(args.n_t), "--no-progress"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        server, uri = start_mlflow_server(root)
        env["MLFLOW_TRACKING_URI"] = uri
        peaks: dict[str, int] = {}
        cpu: dict[int, tuple[str, float]] = {}
        began = time.monotonic()
        search = subprocess.Popen([str(BIN / "ionops"), "tune", "fhn", *settings, "--no-progress"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)  # fmt: skip
        driver, server_process = psutil.Process(search.pid), psutil.Process(server.pid)
        while search.poll() is None:
            sample(driver, server_process, peaks, cpu)
            time.sleep(0.5)
        wall = time.monotonic() - began
        sample(driver, server_process, peaks, cpu)  # the server's last requests
        output = search.stdout.read() if search.stdout else ""
        if search.returncode != 0:
            server.terminate()
            raise SystemExit(f"ionops tune failed:\n{output[-3000:]}")
        concurrency = int(re.search(r"(\d+) at a time", output).group(1))  # type: ignore[union-attr]

        client = mlflow.tracking.MlflowClient(uri)
        experiment = client.get_experiment_by_name("ionops/fhn-fno/search")
        children = [r for r in client.search_runs([experiment.experiment_id])
                    if "ionops.trial_id" in r.data.tags]  # fmt: skip
        trained = sum(int(r.data.metrics["epoch"]) for r in children)
        spans = [(r.info.start_time / 1000, r.info.end_time / 1000, r.data.metrics["trial_seconds"])
                 for r in children]  # fmt: skip
        server.terminate()
        server.wait()
    return wall, concurrency, spans, trained, peaks, cpu


def report(
    args: argparse.Namespace,
    wall: float,
    concurrency: int,
    spans: list[tuple[float, float, float]],
    epochs: int,
    trials: int,
    peaks: dict[str, int],
) -> None:
    work = sum(w for _, _, w in spans)
    first, last = min(s for s, _, _ in spans), max(e for _, e, _ in spans)
    steady = last - first
    print(
        f"search: {trials} trials x {args.epochs} epochs, {concurrency} at a time, "
        f"FHN {args.fraction:g} of the paper's samples on {args.n_t} points, constrained space"
    )
    print(f"wall time of `ionops tune` {wall:.1f} s; first trial start to last trial end "
          f"{steady:.1f} s; summed trial work {work:.1f} s")  # fmt: skip
    for label, span in (("whole command", wall), ("steady state", steady)):
        outside = 1 - work / (span * concurrency)
        print(f"  outside training, {label}: {outside:.1%} (wall x concurrency "
              f"{span * concurrency:.1f} s; target <= 3%)")  # fmt: skip
    # while every slot has a trial to run: from the first start to the last trial's start (the
    # tail after it, with fewer trials left than slots, shrinks as 1/N in a 200-trial search)
    full_until = max(s for s, _, _ in spans)
    in_window = sum(w * max(0.0, min(e, full_until) - s) / (e - s) for s, e, w in spans)
    outside = 1 - in_window / ((full_until - first) * concurrency)
    print(f"  outside training, all slots busy (first start to last start, "
          f"{full_until - first:.1f} s): {outside:.1%} (target <= 3%)")  # fmt: skip
    per_trial = (steady * concurrency - work) / trials
    inside = sorted(e - s - w for s, e, w in spans)
    print(
        f"  per trial outside its own work (steady state): {per_trial:.1f} s, of which "
        f"{sum(inside) / trials:.1f} s within its MLflow run (median {inside[trials // 2]:.1f} s; "
        f"the first trials on each worker also start it and import torch) and "
        f"{per_trial - sum(inside) / trials:.1f} s between trials (scheduling, snapshots, idle "
        f"slots in the tail); a trial of the paper's size (1000 epochs, minutes to hours) "
        f"would spend about the same"
    )
    full = trials * args.epochs
    print(f"ASHA: {epochs} epochs trained of {full} without early stopping: "
          f"{1 - epochs / full:.0%} saved ({full / epochs:.2f}x fewer)")  # fmt: skip
    print("memory peaks (PSS):")
    for key, value in sorted(peaks.items()):
        if key != "gone":
            print(f"  {key:<34} {value / 2**20:8.0f} MiB")


def serial_costs(
    cpu: dict[int, tuple[str, float]],
    more_cpu: dict[int, tuple[str, float]],
    extra: int,
    unit: str,
    spans: list[tuple[float, float, float]],
) -> None:
    """CPU seconds each extra ``unit`` costs the processes every trial goes through; 32 at once."""

    def by_kind(readings: dict[int, tuple[str, float]]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for kind, seconds in readings.values():
            totals[kind] = totals.get(kind, 0.0) + seconds
        return totals

    base, more = by_kind(cpu), by_kind(more_cpu)
    median_trial = sorted(e - s for s, e, _ in spans)[len(spans) // 2]
    print(f"serial costs per {unit} (the CPU seconds of a search with {extra} more, less the "
          f"first one's, / {extra}):")  # fmt: skip
    for kind in ("driver", "Ray processes", "MLflow server"):
        each = max(0.0, more.get(kind, 0.0) - base.get(kind, 0.0)) / extra
        if unit == "trial":
            print(f"  {kind:<16} {each:6.3f} s: 32 trials at a time keep it busy "
                  f"{32 * each / median_trial:.0%} with trials of {median_trial:.1f} s (this "
                  f"run's median), {32 * each / 600:.2%} with 10-minute trials")  # fmt: skip
        else:
            print(f"  {kind:<16} {each * 1e3:6.1f} ms: 32 trials at a time keep it busy "
                  f"{32 * each / 1.0:.0%} with 1 s epochs, {32 * each / 10.0:.1%} with "
                  f"10 s epochs")  # fmt: skip


if __name__ == "__main__":
    main()
