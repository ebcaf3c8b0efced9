"""Train one network on one domain mix, test it on every domain, record it in MLflow."""

from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import DictConfig

from landslide.data.datamodule import LandslideDataModule
from landslide.task import SegmentationTask
from landslide.tracking import log_config, log_prediction_figures, log_weights


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
    task: SegmentationTask = build(cfg.task, test_domains=datamodule.test_domains)
    logger = build(cfg.logger)
    callbacks: list[Callback] = [build(c) for c in cfg.callbacks.values()]
    trainer: L.Trainer = build(cfg.trainer, logger=logger, callbacks=callbacks)

    log_config(logger, cfg)
    trainer.fit(task, datamodule=datamodule)
    checkpoint = next(c for c in callbacks if isinstance(c, ModelCheckpoint))
    trainer.test(task, datamodule=datamodule, ckpt_path=checkpoint.best_model_path)
    log_weights(logger, checkpoint.best_model_path)
    log_prediction_figures(logger, task.figure_batches, cfg.task.threshold)
    logger.finalize("success")
    return {k: float(v) for k, v in trainer.callback_metrics.items()}
