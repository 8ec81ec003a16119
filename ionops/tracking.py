"""MLflow tracking: where runs go, and a run writer that batches its metrics.

Embedded default: a SQLite store ``WORKDIR/mlflow.db`` with artifacts in
``WORKDIR/mlartifacts`` (MLflow 3 refuses the old ``./mlruns`` file store).
``MLFLOW_TRACKING_URI`` (a tracking server, a shared database) overrides it.
Only the driver process writes: trials and workers hand their results back.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ionops.errors import UserError, disk_full

FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
# the experiment tag the MLflow UI reads to open an experiment in its model-training view
# (runs, metrics, models) rather than its GenAI view (traces)
KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def tracking_uri(workdir: Path) -> str:
    """The tracking URI: $MLFLOW_TRACKING_URI, else the SQLite store in ``workdir``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{workdir.resolve() / 'mlflow.db'}"


# the UI's model-training view: MLflow 3.17 opens its GenAI view (traces, tokens) unless the
# link asks (or the user switched once: the UI remembers it in the browser)
ML_VIEW = "workflowType=machine_learning"


def ui_link(base: str, experiment_id: str | None = None, run_id: str | None = None) -> str:
    """The UI's page of an experiment's runs (or of one run), in its model-training view."""
    route = "/experiments"
    if experiment_id is not None:
        route += f"/{experiment_id}" + (f"/runs/{run_id}" if run_id else "/runs")
    return f"{base.rstrip('/')}/#{route}?{ML_VIEW}"


def ui_command(workdir: Path, experiment_id: str | None = None, run_id: str | None = None) -> str:
    """The command that opens the MLflow UI on this store (on loopback), and the page to open
    (the experiment's runs, or the run, in the model-training view)."""
    uri = tracking_uri(workdir)
    if not uri.startswith("sqlite:"):
        return f"open {ui_link(uri, experiment_id, run_id)} in a browser"
    artifacts = (workdir.resolve() / "mlartifacts").as_uri()
    return (
        f"mlflow ui --backend-store-uri {uri} --default-artifact-root {artifacts} --host 127.0.0.1"
        f", then open {ui_link('http://127.0.0.1:5000', experiment_id, run_id)}"
    )


def client(workdir: Path) -> Any:
    """An MlflowClient on this store (created on first use); a server that does not answer
    is an error within seconds, naming it (MLflow itself retries for minutes)."""
    import mlflow

    # a tracking server makes the client print a "View run" link per run; ionops prints its own
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # MLflow logs each database error with its traceback before raising it; ionops reports it
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    uri = tracking_uri(workdir)
    check_store(uri)
    workdir.mkdir(parents=True, exist_ok=True)
    if uri.startswith(("http://", "https://")):
        check_reachable(uri)
    if uri.startswith("sqlite:///"):
        _create_store(Path(uri.removeprefix("sqlite:///")))
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        rebase_artifacts(workdir.resolve())
    return mlflow.tracking.MlflowClient(tracking_uri=uri)


# where a store keeps file locations: a moved or copied working folder points them here
_LOCATIONS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
              ("logged_models", "artifact_location"), ("model_versions", "source"),
              ("model_versions", "storage_location"))  # fmt: skip


@functools.cache
def rebase_artifacts(workdir: Path) -> None:
    """Point the working folder's own store at its own ``mlartifacts`` again after the folder
    was moved or copied (MLflow records artifact locations as absolute paths): otherwise a
    moved folder's runs write their artifacts where it was, and a copy's into the original."""
    import sqlite3

    here = (workdir / "mlartifacts").as_uri()
    with contextlib.closing(sqlite3.connect(workdir / "mlflow.db", timeout=30)) as db, db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        elsewhere = {str(row[0]) for row in db.execute(
            "SELECT artifact_location FROM experiments WHERE artifact_location LIKE "
            "'file://%/mlartifacts'")} - {here}  # fmt: skip
        for old in elsewhere:
            for table, column in _LOCATIONS:
                if table in tables:
                    db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                               f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                               (here, len(old) + 1, old, len(old) + 1, f"{old}/"))  # fmt: skip


# the stores ionops can use: a tracking server, SQLite, or a database server (MLflow's SQL
# store); MLflow 3 refuses its old file store, and other schemes are plug-ins ionops does not
# ship
_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")
_SQLITE_HEADER = b"SQLite format 3\x00"


def check_store(uri: str, write: bool = True) -> None:
    """Refuse a tracking store ionops cannot use, before any work starts: an unknown scheme,
    MLflow's file store, or a SQLite file that is a folder, read-only (where it is to be
    written: ``write``), not SQLite, damaged or not an MLflow store. Each error names the
    store, what is wrong and what to do."""
    scheme = uri.partition(":")[0].split("+")[0].lower() if ":" in uri else uri
    given = f"MLFLOW_TRACKING_URI = {uri!r}" if os.environ.get("MLFLOW_TRACKING_URI") else None
    unset = "unset MLFLOW_TRACKING_URI to use the working folder's own store"
    if scheme == "file" or "/" in scheme or scheme in ("", ".", ".."):  # a file store's path
        raise UserError(f"{given}: MLflow 3 no longer writes its file store (mlruns); give "
                        "sqlite:///PATH/mlflow.db or http://HOST:PORT (a tracking server), or "
                        f"{unset}")  # fmt: skip
    if scheme not in _SCHEMES:
        raise UserError(f"{given or uri}: not a tracking store ionops can use (known schemes: "
                        f"{', '.join(_SCHEMES)}); fix the URI or {unset}")  # fmt: skip
    if scheme == "sqlite":
        _check_sqlite(Path(uri.partition(":///")[2] or uri.removeprefix("sqlite://")), given,
                      unset, write)  # fmt: skip


def _check_sqlite(path: Path, given: str | None, unset: str, write: bool) -> None:
    import sqlite3
    import stat

    where = f"the MLflow store {path}" + (f" ({given})" if given else "")
    move = (f"move it aside (mv {path} {path}.damaged) to start a new store there, use "
            "another working folder (IONOPS_WORKDIR=PATH)" + (f", or {unset}" if given
            else ", or MLFLOW_TRACKING_URI for another store"))  # fmt: skip
    if path.is_dir():
        raise UserError(f"{where} is a folder, not a database file; {move}")
    folder = path.parent
    if not path.exists():
        if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(f"{where} cannot be created: {folder} is not writable; {move}")
        return
    mode = path.stat().st_mode
    writable = os.access(path, os.W_OK) and mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    if write and (not writable or not os.access(folder, os.W_OK | os.X_OK)):
        what = path if not writable else folder
        raise UserError(f"{where} cannot be written ({what} is read-only); make it writable "
                        f"(chmod u+w {what}) or {move.partition(', ')[2]}")  # fmt: skip
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise UserError(f"{where} cannot be read ({exc.strerror}); {move}") from None
    if header != _SQLITE_HEADER:
        state = "is empty" if not header else "is not an SQLite database"
        raise UserError(f"{where} {state} (damaged, or another file); {move}")
    try:
        verdict, tables = _inspect(path.resolve(), path.stat().st_size, path.stat().st_mtime_ns,
                                   writable=bool(writable))  # fmt: skip
    except sqlite3.OperationalError as exc:
        if any(word in str(exc) for word in ("locked", "busy", "readonly")):
            # another process writes it now, or (read-only) a kill left a journal that the
            # next writer rolls back: a store in use or interrupted, not a damaged one
            return
        raise UserError(f"{where} is damaged ({exc}); {move}") from None
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{where} is damaged ({exc}); {move}") from None
    if verdict != "ok":
        raise UserError(f"{where} is damaged (SQLite: {verdict}); {move}")
    if tables and not {"experiments", "runs"} <= tables:
        raise UserError(f"{where} is an SQLite database but not an MLflow store (its tables: "
                        f"{', '.join(sorted(tables)[:6])}); {move}")  # fmt: skip


@contextlib.contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """MLflow's fluent API (``log_model``, ``load_model``, ``download_artifacts``) on ``uri``
    for a while. MLflow keeps the URIs in globals and exports them to every later subprocess
    through ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``; both are as they were after."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    environment = {name: os.environ.get(name) for name in names}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])  # type: ignore[arg-type]  # None: unset, as before
        registry_utils._registry_uri = saved[1]
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _create_store(path: Path) -> None:
    """A new SQLite store made whole in a temporary file and renamed into place: a full disk
    during MLflow's migrations leaves no half-migrated store that breaks every later run."""
    import mlflow

    if path.exists():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{temporary}").search_experiments()
        os.link(temporary, path)  # never over a store another process made meanwhile
    except FileExistsError:
        pass
    except Exception as exc:
        if disk_full(exc) is None:
            raise
        raise UserError(f"disk full at {path.parent}: the MLflow store {path.name} could not "
                        "be created; free some space and run again") from None  # fmt: skip
    finally:
        temporary.unlink(missing_ok=True)


@functools.lru_cache(maxsize=8)
def _inspect(path: Path, size: int, modified: int, writable: bool) -> tuple[str, frozenset[str]]:
    """SQLite's quick check of a store and its tables (once per process for a given state of
    the file: the check reads the whole file). Opened for writing where it may be: a process
    killed mid-transaction leaves a hot journal, which SQLite rolls back on opening (as MLflow
    would), and which a read-only connection cannot."""
    import sqlite3

    mode = "rw" if writable else "ro"
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode={mode}", uri=True,
                                            timeout=10)) as db:  # fmt: skip
        verdict = str(db.execute("PRAGMA quick_check").fetchone()[0])
        tables = frozenset(str(row[0]) for row in db.execute("SELECT name FROM sqlite_master"))
    return verdict, tables


@functools.cache
def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Refuse, within seconds and by name, a tracking server that does not answer."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered: a server (whatever it thinks of /health)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"the MLflow tracking server at {uri} (MLFLOW_TRACKING_URI) does not answer "
            f"({reason}); start it, fix the URI, or unset MLFLOW_TRACKING_URI for the local "
            "store in the working folder"
        ) from None


def experiment_id(mlflow_client: Any, name: str, workdir: Path) -> str:
    """The id of experiment ``name``, created (artifacts beside the store) if missing."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        if found.tags.get(KIND_TAG) != MODEL_TRAINING:
            mlflow_client.set_experiment_tag(found.experiment_id, KIND_TAG, MODEL_TRAINING)
        return str(found.experiment_id)
    location = None
    if tracking_uri(workdir).startswith("sqlite:"):
        location = (workdir.resolve() / "mlartifacts").as_uri()
    return str(mlflow_client.create_experiment(name, artifact_location=location,
                                               tags={KIND_TAG: MODEL_TRAINING}))  # fmt: skip


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow parameters: ``{"fno": {"d_v": 64}}`` -> ``{"fno.d_v": "64"}``."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


class RunWriter:
    """Writes one MLflow run: parameters once, metrics in one batch per call."""

    def __init__(self, mlflow_client: Any, run_id: str) -> None:
        self.client, self.run_id = mlflow_client, run_id

    @classmethod
    def start(
        cls,
        mlflow_client: Any,
        experiment: str,
        run_name: str,
        tags: Mapping[str, str] | None = None,
    ) -> RunWriter:
        run = mlflow_client.create_run(experiment, run_name=run_name, tags=dict(tags or {}))
        return cls(mlflow_client, run.info.run_id)

    def params(self, values: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in flatten(values).items()]
        for begin in range(0, len(items), 100):  # MLflow's batch limit for parameters
            self.client.log_batch(self.run_id, params=items[begin : begin + 100])

    def metrics(self, values: Mapping[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(_metric_name(k), float(v), stamp, step) for k, v in values.items()]
        for begin in range(0, len(items), 1000):  # MLflow's batch limit for metrics
            self.client.log_batch(self.run_id, metrics=items[begin : begin + 1000])

    def artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def end(self, status: str = FINISHED) -> None:
        self.client.set_terminated(self.run_id, status=status)

    def end_quietly(self, status: str) -> None:
        """End the run while another error is on its way (a full disk may refuse this too:
        that error, not this one, is the one to report)."""
        with contextlib.suppress(Exception):  # the error on its way says what went wrong
            self.end(status)


def _metric_name(key: str) -> str:
    # MLflow allows letters, digits, _ - . space / ; keep state names like "h(inf)" safe
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)
