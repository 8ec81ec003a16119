"""Spreading independent tasks over MPI ranks, balanced by dynamic scheduling.

Rank 0 holds the queue (costliest first) and also works. Every other rank
keeps up to ``PREFETCH`` task ids in hand, so it never waits for rank 0 to
finish a task of its own before it gets more; each completion it reports buys
it one more id. Results never travel over MPI: each rank records its own (see
:mod:`ionops.datasets.journal`). Without MPI, or with one rank, the same loop
runs serially.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

PREFETCH = 3
_TAG_TASK, _TAG_DONE, _TAG_FAILED = 11, 12, 13
_STOP = -1

# Environment variables that MPI launchers (Hydra, mpirun, srun --mpi=pmi2/pmix) set.
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMI_FD", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE")


def world() -> Any | None:
    """MPI's COMM_WORLD when launched by an MPI launcher, else None (MPI is not initialised)."""
    if not any(name in os.environ for name in _LAUNCHER_VARIABLES):
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


def run_tasks(
    comm: Any | None,
    tasks: Sequence[int],
    work: Callable[[int], None],
    on_progress: Callable[[int], None],
) -> str | None:
    """Run ``work(task)`` for every task across the ranks of ``comm``.

    ``tasks`` (meaningful on rank 0 only) is the queue in the order to hand
    out. ``work`` raises :class:`Failure` to stop the run: the queue is
    dropped, tasks already handed out finish, and every rank returns the
    first failure's message (None on success). ``on_progress(n)`` is called on
    rank 0 as tasks finish anywhere.
    """
    if comm is None or comm.Get_size() == 1:
        return _run_serial(tasks, work, on_progress)
    if comm.Get_rank() == 0:
        failure = _coordinate(comm, deque(tasks), work, on_progress)
    else:
        failure = _serve(comm, work)
    return comm.bcast(failure, root=0)


class Failure(Exception):
    """Raised by a task to stop the whole run; its message reaches every rank."""


def _run_serial(
    tasks: Sequence[int], work: Callable[[int], None], on_progress: Callable[[int], None]
) -> str | None:
    for task in tasks:
        try:
            work(task)
        except Failure as exc:
            return str(exc)
        on_progress(1)
    return None


def _coordinate(
    comm: Any,
    queue: deque[int],
    work: Callable[[int], None],
    on_progress: Callable[[int], None],
) -> str | None:
    from mpi4py import MPI

    workers = range(1, comm.Get_size())
    outstanding = dict.fromkeys(workers, 0)
    stopped = dict.fromkeys(workers, False)
    failure: str | None = None

    def hand_out(worker: int) -> None:
        if queue and failure is None:
            comm.send(queue.popleft(), dest=worker, tag=_TAG_TASK)
            outstanding[worker] += 1
        elif not stopped[worker]:
            comm.send(_STOP, dest=worker, tag=_TAG_TASK)
            stopped[worker] = True

    def handle(status: Any, message: Any) -> None:
        nonlocal failure
        worker = status.Get_source()
        if status.Get_tag() == _TAG_FAILED:
            failure = failure or message
            outstanding[worker], stopped[worker] = 0, True
            queue.clear()
            return
        outstanding[worker] -= 1
        on_progress(1)
        hand_out(worker)

    for worker in workers:
        for _ in range(PREFETCH):
            hand_out(worker)
    status = MPI.Status()
    while queue and failure is None:
        while comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
            handle(status, comm.recv(source=status.Get_source(), tag=status.Get_tag()))
        if not queue or failure is not None:
            break
        try:
            work(queue.popleft())
            on_progress(1)
        except Failure as exc:
            failure = str(exc)
            queue.clear()
    for worker in workers:
        if outstanding[worker] == 0:
            hand_out(worker)
    while any(outstanding[w] > 0 or not stopped[w] for w in workers):
        message = comm.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
        handle(status, message)
    return failure


def _serve(comm: Any, work: Callable[[int], None]) -> str | None:
    while True:
        task = comm.recv(source=0, tag=_TAG_TASK)
        if task == _STOP:
            return None
        try:
            work(task)
        except Failure as exc:
            comm.send(str(exc), dest=0, tag=_TAG_FAILED)
            return None
        comm.send(task, dest=0, tag=_TAG_DONE)
