"""Record a landslide map in MLflow.

Each map is a run in the ``maps`` experiment, linked both ways to the model's training run:
the map run is tagged ``model_run_id`` and takes the training run's logged model (MLflow 3)
as its model input, so the UI shows data -> model -> map; the training run is tagged
``map/<scene>`` with the map run's id.
"""

import math
from typing import Any

import mlflow
from mlflow.entities import LoggedModelInput, Metric, Param, RunTag

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
        reason: why that model (the first line of the run's description).
        artifact_location: where a new experiment keeps artifacts.
        log_rasters: also upload the GeoTIFFs (large for large scenes).

    Returns:
        The map run's id.
    """
    summary = result.summary
    scene = summary["scene"]["name"]
    experiment_id = get_or_create_experiment(client, experiment, artifact_location)
    tags = {
        "scene": scene,
        "model_name": model.name,
        "mlflow.note.content": description(reason, result),
    }
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
            model_ids = logged_models(client, model.run_id)
            if model_ids:
                client.log_inputs(run_id, models=[LoggedModelInput(m) for m in model_ids])
            client.log_batch(model.run_id, tags=[RunTag(f"map/{scene}", run_id)])
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    return run_id


def logged_models(client: mlflow.MlflowClient, run_id: str) -> list[str]:
    """The ids of the logged models (MLflow 3) a training run output, each once.

    Empty for runs that logged none (older runs).
    """
    outputs = client.get_run(run_id).outputs
    found = outputs.model_outputs if outputs is not None else []
    return list(dict.fromkeys(output.model_id for output in found))


def description(reason: str, result: MapResult) -> str:
    """The map run's description (Markdown).

    Why this model, then a small table of the map's landslides and, with a reference, its
    overall scores.
    """
    summary = result.summary
    rows = [
        ("landslides", str(summary["landslides"]["count"])),
        ("landslide area (km²)", f"{summary['landslides']['total_area_km2']:.3f}"),
        ("scene area (km²)", f"{summary['scene']['area_km2']:.1f}"),
        ("threshold", f"{summary['settings']['threshold']:g}"),
    ]
    # The overall scores; the per-size-class ones are in the run's metrics.
    rows += [
        (name, f"{value:.4g}")
        for name, value in result.metrics.items()
        if "/" not in name and not math.isnan(value)
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"{reason}\n\n| | |\n| --- | ---: |\n{table}\n"
