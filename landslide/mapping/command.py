"""What ``map.py`` does with its config: choose the model, map the scene, log the map."""

import logging
import tempfile
from pathlib import Path

import mlflow
from omegaconf import DictConfig, OmegaConf

from landslide.mapping.errors import MappingError
from landslide.mapping.evaluate import MatchRule
from landslide.mapping.pipeline import MapResult, MapSettings, map_scene
from landslide.mapping.runs import Choice, choose_model, resolve_model
from landslide.mapping.scene import open_scene
from landslide.mapping.tracking import log_map

log = logging.getLogger(__name__)


def settings_from_config(cfg: DictConfig) -> MapSettings:
    """The mapping settings of a composed ``conf/mapping/map.yaml``.

    Raises:
        MappingError: on a bad value.
    """
    evaluation = cfg.evaluation
    try:
        return MapSettings(
            window=int(cfg.window),
            overlap=int(cfg.overlap),
            batch_size=int(cfg.batch_size),
            device=str(cfg.device),
            tta=bool(cfg.tta),
            autocast=bool(cfg.autocast),
            threshold=None if cfg.threshold is None else float(cfg.threshold),
            min_area=float(cfg.min_area),
            slope_min=None if cfg.slope_min is None else float(cfg.slope_min),
            probability_dtype=str(cfg.probability_dtype),
            match=MatchRule(str(evaluation.match), float(evaluation.min_share)),
            size_classes=tuple(float(v) for v in evaluation.size_classes),
            progress=bool(cfg.progress),
        )
    except ValueError as err:
        raise MappingError(str(err)) from err


def run_map(cfg: DictConfig) -> MapResult:
    """Map ``cfg.scene`` with ``cfg.model`` and log the map to MLflow.

    Raises:
        MappingError: on bad input, with nothing written.
    """
    missing = sorted(k for k in ("scene", "model") if OmegaConf.is_missing(cfg, k))
    if missing:
        raise MappingError(
            f"{missing[0]}= is not set; e.g. python map.py scene=data/default_world/palu model=auto"
        )
    settings = settings_from_config(cfg)
    scene_bands = list(cfg.scene_bands) if cfg.scene_bands is not None else None
    scene = open_scene(cfg.scene, cfg.scene_name, scene_bands)
    client = mlflow.MlflowClient(cfg.tracking_uri)
    experiments = list(cfg.experiments)
    with tempfile.TemporaryDirectory(prefix="landslide-map-") as workdir:
        choice: Choice
        if str(cfg.model) == "auto":
            selection = cfg.selection
            choice = choose_model(
                client,
                experiments,
                scene,
                Path(workdir),
                cfg.filter,
                int(selection.max_patches),
                int(selection.pixels),
                int(selection.seed),
            )
        else:
            choice = resolve_model(str(cfg.model), client, experiments, Path(workdir))
        model = choice.model
        log.info("%s", choice.reason)
        scene.check_bands(model.bands, model.name)
        out = Path(cfg.out_dir) / _safe(scene.name) / _safe(model.name)
        result = map_scene(model, scene, out, settings)
    if cfg.mlflow.log:
        run_id = log_map(
            client,
            cfg.mlflow.experiment,
            result,
            model,
            choice.reason,
            cfg.mlflow.artifact_location,
            bool(cfg.mlflow.log_rasters),
        )
        log.info("logged to MLflow experiment %s, run %s", cfg.mlflow.experiment, run_id)
    log.info("map written to %s", result.folder)
    return result


def _safe(name: str) -> str:
    """A name usable as one folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"
