"""Train one network on one domain mix, test it on every domain, record it in MLflow."""

import logging
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import DictConfig

from landslide.data.datamodule import LandslideDataModule
from landslide.task import SegmentationTask
from landslide.tracking import log_config, log_prediction_figures, log_weights
from landslide.world import GENERATOR_VERSION

log = logging.getLogger(__name__)


def build(spec: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, but a config error raised by our own classes reaches the
    user as its one-line message instead of wrapped in Hydra's instantiation report."""
    try:
        return instantiate(spec, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | FileNotFoundError):
            raise err.__cause__ from None
        raise


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one experiment described by a composed Hydra config.

    Returns:
        The final validation and test metrics.
    """
    L.seed_everything(cfg.seed, workers=True)
    datamodule: LandslideDataModule = build(cfg.data)
    task: SegmentationTask = build(
        cfg.task, test_domains=datamodule.test_domains, bands=list(datamodule.bands)
    )
    logger = build(cfg.logger)
    callbacks: list[Callback] = [build(c) for c in cfg.callbacks.values()]
    trainer: L.Trainer = build(cfg.trainer, logger=logger, callbacks=callbacks)

    log_config(logger, cfg)
    if cfg.data.get("world") is not None:
        # Runs on different versions of the simulated world must never be averaged.
        logger.log_hyperparams({"data.world.generator_version": GENERATOR_VERSION})
    trainer.fit(task, datamodule=datamodule)
    checkpoint = next(c for c in callbacks if isinstance(c, ModelCheckpoint))
    if not checkpoint.best_model_path:
        raise RuntimeError(
            "no checkpoint was saved: validation never ran; allow validation batches "
            "(trainer.limit_val_batches > 0) so the lowest-validation-loss model can be kept"
        )
    trainer.test(task, datamodule=datamodule, ckpt_path=checkpoint.best_model_path, verbose=False)
    log_weights(logger, checkpoint.best_model_path)
    log_prediction_figures(logger, task.figure_batches, cfg.task.threshold, datamodule.bands)
    logger.finalize("success")
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info(
        "Test metrics of %s:\n%s", cfg.logger.run_name, metrics_table(metrics, task.test_domains)
    )
    return metrics


def metrics_table(metrics: dict[str, float], domains: list[str]) -> str:
    """Test metrics as a plain-text table, one row per domain."""
    names = ("precision", "recall", "f1", "mcc", "iou")
    rows = [f"{'domain':<12}" + "".join(f"{n:>10}" for n in names)]
    for domain in domains:
        values = (metrics.get(f"test/{domain}/{n}", float("nan")) for n in names)
        rows.append(f"{domain:<12}" + "".join(f"{v:>10.4f}" for v in values))
    return "\n".join(rows)
