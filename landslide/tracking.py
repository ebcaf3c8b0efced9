"""What every run records in MLflow besides Lightning's metrics: config, weights, figures."""

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from landslide.figures import prediction_figure
from landslide.safe_loading import load_checkpoint


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger, minus ending the run.

    Lightning calls ``finalize("success")`` when ``fit`` returns, before testing and artifact
    logging, so the stock logger marks a run FINISHED that may still fail.
    :mod:`landslide.lifecycle` ends the run instead, once everything is recorded.
    """

    def finalize(self, status: str = "success") -> None:  # noqa: D102 - see class docstring
        pass


def flatten(tree: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys (``{"model": {"name": x}}`` -> ``model.name``).

    Lists become their string form, one parameter each.
    """
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def log_config(logger: MLFlowLogger, cfg: DictConfig) -> None:
    """Log the resolved config as flattened params and as a YAML artifact."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)  # a DictConfig always converts to a dict
    logger.log_hyperparams(flatten(resolved))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(OmegaConf.to_yaml(resolved))
        logger.experiment.log_artifact(logger.run_id, str(path))


def log_weights(logger: MLFlowLogger, checkpoint: str | Path) -> None:
    """Log a checkpoint as ``checkpoints/best.ckpt``, without its optimiser state.

    The logged file is a third of the size and still loads with
    ``SegmentationTask.load_from_checkpoint``.
    """
    state = load_checkpoint(checkpoint)
    for key in ("optimizer_states", "lr_schedulers"):
        state.pop(key, None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "best.ckpt"
        torch.save(state, path)
        logger.experiment.log_artifact(logger.run_id, str(path), "checkpoints")


def log_prediction_figures(
    logger: MLFlowLogger,
    batches: Mapping[str, Mapping[str, Tensor]],
    threshold: float,
    bands: Sequence[str],
) -> None:
    """Log one PNG per test domain as ``figures/test_<domain>.png``.

    Args:
        logger: the run's logger.
        batches: test patches with predictions, by domain.
        threshold: probability above which a pixel is predicted a landslide.
        bands: the names of the image channels.
    """
    for domain, batch in batches.items():
        fig = prediction_figure(batch, f"test patches: {domain}", threshold, bands)
        logger.experiment.log_figure(logger.run_id, fig, f"figures/test_{domain}.png")
        plt.close(fig)
