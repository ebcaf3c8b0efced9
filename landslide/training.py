"""Train one network on one domain mix, test it on every domain, record it in MLflow."""

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import DictConfig

from landslide.data.datamodule import LandslideDataModule
from landslide.task import SegmentationTask
from landslide.tracking import log_config, log_prediction_figures, log_weights


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one experiment described by a composed Hydra config.

    Returns:
        The final validation and test metrics.
    """
    L.seed_everything(cfg.seed, workers=True)
    datamodule: LandslideDataModule = instantiate(cfg.data)
    task: SegmentationTask = instantiate(cfg.task, test_domains=datamodule.test_domains)
    logger = instantiate(cfg.logger)
    callbacks: list[Callback] = [instantiate(c) for c in cfg.callbacks.values()]
    trainer: L.Trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks)

    log_config(logger, cfg)
    trainer.fit(task, datamodule=datamodule)
    checkpoint = next(c for c in callbacks if isinstance(c, ModelCheckpoint))
    trainer.test(task, datamodule=datamodule, ckpt_path=checkpoint.best_model_path)
    log_weights(logger, checkpoint.best_model_path)
    log_prediction_figures(logger, task.figure_batches, cfg.task.threshold)
    logger.finalize("success")
    return {k: float(v) for k, v in trainer.callback_metrics.items()}
