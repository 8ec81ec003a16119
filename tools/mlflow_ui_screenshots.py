"""Screenshots of the MLflow UI on a working folder, from a real (headless) browser.

    .venv/bin/python tools/mlflow_ui_screenshots.py WORKDIR OUT [--port 5077]

Starts ``mlflow ui`` on WORKDIR's store (loopback only), opens the pages a
reviewer opens after ``ionops tune`` and ``ionops retrain`` (the search's
experiment, its parent run with the trials, one trial, the retraining, the
registered model) in headless Chromium (Debian's ``chromium``), and writes one
PNG per page into OUT, with ``pages.json`` listing what each shows. The check
is by eye: the README's "Reviewing in the MLflow UI" says what to look for.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ionops.tracking import ML_VIEW


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pages(uri: str) -> dict[str, str]:
    """The UI's route (after ``#``) of each page, found in the store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    pages: dict[str, str] = {}
    for experiment in client.search_experiments():
        kind = experiment.name.rsplit("/", 1)[-1]
        if not experiment.name.startswith("ionops/") or kind not in ("search", "retrain"):
            continue
        parents = client.search_runs([experiment.experiment_id], f"tags.`ionops.kind` = '{kind}'")
        pages.setdefault(f"{kind}-experiment", f"/experiments/{experiment.experiment_id}/runs")
        if not parents:
            continue
        parent = parents[0].info.run_id
        pages.setdefault(f"{kind}-parent", f"/experiments/{experiment.experiment_id}/runs/{parent}")
        under = f"tags.`mlflow.parentRunId` = '{parent}'"
        children = client.search_runs([experiment.experiment_id], under, max_results=1)
        if children and kind == "search":
            child = children[0].info.run_id
            pages.setdefault("trial", f"/experiments/{experiment.experiment_id}/runs/{child}")
    for model in client.search_registered_models(max_results=1):
        pages["registered-model"] = f"/models/{model.name}"
        if model.latest_versions:
            pages["model-version"] = (f"/models/{model.name}/versions/"
                                      f"{model.latest_versions[0].version}")  # fmt: skip
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("no chromium on PATH: apt-get install chromium", file=sys.stderr)
        return 2
    workdir = args.workdir.resolve()
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    port = args.port or _free_port()
    args.out.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", uri,
         "--default-artifact-root", (workdir / "mlartifacts").as_uri(), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("the MLflow UI did not start", file=sys.stderr)
                    return 1
                time.sleep(0.5)
        pages = _pages(uri)
        for name, route in pages.items():
            target = args.out / f"{name}.png"
            url = f"{base}/#{route}?{ML_VIEW}"  # the link ionops prints: the model-training view
            subprocess.run(
                [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--window-size=1600,1000", "--virtual-time-budget=20000",
                 f"--screenshot={target}", url],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            print(f"{name}: {target} ({url})")
        (args.out / "pages.json").write_text(json.dumps(pages, indent=2) + "\n")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
