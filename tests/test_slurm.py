"""Ray over SLURM: the allocation read from SLURM's environment, the cluster plan, the sbatch
scripts, and (on a real local SLURM) generation, a 2-node search and a signalled requeue."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ionops.cluster.slurm import Allocation, Ports, expand_counts, expand_hostlist, plan_cluster
from ionops.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "slurm"
BIN = Path(sys.executable).parent
JOB_ENV = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu[07-08],cpu1",
           "SLURM_JOB_CPUS_PER_NODE": "16(x2),8", "SLURM_GPUS_PER_NODE": "a100:4"}  # fmt: skip


def test_the_allocation_comes_from_slurms_environment():
    assert expand_hostlist("n[1-3,7],gpu[01-02],login") == [
        "n1", "n2", "n3", "n7", "gpu01", "gpu02", "login"]  # fmt: skip
    assert expand_counts("4(x2),2", 3) == [4, 4, 2]
    allocation = Allocation.from_environment(JOB_ENV)
    assert allocation == Allocation(4242, ("gpu07", "gpu08", "cpu1"), (16, 16, 8), 4)
    with pytest.raises(UserError, match="gives 2 counts for 3 nodes"):
        expand_counts("4(x2)", 3)
    with pytest.raises(UserError, match="not inside a SLURM allocation"):
        Allocation.from_environment({})


def test_the_plan_tells_ray_what_slurm_gave_on_loopback_with_a_job_token(tmp_path):
    plan = plan_cluster(tmp_path, env={**JOB_ENV, "IONOPS_NODE_IP": "10.0.0.1"})
    assert plan.address.startswith("10.0.0.1:")
    head = plan.head_command("ray")
    assert "--head" in head and "--block" in head
    assert {"--num-cpus=16", "--num-gpus=4", "--dashboard-host=127.0.0.1"} <= set(head)
    assert f"--port={plan.ports.gcs}" in head and f"--temp-dir={plan.temp_dir}" in head
    assert len(plan.temp_dir) <= 45
    worker = plan.worker_command(2, "ray")
    assert worker[:2] == ["srun", "--nodes=1"] and "--nodelist=cpu1" in worker
    assert {"--num-cpus=8", f"--address={plan.address}",
            f"--dashboard-agent-listen-port={plan.ports.agent(2)}"} <= set(worker)  # fmt: skip
    assert "auto" not in " ".join(worker)
    env = plan.environment()
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / "ray-token")
    assert env["RAY_ADDRESS"] == plan.address
    without = plan_cluster(tmp_path, env={**JOB_ENV, "IONOPS_NODE_IP": "10.0.0.1"},
                           auth=False).environment()  # fmt: skip
    assert without["RAY_AUTH_MODE"] == "disabled" and "RAY_AUTH_TOKEN_PATH" not in without


def test_jobs_sharing_a_node_get_different_port_blocks():
    blocks = {Ports.for_job(job).gcs for job in range(1000, 1400)}
    assert len(blocks) == 400
    ports = Ports.for_job(77)
    assert ports.gcs < ports.client_server < ports.dashboard < ports.agent(0) <= ports.last


@pytest.mark.parametrize(
    ("name", "value"),
    [("SLURM_JOB_ID", "abc"), ("SLURM_JOB_NODELIST", "n[1-x]"), ("SLURM_GPUS_ON_NODE", "lots"),
     ("SLURM_GPUS_PER_NODE", "a100:many"), ("SLURM_RESTART_COUNT", "zz")],
)  # fmt: skip
def test_nonsense_from_slurm_is_a_clear_error(tmp_path, name, value):
    env = {**os.environ, **JOB_ENV, name: value, "IONOPS_WORKDIR": str(tmp_path)}
    done = subprocess.run([str(BIN / "ionops"), "cluster", "run", "--ray", "--", "true"],
                          env=env, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert name in done.stderr and repr(value) in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "jobs").exists()


def test_exports_are_quoted_for_eval(tmp_path):
    from ionops.cluster.cli import exports

    marker = tmp_path / "ran"
    strange = str(tmp_path / f"jobs $(touch {marker}); 'x'")
    script = exports({"RAY_AUTH_TOKEN_PATH": strange, "RAY_AUTH_MODE": "token"})
    shown = subprocess.run(["bash", "-c", 'eval "$1"; printf %s "$RAY_AUTH_TOKEN_PATH"', "-",
                            script], capture_output=True, text=True, check=True)  # fmt: skip
    assert shown.stdout == strange and not marker.exists()


def test_a_token_file_of_another_mode_is_replaced_by_a_private_one(tmp_path):
    from ionops.cluster.slurm import _write_token

    token = tmp_path / "ray-token"
    token.write_text("old")
    token.chmod(0o644)
    _write_token(token)
    assert token.stat().st_mode & 0o777 == 0o600 and len(token.read_text()) == 64


def test_the_head_address_is_one_the_other_nodes_can_reach(monkeypatch):
    import socket

    from ionops.cluster import slurm

    names = {"head": "127.0.1.1", "n2": "127.0.0.2"}

    def resolve(name: str) -> str:
        if name not in names:
            raise OSError("Name or service not known")
        return names[name]

    monkeypatch.setattr(socket, "gethostname", lambda: "head")
    monkeypatch.setattr(socket, "gethostbyname", resolve)
    monkeypatch.setattr(slurm, "_address_of", names.get)
    assert slurm._node_ip(("head",), {}) == "127.0.1.1"  # one node: nothing else joins it
    assert slurm._node_ip(("head", "n2"), {}) == "127.0.1.1"  # n2 is on this host
    assert slurm._node_ip(("head", "n3"), {"IONOPS_NODE_IP": "10.1.2.3"}) == "10.1.2.3"
    with pytest.raises(UserError, match=r"knows the address of node n3.*IONOPS_NODE_IP"):
        slurm._node_ip(("head", "n3"), {})
    names["n2"] = "192.0.2.77"  # another host (TEST-NET): the route's own address, not loopback
    try:
        address = slurm._node_ip(("head", "n2"), {})
    except UserError as error:  # a machine with no route off loopback says so
        assert "no route" in str(error) or "through loopback" in str(error)
    else:
        assert not address.startswith("127.")


@pytest.mark.parametrize("script", ["generate.sbatch", "search.sbatch", "retrain.sbatch"])
def test_the_sbatch_scripts_requeue_on_an_early_signal(script):
    text = (SLURM / script).read_text()
    subprocess.run(["bash", "-n", str(SLURM / script)], check=True)
    assert "#SBATCH --signal=B:USR1@" in text and "#SBATCH --requeue" in text
    # the early signal reaches only the batch shell: it execs the step, or traps and forwards it
    assert "exec ionops cluster run" in text or (
        "ionops cluster run" in text and "trap 'signalled=1; kill -USR1 $step' USR1" in text
    )
    if script != "generate.sbatch":
        assert "cluster run --ray" in text
    else:
        assert "srun --mpi=pmi2" in text
    subprocess.run(["bash", "-n", str(SLURM / "pipeline.sh")], check=True)


# -- on a real SLURM ------------------------------------------------------------------------
needs_slurm = pytest.mark.skipif(
    shutil.which("sbatch") is None
    or subprocess.run(["sinfo"], capture_output=True, check=False).returncode != 0,
    reason="no running SLURM here (.ci/services.sh starts one with ../shared/ci-slurm.sh)",
)
SMALL = " ".join([
    "--set data.fraction=0.02", "--set data.n_t=128", "--set training.epochs=8",
    "--set search.num_samples=6", "--set search.checkpoint_every=2",
    "--set search.max_concurrent=2",
])  # fmt: skip


def _submit(folder: Path, script: str, experiment: str, args: str, *options: str,
            **variables: str) -> str:  # fmt: skip
    env = {**os.environ, "EXPERIMENT": experiment, "IONOPS_ARGS": args,
           "IONOPS_VENV": str(BIN.parent), "IONOPS_WORKDIR": str(folder / "work"),
           **variables}  # fmt: skip
    done = subprocess.run(["sbatch", "--parsable", "--time=20", "--signal=B:USR1@30", *options,
                           str(SLURM / script)], cwd=folder, env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.strip().split(";")[0]


def _state(job: str) -> dict[str, str]:
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    return dict(item.split("=", 1) for item in shown.split() if "=" in item)


def _wait(job: str, timeout: float = 600) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(job)
        if state["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            return state
        time.sleep(1)
    raise AssertionError(f"job {job} still {state['JobState']} after {timeout} s")


@pytest.mark.slow
@needs_slurm
def test_generation_under_srun_mpi_equals_a_serial_run(tmp_path):
    args = "--set data.fraction=0.01 --set data.n_t=64"
    job = _submit(tmp_path, "generate.sbatch", "hh", args, "--nodes=2", "--ntasks-per-node=2")
    state = _wait(job)
    log = (tmp_path / f"ionops-generate-{job}.out").read_text()
    assert state["JobState"] == "COMPLETED", log
    [parallel] = (tmp_path / "work" / "data").glob("*.h5")
    serial = tmp_path / "serial.h5"
    subprocess.run([str(BIN / "ionops"), "generate", "hh", *args.split(), "--output", str(serial),
                    "--no-progress"], check=True, capture_output=True)  # fmt: skip
    assert parallel.read_bytes() == serial.read_bytes()
    assert log.count("trajectories") == 1, "one MPI world over 4 ranks, not 4 singletons"


@pytest.mark.slow
@needs_slurm
def test_a_signalled_search_on_two_nodes_requeues_and_finishes(tmp_path):
    import mlflow

    job = _submit(tmp_path, "search.sbatch", "fhn", SMALL, "--nodes=2", "--cpus-per-task=2",
                  "--gpus-per-node=1")  # fmt: skip
    tune = tmp_path / "work" / "searches" / "fhn-fno-unconstrained" / "tune"
    deadline = time.monotonic() + 300
    while not list(tune.glob("run_trial_*/checkpoint_*")):
        assert time.monotonic() < deadline, "the search did not start"
        assert _state(job)["JobState"] in ("PENDING", "RUNNING", "CONFIGURING")
        time.sleep(0.5)
    began = time.monotonic()
    # what SLURM sends before a time limit (--signal=B:USR1@N), delivered now
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    state = _wait(job)
    cycle = time.monotonic() - began
    log = (tmp_path / f"ionops-search-{job}.out").read_text()
    assert state["JobState"] == "COMPLETED" and state["Restarts"] == "1", log
    assert "requeueing job" in log and "resuming the search" in log
    assert "search complete: 6 trials" in log
    print(f"signal to finished search after one requeue: {cycle:.0f} s")

    folder = tmp_path / "work" / "searches" / "fhn-fno-unconstrained"
    rows = (folder / "trials.csv").read_text().splitlines()[1:]
    assert len(rows) == 6
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'work' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ionops/fhn-fno/search")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if "ionops.trial_id" in r.data.tags]
    assert len(children) == 6 and {r.info.status for r in runs} <= {"FINISHED", "KILLED"}
    workers = list((tmp_path / "work" / "jobs" / job / "logs").glob("worker-*.log"))
    assert [w.name for w in workers] == ["worker-n2.log"], "a Ray worker on the second node"
    leftovers = subprocess.run(["pgrep", "-f", f"ionops-ray-{job}"], capture_output=True,
                               check=False)  # fmt: skip
    assert leftovers.returncode == 1, "the job's Ray processes are gone"


@pytest.mark.slow
@needs_slurm
def test_a_signalled_retraining_requeues_then_writes_the_report(tmp_path):
    args = SMALL.replace("search.num_samples=6", "search.num_samples=2")
    env = {**os.environ, "IONOPS_WORKDIR": str(tmp_path / "work")}
    subprocess.run([str(BIN / "ionops"), "tune", "fhn", *args.split(), "--no-progress"],
                   env=env, cwd=tmp_path, check=True, capture_output=True)  # fmt: skip
    job = _submit(tmp_path, "retrain.sbatch", "fhn", args, "--nodes=2", "--cpus-per-task=2",
                  "--gpus-per-node=1", SEEDS="2")  # fmt: skip
    tune = tmp_path / "work" / "retrains" / "fhn-fno-unconstrained" / "tune"
    deadline = time.monotonic() + 300
    while not list(tune.glob("run_trial_*/checkpoint_*")):
        assert time.monotonic() < deadline, "the retraining did not start"
        assert _state(job)["JobState"] in ("PENDING", "RUNNING", "CONFIGURING")
        time.sleep(0.5)
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    state = _wait(job)
    log = (tmp_path / f"ionops-retrain-{job}.out").read_text()
    assert state["JobState"] == "COMPLETED" and state["Restarts"] == "1", log
    assert "requeueing job" in log and "resuming the retraining" in log
    summary = tmp_path / "work" / "retrains" / "fhn-fno-unconstrained" / "summary.json"
    assert json.loads(summary.read_text())["seeds"] == [0, 1], "SEEDS chose the seeds"
    assert list((tmp_path / "work" / "reports").rglob("*.png")), "the report after the requeue"
