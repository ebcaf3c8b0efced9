"""What ``map.py`` does with its config: choose the model, map the scene, log the map."""

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
from omegaconf import DictConfig, OmegaConf

from landslide.files import safe_name
from landslide.mapping.errors import MappingError
from landslide.mapping.evaluate import MatchRule
from landslide.mapping.pipeline import MapResult, MapSettings, map_scene
from landslide.mapping.predict import resolve_device
from landslide.mapping.runs import Choice, choose_model, resolve_model
from landslide.mapping.scene import open_scene
from landslide.mapping.tracking import log_map

log = logging.getLogger(__name__)

#: How a value of each type is asked for in messages.
KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def settings_from_config(cfg: DictConfig) -> MapSettings:
    """The mapping settings of a composed ``conf/mapping/map.yaml``.

    Raises:
        MappingError: naming the key of a bad value.
    """

    def get(key: str, kind: type, optional: bool = False) -> Any:
        value = OmegaConf.select(cfg, key)
        if value is None and optional:
            return None
        try:
            if kind is bool and not isinstance(value, bool):
                raise ValueError
            return kind(value)
        except (TypeError, ValueError):
            raise MappingError(f"{key}={value!r}: give {KINDS[kind]}") from None

    try:
        return MapSettings(
            window=get("window", int),
            overlap=get("overlap", int),
            batch_size=get("batch_size", int),
            device=get("device", str),
            tta=get("tta", bool),
            autocast=get("autocast", bool),
            threshold=get("threshold", float, optional=True),
            min_area=get("min_area", float),
            slope_min=get("slope_min", float, optional=True),
            probability_dtype=get("probability_dtype", str),
            match=MatchRule(get("evaluation.match", str), get("evaluation.min_share", float)),
            size_classes=tuple(
                get(f"evaluation.size_classes.{i}", float)
                for i in range(len(cfg.evaluation.size_classes))
            ),
            progress=get("progress", bool),
        )
    except ValueError as err:
        raise MappingError(str(err)) from err


def run_map(cfg: DictConfig) -> MapResult:
    """Map ``cfg.scene`` with ``cfg.model`` and log the map to MLflow.

    Raises:
        MappingError: on bad input, with nothing written.
    """
    missing = [k for k in ("scene", "model") if OmegaConf.is_missing(cfg, k)]
    if missing:
        raise MappingError(
            f"{' and '.join(f'{k}=' for k in missing)} not set; e.g. python map.py "
            "scene=data/default_world/palu model=auto"
        )
    settings = settings_from_config(cfg)
    resolve_device(settings.device)  # a bad device is refused before anything is read
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
        out = Path(cfg.out_dir) / safe_name(scene.name) / safe_name(model.name)
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
