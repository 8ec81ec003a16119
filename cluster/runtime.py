"""Connecting the driver to Ray: a local Ray on this machine, or a named cluster address.

Ray 2.60 pitfalls handled here rather than documented away:

- token authentication switches on for a head started while ``~/.ray/auth_token``
  exists, but not for a driver given an explicit address; the driver therefore
  always sets ``RAY_AUTH_MODE`` explicitly (``disabled`` for its own local Ray
  unless the user set it);
- Unix-socket paths limit Ray's temp dir to about 45 characters, and clusters
  often set a long ``$TMPDIR``: ionops uses a short node-local folder and names
  the limit if ``IONOPS_RAY_TMPDIR`` is too long;
- ``address="auto"`` may attach to someone else's Ray on the node: an address
  is only ever used when given explicitly (``--address`` or ``RAY_ADDRESS``);
- a local Ray listens on 127.0.0.1 only: Ray maps a node address of 127.0.0.1
  to the machine's own network address (so that other nodes could join), and
  its servers then listen on every interface without authentication; for a
  local Ray, which no other node joins, ionops keeps the loopback address;
- the dashboard's web server stays off for a local Ray (an open dashboard runs
  any code for whoever reaches its port); usage statistics are off (no network).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ionops.errors import UserError

RAY_TMPDIR_LIMIT = 45
LOOPBACK = "127.0.0.1"
MIN_OBJECT_STORE = 96 * 2**20


@dataclass(frozen=True)
class RayResources:
    """What the driver's Ray holds in all: CPUs and GPUs."""

    cpus: float
    gpus: float


def ray_tmpdir() -> Path:
    """The short temp dir for a local Ray: $IONOPS_RAY_TMPDIR or /tmp/ionops-ray-UID."""
    path = Path(os.environ.get("IONOPS_RAY_TMPDIR") or f"/tmp/ionops-ray-{os.getuid()}")
    if len(str(path)) > RAY_TMPDIR_LIMIT:
        raise UserError(
            f"IONOPS_RAY_TMPDIR = {str(path)!r} is {len(str(path))} characters; Ray's Unix "
            f"sockets need at most {RAY_TMPDIR_LIMIT} (use a short node-local path such as "
            "/tmp/ionops-ray)"
        )
    return path


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    object_store_bytes: int | None = None,
) -> RayResources:
    """Start or join Ray for this driver and return what it holds.

    ``address`` (or ``$RAY_ADDRESS``) joins that cluster; otherwise a local Ray
    starts with this machine's cores (or ``num_cpus``), no dashboard, and an
    object store of ``object_store_bytes`` (Ray's default when None).
    """
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # num_to_keep=1 snapshots the experiment with each checkpoint, on purpose (resume)
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    quiet_ray_loggers()
    address = None if ray.is_initialized() else check_address(address)
    if not ray.is_initialized():
        with _neutral_directory():
            _init(ray, address, num_cpus, num_gpus, object_store_bytes)
    total = ray.cluster_resources()
    return RayResources(cpus=float(total.get("CPU", 0.0)), gpus=float(total.get("GPU", 0.0)))


def check_address(address: str | None) -> str | None:
    """The Ray address to join (``address``, else ``$RAY_ADDRESS``; None: a local Ray), checked
    within seconds: ``auto`` and a head that does not answer are errors (``ray.init`` would
    wait for minutes, and may log another address than it was given)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address == "auto":
        raise UserError(
            "address 'auto' may join another job's Ray on this node; give the head's "
            "address explicitly (host:port)"
        )
    if address is not None:
        _check_reachable(address)
    return address


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"Ray address {address!r}: give it as host:port (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as exc:
        raise UserError(
            f"no Ray head answers at {address} ({exc.strerror or exc}): start the cluster "
            "(`ionops cluster up`), or leave --address and RAY_ADDRESS unset for a local Ray"
        ) from None


@contextmanager
def _neutral_directory() -> Iterator[None]:
    """Start Ray from ``/``: Ray puts the driver's working directory first on every worker's
    sys.path, and run from a source checkout its ``ionops/`` folder (no ``hpo``, ``models``...
    subpackages there) would shadow the installed package in every trial."""
    here = Path.cwd()
    os.chdir("/")
    try:
        yield
    finally:
        os.chdir(here)


def _init(
    ray: Any,
    address: str | None,
    num_cpus: int | None,
    num_gpus: int | None,
    object_store_bytes: int | None,
) -> None:
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
        return
    store = None if object_store_bytes is None else max(object_store_bytes, MIN_OBJECT_STORE)
    with _loopback_kept():
        ray.init(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            object_store_memory=store,
            include_dashboard=False,
            _node_ip_address=LOOPBACK,
            _temp_dir=str(ray_tmpdir()),
            logging_level=logging.WARNING,
            configure_logging=True,
        )


@contextmanager
def _loopback_kept() -> Iterator[None]:
    """``ray.init`` with ``_node_ip_address=127.0.0.1`` as given: Ray 2.60 replaces a loopback
    node address by the machine's network address, and its GCS, raylet, workers and agents
    then listen on every interface. Given 127.0.0.1 they listen there alone."""
    from ray._private import services

    resolve = services.resolve_ip_for_localhost
    services.resolve_ip_for_localhost = lambda host: host
    try:
        yield
    finally:
        services.resolve_ip_for_localhost = resolve


def disconnect() -> None:
    """Leave Ray (and stop the local Ray this driver started)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def quiet_ray_loggers() -> None:
    """Silence Ray's per-checkpoint INFO lines and its notes on result files ionops skips."""
    for name in ("ray.train", "ray.tune", "ray.tune.analysis.experiment_analysis"):
        logging.getLogger(name).setLevel(logging.ERROR)
