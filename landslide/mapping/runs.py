"""Which trained model maps a scene.

A checkpoint file, an MLflow run (by id, name, ``runs:/`` or registered ``models:/`` URI,
see :mod:`landslide.model_refs`), or the run whose training data is closest to the scene by
per-band MMD (the paper's choice for Luding).
"""

import ast
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import OmegaConf

from landslide.mapping.errors import MappingError
from landslide.mapping.model import TrainedModel, load_model
from landslide.mapping.scene import Scene
from landslide.mlflow_store import quiet_artifact_transfers
from landslide.model_refs import ModelRefError, is_uri, resolve_run
from landslide.selection import Candidate, finished_runs, rank_runs, ranking_table

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/best.ckpt"


@dataclass(frozen=True)
class Choice:
    """The model chosen for a scene, and why.

    Attributes:
        model: the loaded model.
        reason: one sentence saying why this model maps the scene.
    """

    model: TrainedModel
    reason: str


def resolve_model(
    ref: str, client: mlflow.MlflowClient, experiments: Sequence[str], workdir: Path
) -> Choice:
    """The model named by ``ref``: a checkpoint path, or a training run.

    Runs are found by :func:`landslide.model_refs.resolve_run` (run id, run name,
    ``runs:/<id>``, ``models:/<name>@<alias>``, ``models:/<name>/<version>``).

    Raises:
        MappingError: if nothing matches, the run is not complete or has no checkpoint, or
            the file is bad.
    """
    path = Path(ref)
    if not is_uri(ref):
        if path.is_file():
            return Choice(load_model(path), f"checkpoint {path}")
        if path.suffix == ".ckpt" or os.sep in ref:
            raise MappingError(f"model={ref}: no such checkpoint file")
    try:
        resolved = resolve_run(client, ref, experiments, alternatives=", a checkpoint or auto")
    except ModelRefError as err:
        raise MappingError(str(err)) from None
    return Choice(load_run_model(client, resolved.run, workdir, ref), resolved.description)


def load_run_model(
    client: mlflow.MlflowClient, run: Run, workdir: Path, ref: str | None = None
) -> TrainedModel:
    """Download a run's best checkpoint and config and load the model.

    Args:
        client: the tracking client.
        run: a training run.
        workdir: where the artifacts are downloaded.
        ref: how the user named the model, for messages (default: the run's name).

    Raises:
        MappingError: if the run logged no checkpoint.
    """
    run_id, name = run.info.run_id, run.info.run_name
    target = Path(workdir) / run_id
    target.mkdir(parents=True, exist_ok=True)
    with quiet_artifact_transfers():
        try:
            checkpoint = client.download_artifacts(run_id, CHECKPOINT, str(target))
        except (MlflowException, OSError) as err:
            named = f"{ref}: run {name} ({run_id})" if ref else f"{name} ({run_id})"
            raise MappingError(
                f"model={named}: the run has no {CHECKPOINT} (status "
                f"{run.info.status}); choose a run that finished training"
            ) from err
        try:
            config = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", str(target)))
            bands = OmegaConf.select(config, "data.bands")
        except (MlflowException, OSError):
            bands = None
    return load_model(checkpoint, name=name, run_id=run_id, run_bands=bands)


def choose_model(
    client: mlflow.MlflowClient,
    experiments: Sequence[str],
    scene: Scene,
    workdir: Path,
    filter_string: str = "",
    max_patches: int = 300,
    pixels: int = 2000,
    seed: int = 0,
) -> Choice:
    """``model=auto``: load the finished run whose training data is closest to the scene.

    Runs are ranked by mean per-band MMD between their training data and the scene
    (:func:`landslide.selection.rank_runs`, which logs it to each run); among runs on the
    same training data, the one with the lowest validation loss wins.

    Runs without a checkpoint, or reading bands the scene lacks, are left out.

    Raises:
        MappingError: if no run can map the scene.
    """
    try:
        runs = finished_runs(client, experiments, filter_string)
    except ValueError as err:
        raise MappingError(f"model=auto: {err}") from err
    usable = [r for r in runs if _can_map(client, r, scene)]
    if not usable:
        raise MappingError(
            f"model=auto: no finished run in {list(experiments)} has a checkpoint and reads "
            f"only bands the scene holds ({', '.join(scene.bands)}); train one with train.py"
        )
    ranked = rank_runs(
        client,
        usable,
        scene.domain_files(Path(workdir) / "scene"),
        scene.name,
        max_patches,
        pixels,
        seed,
    )
    if not ranked:
        raise MappingError("model=auto: no run could be ranked; see the warnings above")
    log.info(
        "Runs ranked by mean per-band MMD to %s:\n%s", scene.name, ranking_table(ranked, scene.name)
    )
    closest = [c for c in ranked if c.mean_mmd == ranked[0].mean_mmd]
    losses = {c.run_id: _best_val_loss(client, c) for c in closest}
    best = min(closest, key=lambda c: (losses[c.run_id], c.run_name))
    reason = (
        f"model=auto chose {best.run_name} ({best.run_id}): its training mix {best.mix} is the "
        f"closest of {len(ranked)} ranked runs to {scene.name} by mean per-band MMD "
        f"({best.mean_mmd:.4f})"
    )
    if len(closest) > 1:
        reason += (
            f"; of the {len(closest)} runs trained on that data it has the lowest validation "
            f"loss ({losses[best.run_id]:.4f})"
        )
    model = load_run_model(client, client.get_run(best.run_id), workdir)
    return Choice(model, reason)


def _can_map(client: mlflow.MlflowClient, run: Run, scene: Scene) -> bool:
    """Whether a run logged a checkpoint and reads only bands the scene holds."""
    raw = run.data.params.get("data.bands")
    try:
        bands = ast.literal_eval(raw) if raw else None
    except (ValueError, SyntaxError):
        bands = None
    if bands is not None and not set(bands) <= set(scene.bands):
        log.info("model=auto: %s reads bands the scene lacks; left out", run.info.run_name)
        return False
    names = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    if CHECKPOINT not in names:
        log.warning("model=auto: %s logged no %s; left out", run.info.run_name, CHECKPOINT)
        return False
    return True


def _best_val_loss(client: mlflow.MlflowClient, candidate: Candidate) -> float:
    history = client.get_metric_history(candidate.run_id, "val/loss")
    return min((m.value for m in history), default=float("inf"))
