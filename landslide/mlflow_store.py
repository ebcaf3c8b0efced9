"""Small helpers over the MLflow tracking client.

Shared by every command that reads or writes the store, and kept free of Lightning so that
light commands import quickly.
"""

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import requests
from filelock import FileLock
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.exceptions import MlflowException
from sqlalchemy.engine import make_url

from landslide.errors import TrackingError

#: MLflow's switch between its GenAI and its traditional-ML views of an experiment, and the
#: value that opens the training view (runs table with metric columns, models, datasets).
EXPERIMENT_KIND = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"


def get_or_create_experiment(
    client: mlflow.MlflowClient, name: str, artifact_location: str | None = None
) -> str:
    """The id of experiment ``name``, created if needed (safe when two commands race).

    The framework's experiments open in MLflow's training view: a new one is created with
    :data:`EXPERIMENT_KIND`, an existing one without that tag gets it (a kind set by hand is
    kept).

    With a tracking server, a local ``artifact_location`` (a path, the default
    ``mlruns/artifacts``) is not used: it would be this machine's folder, which jobs on other
    machines cannot reach; the server stores the artifacts (its ``--artifacts-destination``).
    """
    if is_server(client.tracking_uri) and artifact_location and "://" not in artifact_location:
        artifact_location = None
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(
                name, artifact_location=artifact_location, tags={EXPERIMENT_KIND: TRAINING_KIND}
            )
        except MlflowException:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if EXPERIMENT_KIND not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, TRAINING_KIND)
    return experiment.experiment_id


def is_server(tracking_uri: str) -> bool:
    """Whether ``tracking_uri`` names an MLflow tracking server (HTTP or HTTPS)."""
    return tracking_uri.startswith(("http://", "https://"))


@contextmanager
def quiet_artifact_transfers() -> Iterator[None]:
    """No progress bar per artifact up- or download: one per small file buries the log."""
    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    previous = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


#: Seconds to wait for a tracking server before saying it is unreachable.
SERVER_TIMEOUT_S = 5.0


def open_store(uri: str) -> mlflow.MlflowClient:
    """A client of the MLflow store at ``uri``, checked before any work starts.

    A tracking server must answer within :data:`SERVER_TIMEOUT_S` (later requests get a short
    retry budget instead of MLflow's minutes of back-off). A SQLite store must sit in an
    existing, writable folder; its tables are created under a file lock, because two
    processes that migrate a fresh store at once both fail (``table _alembic_tmp_... already
    exists``).

    Raises:
        TrackingError: one line naming the store and the fix.
    """
    if not uri.strip():
        # MLflow would fall back to ./mlflow.db in the current folder, a store nobody meant.
        raise TrackingError(
            "the MLflow tracking URI is empty (MLFLOW_TRACKING_URI is set to ''); unset it "
            "to use the project's store, or give logger.tracking_uri / tracking_uri a store"
        )
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        _check_server(uri)
        return mlflow.MlflowClient(uri)
    if scheme == "sqlite":
        return _open_sqlite(uri)
    return mlflow.MlflowClient(uri)


def _check_server(uri: str) -> None:
    # MLflow retries a dead server for minutes with exponential back-off; a run should
    # learn in seconds that nothing will be recorded.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    try:
        response = requests.get(f"{uri.rstrip('/')}/health", timeout=SERVER_TIMEOUT_S)
    except requests.RequestException as err:
        reason = type(err).__name__
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({reason}); start it "
            "(mlflow server ...) or point MLFLOW_TRACKING_URI / logger.tracking_uri at a "
            "reachable store"
        ) from None
    where = "MLFLOW_TRACKING_URI / logger.tracking_uri"
    if response.status_code in (401, 403):
        raise TrackingError(
            f"MLflow tracking server {uri} refuses access (HTTP {response.status_code}); set "
            f"MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD, or fix {where}"
        )
    if response.status_code != 200:
        raise TrackingError(
            f"{uri} answers HTTP {response.status_code} at /health, so it is not a working "
            f"MLflow tracking server; check the server's log or fix {where}"
        )


def sqlite_path(uri: str) -> Path:
    """The database file of a ``sqlite:///`` URI (without its query, e.g. ``?mode=ro``)."""
    return Path(make_url(uri).database or "")


def _open_sqlite(uri: str) -> mlflow.MlflowClient:
    database = sqlite_path(uri)
    folder = database.parent
    fix = "or point MLFLOW_TRACKING_URI / logger.tracking_uri at another store"
    if not folder.is_dir():
        raise TrackingError(f"MLflow store folder {folder} does not exist; create it {fix}")
    read_only = f"MLflow store {database} is read-only; make it writable {fix}"
    if not os.access(folder, os.W_OK) or (database.exists() and not os.access(database, os.W_OK)):
        raise TrackingError(read_only)
    try:
        with FileLock(f"{database}.lock", timeout=300):
            client = mlflow.MlflowClient(uri)  # creates or migrates the tables
            client.search_experiments(max_results=1)
            writable = _is_writable(uri)
    except Exception as err:  # SQLAlchemy/MLflow wrap sqlite3 errors in several types
        if "readonly" in str(err):
            raise TrackingError(read_only) from None
        reason = str(err).strip().splitlines()[0][:200]
        raise TrackingError(
            f"MLflow store {database} cannot be opened ({reason}); repair or move it away, {fix}"
        ) from None
    if not writable:
        raise TrackingError(read_only)
    return client


def _is_writable(uri: str) -> bool:
    # Permission bits say nothing to root, nor about read-only mounts and ``?mode=ro``; a
    # write inside a transaction that is rolled back does, and leaves nothing behind.
    url = make_url(uri)
    options = "&".join(f"{k}={v}" for k, v in url.query.items() if k != "uri")
    connection = sqlite3.connect(f"file:{url.database}?{options}", uri=True, timeout=30)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("CREATE TABLE main._landslide_write_probe (x)")
        connection.rollback()
    except sqlite3.OperationalError as err:
        if "readonly" in str(err):
            return False
        raise
    finally:
        connection.close()
    return True
