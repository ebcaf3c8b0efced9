"""Record a landslide map in MLflow.

Each map is a run in the ``maps`` experiment, linked both ways to the model's training run.
"""

import math
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag

from landslide.mapping.model import TrainedModel
from landslide.mapping.pipeline import OUTPUTS, MapResult
from landslide.mlflow_store import get_or_create_experiment, quiet_artifact_transfers
from landslide.tracking import flatten


def map_metrics(result: MapResult) -> dict[str, float]:
    """The map's metrics as MLflow logs them: ``map/<scene>/<metric>`` (NaN left out)."""
    summary = result.summary
    scene = summary["scene"]["name"]
    values = {
        "landslide_count": summary["landslides"]["count"],
        "landslide_area_km2": summary["landslides"]["total_area_km2"],
        "seconds": summary["throughput"]["seconds"],
        "km2_per_second": summary["throughput"]["km2_per_second"],
        "pixels_per_second": summary["throughput"]["pixels_per_second"],
        **{f"memory_{k}": v for k, v in summary["memory"].items()},
        **result.metrics,
    }
    return {
        f"map/{scene}/{name}": float(v) for name, v in values.items() if not math.isnan(float(v))
    }


def log_map(
    client: mlflow.MlflowClient,
    experiment: str,
    result: MapResult,
    model: TrainedModel,
    reason: str,
    artifact_location: str | None = None,
    log_rasters: bool = True,
) -> str:
    """Log a finished map as a run of ``experiment`` and tag the model's run with it.

    Args:
        client: the tracking client.
        experiment: experiment name (``maps``).
        result: the map.
        model: the model that made it.
        reason: why that model (logged as the run's description).
        artifact_location: where a new experiment keeps artifacts.
        log_rasters: also upload the GeoTIFFs (large for large scenes).

    Returns:
        The map run's id.
    """
    summary = result.summary
    scene = summary["scene"]["name"]
    experiment_id = get_or_create_experiment(client, experiment, artifact_location)
    tags = {"scene": scene, "model_name": model.name, "mlflow.note.content": reason}
    if model.run_id:
        tags["model_run_id"] = model.run_id
    run = client.create_run(experiment_id, run_name=f"{scene}-{model.name}", tags=tags)
    run_id = run.info.run_id
    try:
        params: dict[str, Any] = {
            "scene": summary["scene"]["stack"],
            "model": model.name,
            "model.checkpoint": str(model.checkpoint),
            "model.bands": list(model.bands),
            **flatten(summary["settings"], "settings."),
        }
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, 0, 0) for k, v in map_metrics(result).items()],
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        )
        with quiet_artifact_transfers():
            for name in OUTPUTS:
                if log_rasters or not name.endswith(".tif"):
                    client.log_artifact(run_id, str(result.path(name)))
        if model.run_id:
            client.log_batch(model.run_id, tags=[RunTag(f"map/{scene}", run_id)])
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    return run_id
