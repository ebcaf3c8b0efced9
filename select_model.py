"""Recommend a trained model for a scene by MMD: ``python select_model.py scene=<dir> [...]``."""

import logging

import hydra
from omegaconf import DictConfig

from landslide.errors import UserError
from landslide.mlflow_store import open_store
from landslide.selection import (
    candidate_runs,
    rank_runs,
    ranking_table,
    recommendation,
    scene_files,
)

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="select_model")
def main(cfg: DictConfig) -> None:
    scene = scene_files(cfg.scene)
    try:
        client = open_store(cfg.tracking_uri)
    except UserError as err:
        raise SystemExit(f"select_model.py: {err}") from None
    experiments = list(cfg.experiments)
    try:
        runs = candidate_runs(client, experiments, cfg.filter, list(cfg.models))
    except (UserError, ValueError) as err:
        raise SystemExit(f"select_model.py: {err}") from None
    if not runs:
        raise SystemExit(f"no complete runs in {experiments}: train models first")
    ranked = rank_runs(client, runs, scene, cfg.scene_name, cfg.max_patches, cfg.pixels, cfg.seed)
    log.info(
        "Runs ranked by mean per-band MMD to %s:\n%s",
        cfg.scene_name,
        ranking_table(ranked, cfg.scene_name),
    )
    if not ranked:
        raise SystemExit("no run could be ranked: see the warnings above")
    log.info("Recommended: %s", recommendation(ranked))


if __name__ == "__main__":
    main()
