"""One driver per search or retraining folder: a second is refused, naming the first."""

import socket
import subprocess
import sys
import time

import pytest

from ionops.config import load_experiment
from ionops.errors import UserError
from ionops.hpo.search import SearchOptions, run_search
from ionops.locks import folder_lock

HOLD = """
import sys, time
from pathlib import Path
from ionops.locks import folder_lock
with folder_lock(Path(sys.argv[1]), "search"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(folder):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_second_driver_is_refused_with_the_first_ones_pid_and_host(tmp_path):
    folder = tmp_path / "searches" / "dual"
    holder = _holder(folder)
    try:
        with pytest.raises(UserError) as info, folder_lock(folder, "search"):
            pass
        message = str(info.value)
        assert f"PID {holder.pid} on host {socket.gethostname()}" in message
        assert "is running already" in message
        experiment = load_experiment("fhn", ["data.fraction=0.01", "data.n_t=64"])
        with pytest.raises(UserError, match=f"PID {holder.pid}"):
            run_search(experiment, tmp_path, SearchOptions(name="dual"))
        assert not (folder / "search.json").exists(), "refused before anything was written"
    finally:
        holder.kill()
        holder.wait()
    # a lock dies with its process, kill -9 included: the folder is free again
    deadline = time.monotonic() + 10
    while True:
        try:
            with folder_lock(folder, "search"):
                break
        except UserError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
