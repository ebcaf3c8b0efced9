"""Train one network on one domain mix, test it on every domain, record it in MLflow."""

import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from mlflow.entities import RunTag
from omegaconf import DictConfig, OmegaConf

from landslide.checkpointing import (
    AtomicCheckpointIO,
    RunState,
    StopAtBatchEnd,
    checkpoint_run_id,
)
from landslide.config import in_multirun, instantiate_config
from landslide.data.datamodule import LandslideDataModule
from landslide.distributed import (
    HANDOFF_ENV,
    Handoff,
    global_rank,
    isolated_training,
    joblib_device,
    publish,
    read_handoff,
    slurm_handoff_path,
    slurm_tasks,
    wait_for_handoff,
)
from landslide.lifecycle import (
    OUTPUT_DIR,
    RESUMED_FROM,
    Interrupts,
    TrainingRun,
    check_resumable,
    claim_run,
    config_key,
    find_complete,
    setting_runs,
    supervised,
)
from landslide.logged_model import input_example, log_model, model_metadata
from landslide.metrics import METRICS
from landslide.mlflow_store import get_or_create_experiment, open_store, sqlite_path
from landslide.report.collect import data_source
from landslide.run_datasets import PatchSet, evaluation_sets, log_datasets, run_datasets
from landslide.safe_loading import load_checkpoint
from landslide.schema import name_mix_after_counts, validate_train_config
from landslide.sweeps import parent_tags
from landslide.task import SegmentationTask
from landslide.tracking import (
    RunLogger,
    describe_run,
    flatten,
    log_config,
    log_prediction_figures,
    log_weights,
    resolved,
    run_description,
    run_tags,
    system_metrics,
)

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one experiment described by a composed Hydra config.

    The config is checked before any data is read or run created; a setting that already
    has a complete run is skipped in a multirun or with ``resume`` (unless ``force``); the
    run ends FINISHED only after testing and artifact logging (see
    :mod:`landslide.lifecycle`).

    Returns:
        The final validation and test metrics (a skipped setting's recorded ones).
    """
    validate_train_config(cfg)
    name_mix_after_counts(cfg)
    if global_rank() > 0:  # a SLURM task of a multi-process run: rank 0 owns the run
        return follow(wait_for_handoff(slurm_handoff_path(cfg.paths.output_dir)))
    uri = cfg.logger.tracking_uri
    if uri.startswith("sqlite:") and sqlite_path(uri).parent == Path(cfg.paths.mlruns_dir):
        Path(cfg.paths.mlruns_dir).mkdir(parents=True, exist_ok=True)  # the default store
    client = open_store(uri)
    experiment_id = get_or_create_experiment(
        client, cfg.logger.experiment_name, cfg.logger.artifact_location
    )
    key = config_key(cfg)
    name = cfg.logger.run_name
    if isinstance(cfg.resume, str):
        check_resumable(client, experiment_id, key, cfg.resume)
    if skips_finished(cfg):
        done = find_complete(setting_runs(client, experiment_id, key))
        if done is not None:
            log.info(
                "Skipping %s: run %s already completed this setting (force=true trains it again)",
                name,
                done.info.run_id,
            )
            if slurm_tasks() > 1:  # the other tasks skip it too
                skipped = Handoff(resolved(cfg), None, metrics=dict(done.data.metrics))
                publish(skipped, cfg.paths.output_dir)
            return dict(done.data.metrics)

    # Generate or check the data before a run exists: a bad raster is an input error, not
    # a failed run.
    datamodule = _seeded_data(cfg)

    run = claim_run(
        client,
        experiment_id,
        name,
        key,
        output_dir=Path(cfg.paths.output_dir),
        checkpoint_root=Path(cfg.callbacks.model_checkpoint.dirpath),
        resume=cfg.resume,
        tags=parent_tags(client.tracking_uri, experiment_id),  # a sweep's job: its parent
    )
    with supervised(run) as interrupts, isolated_training():
        return _fit_and_test(cfg, run, datamodule, interrupts)


def skips_finished(cfg: DictConfig) -> bool:
    """Whether a setting with a complete run is skipped.

    It is in a multirun (so a pre-empted sweep resumes cheaply) and whenever ``resume`` is
    set, unless ``force=true``.
    """
    if cfg.force:
        return False
    return in_multirun() or cfg.resume is not False


def follow(handoff: Handoff) -> dict[str, float]:
    """Train and test as a rank > 0 of the owner's run (see :mod:`landslide.distributed`).

    Builds the same data, network and trainer from the owner's resolved config and runs
    the same fit and test, so every collective operation has its partner; writes nothing.

    Returns:
        This rank's view of the final metrics (synchronised ones equal the owner's).
    """
    if handoff.run_id is None:  # the owner skipped the setting
        return dict(handoff.metrics)
    assert handoff.checkpoint_dir is not None  # a claimed run has one
    cfg = OmegaConf.create(handoff.config)
    datamodule = _seeded_data(cfg)
    task, _, trainer, checkpoint = _trainer_parts(
        cfg, datamodule, handoff.run_id, Path(handoff.checkpoint_dir), Interrupts()
    )
    # The owner's kept checkpoint: the monitored loss is synchronised.
    best = _fit_kept(cfg, task, trainer, datamodule, checkpoint, handoff.resume_from)
    return _test(trainer, task, datamodule, best)


def _seeded_data(cfg: DictConfig) -> LandslideDataModule:
    """Seed the run and build its data, generated or checked and set up for fitting."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule: LandslideDataModule = instantiate_config(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def follow_handoff() -> None:
    """Join the run :data:`~landslide.distributed.HANDOFF_ENV` names (a rank Lightning started)."""
    follow(read_handoff(os.environ[HANDOFF_ENV]))


def _trainer_parts(
    cfg: DictConfig,
    datamodule: LandslideDataModule,
    run_id: str,
    checkpoint_dir: Path,
    interrupts: Interrupts,
) -> tuple[SegmentationTask, RunLogger, L.Trainer, ModelCheckpoint]:
    """The task, logger, trainer and kept-checkpoint callback of run ``run_id``."""
    task: SegmentationTask = instantiate_config(
        cfg.task, test_domains=datamodule.test_domains, bands=list(datamodule.bands)
    )
    logger: RunLogger = instantiate_config(cfg.logger, run_id=run_id)
    callbacks: list[Callback] = [instantiate_config(c) for c in cfg.callbacks.values()]
    checkpoint = next(c for c in callbacks if isinstance(c, ModelCheckpoint))
    checkpoint.dirpath = str(checkpoint_dir)
    callbacks += [RunState(run_id), StopAtBatchEnd(interrupts)]
    placement = {}
    device = joblib_device(cfg.trainer.accelerator, cfg.trainer.devices)
    if device is not None:  # a joblib sweep's job on a machine with several GPUs
        placement["devices"] = device
    trainer: L.Trainer = instantiate_config(
        cfg.trainer,
        logger=logger,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        **placement,
    )
    return task, logger, trainer, checkpoint


def _fit_and_test(
    cfg: DictConfig, run: TrainingRun, datamodule: LandslideDataModule, interrupts: Interrupts
) -> dict[str, float]:
    task, logger, trainer, checkpoint = _trainer_parts(
        cfg, datamodule, run.run_id, run.checkpoint_dir, interrupts
    )
    resume_from = str(run.resume_from) if run.resume_from else None
    if trainer.world_size > 1:  # tell the other ranks which run they train
        handoff = Handoff(resolved(cfg), run.run_id, str(run.checkpoint_dir), resume_from)
        publish(handoff, cfg.paths.output_dir)

    client, run_id = logger.experiment, run.run_id
    datasets = run_datasets(datamodule)
    provenance = datamodule.provenance()
    if run.resume_from is None:
        log_config(logger, cfg)
        # Runs on different versions of the data (the simulated world's generator, a domain
        # prepared again) must never be compared: selection.py checks this record.
        logger.log_hyperparams(provenance)
        tags = run_tags(cfg, provenance, datamodule.split)
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        log_datasets(client, run_id, datasets)
    else:
        client.set_tag(run_id, RESUMED_FROM, str(run.resume_from))
    client.set_tag(run_id, OUTPUT_DIR, cfg.paths.output_dir)
    with system_metrics(logger):
        best = _fit_kept(cfg, task, trainer, datamodule, checkpoint, resume_from)
        if checkpoint_run_id(best) != run.run_id:
            raise RuntimeError(f"{best} holds another run's weights; refusing to test them")
        metrics = _test(trainer, task, datamodule, best)
        # The selection criterion: the kept checkpoint's (lowest) validation loss.
        monitor, score = checkpoint.monitor, checkpoint.best_model_score
        if monitor is None or score is None:
            raise RuntimeError(
                "callbacks.model_checkpoint.monitor is null: the kept checkpoint has no score "
                "to select runs by; set it to val/loss"
            )
        kept = (monitor, float(score))
        _record_results(cfg, logger, datamodule, datasets, provenance, task, best, kept)
    run.complete()
    metrics[monitor] = float(score)
    log.info("Test metrics of %s:\n%s", run.name, metrics_table(metrics, task.test_domains))
    return metrics


def _fit_kept(
    cfg: DictConfig,
    task: SegmentationTask,
    trainer: L.Trainer,
    datamodule: LandslideDataModule,
    checkpoint: ModelCheckpoint,
    resume_from: str | None,
) -> str:
    """Fit (compiled if ``cfg.compile``), from ``resume_from``; the kept checkpoint's path.

    Raises:
        RuntimeError: no checkpoint was kept (validation never ran).
    """
    if cfg.compile:
        # Compiles the network's forward in place (nn.Module.compile): its checkpoint keys
        # stay those of the uncompiled network, so maps and resumes load it either way.
        task.model.compile()
    trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    best = checkpoint.best_model_path
    if not best:
        raise RuntimeError(
            "no checkpoint was saved: validation never ran; allow validation batches "
            "(trainer.limit_val_batches > 0) so the lowest-validation-loss model can be kept"
        )
    return str(best)


def _test(
    trainer: L.Trainer, task: SegmentationTask, datamodule: LandslideDataModule, best: str
) -> dict[str, float]:
    """Test the kept checkpoint on every test domain; the metrics the trainer collected."""
    trainer.test(task, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def _record_results(
    cfg: DictConfig,
    logger: RunLogger,
    datamodule: LandslideDataModule,
    datasets: list[tuple[str, PatchSet]],
    provenance: dict[str, str],
    task: SegmentationTask,
    best: str,
    kept_score: tuple[str, float],
) -> None:
    """Log a tested run's weights, figures, MLflow model, linked test metrics and description."""
    client, run_id = logger.experiment, logger.run_id
    assert run_id is not None  # the logger was made for a claimed run
    test_metrics = dict(logger.test_metrics)
    try:
        log_weights(logger, best)
        log_prediction_figures(logger, task.figure_batches, cfg.task.threshold, datamodule.bands)
        kept = load_checkpoint(best)
        monitor, score = kept_score
        # The step its validation metrics were logged at; MLflow links those to the model.
        logged = client.get_metric_history(run_id, monitor)
        best_step = min(logged, key=lambda m: (abs(m.value - score), -m.step)).step if logged else 0
        log_model(
            client,
            run_id,
            best,
            _example(datamodule),
            _metadata(cfg, datamodule),
            test_metrics,
            evaluation_sets(datasets),
            step=best_step,
            register_as=logger.register_as,
        )
        logger.test_metrics = {}  # logged, linked to the model
    except BaseException:
        logger.flush_test_metrics()  # the failed run still shows how it tested
        raise
    source = data_source({**flatten(resolved(cfg)), **provenance})
    roles = {name: d["role"] for name, d in datamodule.domains.items()}
    description = run_description(
        cfg, source, roles, test_metrics, (monitor, score, int(kept["epoch"]))
    )
    describe_run(client, run_id, description)


def _example(datamodule: LandslideDataModule) -> np.ndarray:
    """The logged model's input example: a crop of the first validation sample."""
    name, patches = next((n, p) for n, p in datamodule.val_patches.items() if p)
    return input_example(datamodule.dataset(name, patches[:1])[0]["image"].numpy())


def _metadata(cfg: DictConfig, datamodule: LandslideDataModule) -> dict[str, Any]:
    """The logged model's metadata (see :func:`landslide.logged_model.model_metadata`)."""
    trained_on = [name for name, count in datamodule.mix.items() if count > 0]
    return model_metadata(
        bands=datamodule.bands,
        stats={name: datamodule.band_stats(name) for name in trained_on},
        threshold=float(cfg.task.threshold),
        patch_size=datamodule.patch_size,
        mix=datamodule.mix,
        network=str(cfg.model.name),
    )


def metrics_table(metrics: dict[str, float], domains: list[str]) -> str:
    """Test metrics as a plain-text table, one row per domain."""
    width = max([12, *(len(d) + 1 for d in domains)])
    rows = [f"{'domain':<{width}}" + "".join(f"{n:>10}" for n in METRICS)]
    for domain in domains:
        values = (metrics.get(f"test/{domain}/{n}", float("nan")) for n in METRICS)
        rows.append(f"{domain:<{width}}" + "".join(f"{v:>10.4f}" for v in values))
    return "\n".join(rows)
