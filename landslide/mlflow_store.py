"""Small helpers over the MLflow tracking client, shared by every command that reads or
writes the store (kept free of Lightning so that light commands import quickly)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import mlflow
from mlflow.exceptions import MlflowException


def get_or_create_experiment(
    client: mlflow.MlflowClient, name: str, artifact_location: str | None = None
) -> str:
    """The id of experiment ``name``, created if needed (safe when two commands race)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


@contextmanager
def quiet_artifact_transfers() -> Iterator[None]:
    """No progress bar per artifact up- or download: one per small file buries the log."""
    with mock.patch.dict(os.environ, {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):
        yield
