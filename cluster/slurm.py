"""A Ray cluster inside a SLURM allocation: head on the first node, one worker per other node.

Everything is derived from SLURM's environment and told to Ray explicitly:

- the nodes (``SLURM_JOB_NODELIST``), the CPUs SLURM gave on each
  (``SLURM_JOB_CPUS_PER_NODE``) and the GPUs (``SLURM_GPUS_ON_NODE``, else
  ``SLURM_GPUS_PER_NODE``): Ray would otherwise count the whole node;
- a block of ports from the job id, so two jobs sharing a node do not clash
  (a port already taken is refused with a message naming it);
- a short node-local temp dir per job (Ray's Unix sockets);
- token authentication, on by default: a fresh token per job in a 0600 file,
  and ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN_PATH`` set identically for the head,
  the workers and the driver;
- the dashboard on 127.0.0.1 only (reach it with ``ssh -L``);
- the head's address written to the job folder and handed to the driver; never
  ``address="auto"``.

The job's own Ray processes are stopped by PID (``ray stop`` would stop every
Ray on the host, other jobs' included).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ionops.errors import UserError
from ionops.workdir import write_json

PORT_BASE = 20000
PORT_BLOCK = 100
PORT_BLOCKS = 400  # 20000-59999


@dataclass(frozen=True)
class Allocation:
    """What SLURM gave the job: its id, nodes, CPUs per node and GPUs per node."""

    job_id: int
    nodes: tuple[str, ...]
    cpus: tuple[int, ...]
    gpus_per_node: int

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> Allocation:
        missing = [k for k in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST") if not env.get(k)]
        if missing:
            raise UserError(
                f"not inside a SLURM allocation ({', '.join(missing)} unset): run this from an "
                "sbatch script or salloc, or use a local Ray (no --address)"
            )
        nodes = expand_hostlist(env["SLURM_JOB_NODELIST"])
        cpus = expand_counts(env.get("SLURM_JOB_CPUS_PER_NODE", ""), len(nodes))
        job_id = slurm_count(env, "SLURM_JOB_ID")
        return cls(job_id, tuple(nodes), tuple(cpus), _gpus(env))


def slurm_count(env: Mapping[str, str], name: str, text: str | None = None) -> int:
    """A whole number SLURM sets (``text``, else ``env[name]``); anything else a clear error."""
    value = env.get(name, "") if text is None else text
    if not value.strip().isdigit():
        raise UserError(f"{name} = {env.get(name, value)!r}: SLURM sets a whole number there; "
                        "unset it, or run inside a SLURM allocation")  # fmt: skip
    return int(value)


def expand_hostlist(text: str) -> list[str]:
    """SLURM's compressed host list: ``n[1-3,7],gpu[01-02]`` -> n1 n2 n3 n7 gpu01 gpu02."""
    hosts: list[str] = []
    for match in re.finditer(r"([^,\[]+)(?:\[([^\]]+)\])?", text):
        prefix, ranges = match.group(1), match.group(2)
        if ranges is None:
            hosts.append(prefix)
            continue
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            if not (low.isdigit() and (high.isdigit() or not high)):
                raise UserError(f"SLURM_JOB_NODELIST = {text!r}: cannot read the range {part!r}")
            width = len(low)
            for number in range(int(low), int(high or low) + 1):
                hosts.append(f"{prefix}{number:0{width}d}")
    if not hosts:
        raise UserError(f"SLURM_JOB_NODELIST = {text!r} names no node")
    return hosts


def expand_counts(text: str, n_nodes: int) -> list[int]:
    """``SLURM_JOB_CPUS_PER_NODE`` such as ``4(x2),2`` -> [4, 4, 2]."""
    counts: list[int] = []
    for part in filter(None, text.split(",")):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if match is None:
            raise UserError(f"SLURM_JOB_CPUS_PER_NODE = {text!r}: cannot read {part!r}")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    if len(counts) != n_nodes:
        raise UserError(
            f"SLURM_JOB_CPUS_PER_NODE = {text!r} gives {len(counts)} counts for {n_nodes} nodes"
        )
    return counts


def _gpus(env: Mapping[str, str]) -> int:
    if env.get("SLURM_GPUS_ON_NODE"):
        return slurm_count(env, "SLURM_GPUS_ON_NODE")
    per_node = env.get("SLURM_GPUS_PER_NODE", "")
    if per_node:  # a count, or type:count
        return slurm_count(env, "SLURM_GPUS_PER_NODE", per_node.rsplit(":", 1)[-1])
    return 0


@dataclass(frozen=True)
class Ports:
    """The job's block of fixed ports; Ray picks the others (worker ports...) itself.

    The GCS, the client server and the dashboard are fixed on the head; each
    node's dashboard agent (52365 for every node by default) gets its own port
    from the block, so nodes sharing a host do not clash either.
    """

    gcs: int
    client_server: int
    dashboard: int
    first_agent: int

    @classmethod
    def for_job(cls, job_id: int) -> Ports:
        base = PORT_BASE + (job_id % PORT_BLOCKS) * PORT_BLOCK
        return cls(base, base + 1, base + 2, base + 10)

    def agent(self, index: int) -> int:
        return self.first_agent + index

    @property
    def last(self) -> int:
        return self.gcs + PORT_BLOCK - 1


@dataclass(frozen=True)
class ClusterPlan:
    """How to start Ray for one allocation: commands and environment, before anything runs."""

    allocation: Allocation
    ports: Ports
    head_ip: str
    temp_dir: str
    token_file: Path | None

    @property
    def address(self) -> str:
        return f"{self.head_ip}:{self.ports.gcs}"

    def environment(self) -> dict[str, str]:
        """What the head, every worker and the driver must share."""
        env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": self.address}
        if self.token_file is None:
            env["RAY_AUTH_MODE"] = "disabled"
        else:
            env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_file)}
        return env

    def head_command(self, ray: str = "ray") -> list[str]:
        p = self.ports
        return [
            ray, "start", "--head", "--block", f"--node-ip-address={self.head_ip}",
            f"--port={p.gcs}", f"--ray-client-server-port={p.client_server}",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={p.dashboard}",
            *self._node_options(0), f"--temp-dir={self.temp_dir}",
        ]  # fmt: skip

    def worker_command(self, index: int, ray: str = "ray") -> list[str]:
        node = self.allocation.nodes[index]
        return [
            "srun", "--nodes=1", "--ntasks=1", f"--nodelist={node}", "--overlap",
            f"--cpus-per-task={self.allocation.cpus[index]}", "--kill-on-bad-exit=0",
            ray, "start", "--block", f"--address={self.address}", *self._node_options(index),
        ]  # fmt: skip

    def _node_options(self, index: int) -> list[str]:
        return [
            f"--num-cpus={self.allocation.cpus[index]}",
            f"--num-gpus={self.allocation.gpus_per_node}",
            f"--dashboard-agent-listen-port={self.ports.agent(index)}",
        ]


def plan_cluster(
    job_dir: Path, env: Mapping[str, str] = os.environ, auth: bool = True
) -> ClusterPlan:
    """The plan for this allocation; the token file (0600) is created in ``job_dir``."""
    allocation = Allocation.from_environment(env)
    temp_dir = f"/tmp/ionops-ray-{allocation.job_id}"
    token_file = job_dir / "ray-token" if auth else None
    return ClusterPlan(allocation, Ports.for_job(allocation.job_id),
                       _node_ip(allocation.nodes, env), temp_dir, token_file)  # fmt: skip


def _node_ip(nodes: tuple[str, ...], env: Mapping[str, str] = os.environ) -> str:
    """This node's address as the other nodes reach it (``$IONOPS_NODE_IP`` where given).

    The host name often resolves to 127.0.0.1 or 127.0.1.1 in ``/etc/hosts``;
    the other nodes would then be told to join a loopback address. Then the
    address is the one this node's route to another node leaves from. Loopback
    stays where it is right: a job of one node, or nodes that SLURM itself
    reaches at a loopback address (several node daemons on one host).
    """
    if env.get("IONOPS_NODE_IP"):
        return env["IONOPS_NODE_IP"]
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        address = "127.0.0.1"
    if not address.startswith("127.") or len(nodes) == 1:
        return address
    other = _address_of(nodes[1])
    advice = "set IONOPS_NODE_IP to the address the other nodes reach this one at"
    if other is None:
        raise UserError(f"this node's name resolves to {address} and neither DNS nor SLURM "
                        f"knows the address of node {nodes[1]}: {advice}")  # fmt: skip
    if other.startswith("127."):
        return address  # the other nodes are on this host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((other, 9))  # a UDP connect only picks the route; nothing is sent
            address = probe.getsockname()[0]
        except OSError as exc:
            raise UserError(f"no route from this node to node {nodes[1]} ({other}: "
                            f"{exc.strerror or exc}): {advice}") from None  # fmt: skip
    if address.startswith("127."):
        raise UserError(f"this node reaches node {nodes[1]} through loopback ({address}): the "
                        f"other nodes could not join it; {advice}")  # fmt: skip
    return address


def _address_of(node: str) -> str | None:
    """A node's address: from DNS, else SLURM's ``NodeAddr``; None when neither knows it."""
    try:
        return socket.gethostbyname(node)
    except OSError:
        pass
    try:
        shown = subprocess.run(["scontrol", "show", "node", node, "-o"], check=False,
                               capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\bNodeAddr=(\S+)", shown.stdout)
    return match.group(1) if match else None


def _refuse_taken_ports(plan: ClusterPlan) -> None:
    p = plan.ports
    for name, port in (("GCS", p.gcs), ("client server", p.client_server),
                       ("dashboard", p.dashboard)):  # fmt: skip
        with socket.socket() as probe:
            # as a server binds: a port left in TIME_WAIT by this job's last start is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("", port))
            except OSError:
                raise UserError(
                    f"port {port} (Ray {name} of job {plan.allocation.job_id}'s block "
                    f"{p.gcs}-{p.last}) is taken on this node: another job shares the node "
                    "and its job id falls in the same block; resubmit, or ask for exclusive nodes"
                ) from None


def _write_token(path: Path) -> None:
    """A fresh token in a new file of mode 0600 renamed over ``path`` (an old file, whatever
    its mode, is replaced rather than rewritten)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
    temporary.replace(path)


def cluster_up(job_dir: Path, auth: bool = True, timeout: float = 180.0) -> ClusterPlan:
    """Start the head here and a worker on every other node; return once all have joined."""
    plan = plan_cluster(job_dir, auth=auth)
    _refuse_taken_ports(plan)
    job_dir.mkdir(parents=True, exist_ok=True)
    if plan.token_file is not None:
        _write_token(plan.token_file)
    env = {**os.environ, **plan.environment()}
    ray = str(Path(sys.executable).parent / "ray")
    if not Path(ray).exists():
        ray = shutil.which("ray") or "ray"
    logs = job_dir / "logs"
    logs.mkdir(exist_ok=True)
    started = [_spawn(plan.head_command(ray), env, logs / "head.log")]
    _wait_for(plan, env, nodes=1, timeout=timeout)
    for index in range(1, len(plan.allocation.nodes)):
        node = plan.allocation.nodes[index]
        started.append(_spawn(plan.worker_command(index, ray), env, logs / f"worker-{node}.log"))
    _wait_for(plan, env, nodes=len(plan.allocation.nodes), timeout=timeout)
    state = {"plan": _plan_record(plan), "pids": [p.pid for p in started],
             "environment": plan.environment()}  # fmt: skip
    write_json(job_dir / "cluster.json", state)
    return plan


def cluster_down(job_dir: Path, grace: float = 15.0) -> int:
    """Stop this job's Ray processes (and only them), by the process groups cluster_up started."""
    path = job_dir / "cluster.json"
    if not path.exists():
        return 0
    pids = json.loads(path.read_text())["pids"]
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        _signal_group(pid, signal.SIGKILL)
    path.unlink()
    return len(pids)


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _wait_for(plan: ClusterPlan, env: dict[str, str], nodes: int, timeout: float) -> None:
    """Poll the GCS (in a subprocess, so this process never joins Ray) until ``nodes`` are alive."""
    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run([sys.executable, "-c", probe, plan.address], env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        alive = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
        if alive and int(alive[0]) >= nodes:
            return
        if time.monotonic() > deadline:
            raise UserError(
                f"the Ray cluster at {plan.address} has {alive[0] if alive else 0} of {nodes} "
                f"nodes after {timeout:.0f} s; see the logs in the job folder"
            )
        time.sleep(1.0)


def _plan_record(plan: ClusterPlan) -> dict[str, object]:
    record = asdict(plan)
    record["token_file"] = str(plan.token_file) if plan.token_file else None
    return record


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
