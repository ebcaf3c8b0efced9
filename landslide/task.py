"""One LightningModule that trains, validates and tests any segmentation network."""

from collections.abc import Mapping, Sequence
from typing import Any, cast

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from segmentation_models_pytorch.losses import DiceLoss
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection

from landslide.errors import TrainingDiverged
from landslide.layout import IGNORED
from landslide.metrics import landslide_metrics
from landslide.safe_loading import instantiate_trusted

#: The paper's optimiser: Adam (at ``lr``, 1e-4), as ``conf/train.yaml`` configures it.
PAPER_OPTIMIZER: dict[str, Any] = {"_target_": "torch.optim.Adam", "_partial_": True}


class SegmentationTask(L.LightningModule):
    """Binary landslide segmentation with the paper's loss, optimiser and metrics.

    The network is built from ``net``, a Hydra spec (``_target_`` plus arguments), so a
    checkpoint carries everything needed to rebuild it
    (``SegmentationTask.load_from_checkpoint(path)``). Networks return logits; the dice
    loss and the metrics apply the sigmoid.

    Args:
        net: Hydra spec of the network, e.g. ``{"_target_": "landslide.models.ResUSENet"}``.
        lr: learning rate (the paper's 1e-4).
        optimizer: Hydra spec of the optimiser class, partial (``_partial_: true``): it is
            built with the network's parameters and ``lr``; None is the paper's Adam.
        threshold: probability above which a pixel is a landslide.
        test_domains: names of the test sets, in the DataModule's test dataloader order.
        figure_samples: test patches per domain kept for the prediction figure.
        bands: the input bands, in channel order. Saved in the checkpoint so that a map of a
            new scene reads the same bands in the same order (``map.py`` checks it).
        normalization: how inputs were scaled: ``minmax`` is the paper's per-band min-max
            with each scene's own statistics (``stats.json``), applied again at mapping time.
        channels_last: keep the network's weights and inputs channels-last (NHWC), the
            layout GPU tensor cores prefer; off by default (no consistent gain on a CPU in
            ``benchmarks/training.py``). Results equal the default layout's up to float
            rounding.
    """

    def __init__(
        self,
        net: Mapping[str, Any],
        lr: float = 1e-4,
        optimizer: Mapping[str, Any] | None = None,
        threshold: float = 0.5,
        test_domains: Sequence[str] = (),
        figure_samples: int = 4,
        bands: Sequence[str] | None = None,
        normalization: str = "minmax",
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        # Plain containers, so checkpoints load with torch.load(weights_only=True).
        # to_container is typed for any node; a DictConfig gives a dict (a Hydra spec's keys
        # are strings).
        if isinstance(net, DictConfig):
            net = cast(dict[str, Any], OmegaConf.to_container(net, resolve=True))
        if isinstance(optimizer, DictConfig):
            optimizer = cast(dict[str, Any], OmegaConf.to_container(optimizer, resolve=True))
        test_domains = list(test_domains)
        bands = list(bands) if bands is not None else None
        self.save_hyperparameters(logger=False)
        self.test_domains = list(test_domains)
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()
        self.figure_batches: dict[str, dict[str, Tensor]] = {}
        self._val_losses_finite: Tensor | None = None

    def configure_models(self) -> None:
        """Build the network from the ``net`` spec saved in the hyperparameters."""
        # A checkpoint names its network: build only a class of this package, so a crafted
        # checkpoint cannot run other code (see landslide.safe_loading).
        self.model: nn.Module = instantiate_trusted(self.hparams["net"], "net")
        self.memory_format = torch.contiguous_format
        if self.hparams.get("channels_last"):
            self.memory_format = torch.channels_last
            self.model.to(memory_format=self.memory_format)

    def configure_losses(self) -> None:
        """Set the paper's loss: binary soft dice on logits, ignoring unlabelled pixels."""
        # segmentation_models_pytorch's soft dice, the paper's Eq. (2); unlabelled pixels
        # (IGNORED) add nothing to it.
        self.loss = DiceLoss(mode="binary", from_logits=True, ignore_index=IGNORED)

    def configure_metrics(self) -> None:
        """Set the validation metrics and one test collection per test domain."""
        metrics = landslide_metrics(self.hparams["threshold"])
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = nn.ModuleDict(
            {name: metrics.clone(prefix=f"test/{name}/") for name in self.test_domains}
        )
        # The losses' means over a set's batches, weighted by batch size. torchmetrics
        # sums them across DDP processes exactly; Lightning's own epoch mean divides by an
        # integer mean of the processes' sample counts, which is off when they differ. A
        # NaN loss stays NaN (nan_strategy="disable"), as on_validation_epoch_end expects.
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.test_losses = nn.ModuleDict(
            {name: MeanMetric(nan_strategy="disable") for name in self.test_domains}
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Build the ``optimizer`` spec (the paper's Adam if None) at ``lr``."""
        spec = self.hparams.get("optimizer") or PAPER_OPTIMIZER
        make = instantiate_trusted(spec, "optimizer")
        return make(self.parameters(), lr=self.hparams["lr"])

    def forward(self, image: Tensor) -> Tensor:
        """Landslide logits [B, H, W] for an image batch [B, C, H, W]."""
        return self.model(image.contiguous(memory_format=self.memory_format)).squeeze(1)

    def _step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        logits = self(batch["image"])
        loss = self.loss(logits.unsqueeze(1), batch["mask"].unsqueeze(1))
        return logits, loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Return the batch's dice loss and log its epoch mean as ``train/loss``."""
        _, loss = self._step(batch)
        self.log(
            "train/loss",
            loss,
            on_step=False,
            on_epoch=True,
            batch_size=len(batch["image"]),
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Log ``val/loss`` and the validation metrics, and note whether the loss is finite."""
        logits, loss = self._step(batch)
        self.val_metrics.update(logits.sigmoid(), batch["mask"].long())
        self.val_loss.update(loss, weight=len(logits))
        # Synchronised: under DDP every process keeps the same checkpoint.
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)
        self.log_dict(self.val_metrics, on_epoch=True, batch_size=len(logits))
        # Kept on the device and read once an epoch: no host sync per step.
        finite = torch.isfinite(loss).all()
        self._val_losses_finite = (
            finite if self._val_losses_finite is None else self._val_losses_finite & finite
        )

    def on_validation_epoch_end(self) -> None:
        """Stop a run whose validation loss is NaN or infinite.

        Otherwise a model that predicts nothing would be kept as the "best" checkpoint and
        the run marked complete.

        Raises:
            TrainingDiverged: naming the epoch and what to check.
        """
        finite, self._val_losses_finite = self._val_losses_finite, None
        if finite is not None and not self.trainer.sanity_checking and not bool(finite):
            raise TrainingDiverged(
                f"val/loss is not finite at epoch {self.current_epoch}: the model's inputs "
                "hold NaN or infinite values outside ignored pixels, or training diverged; "
                "check the domains' stacks and stats.json (prepare.py writes NaN only where "
                "the mask is 255), or lower task.lr"
            )

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        """Log the loss and metrics of the loader's domain; keep its first batch for figures."""
        domain = self.test_domains[dataloader_idx]
        logits, loss = self._step(batch)
        probs = logits.sigmoid()
        # ModuleDict types its items as Module; configure_metrics stores MetricCollections.
        metrics = cast(MetricCollection, self.test_metrics[domain])
        metrics.update(probs, batch["mask"].long())
        mean_loss = cast(MeanMetric, self.test_losses[domain])
        mean_loss.update(loss, weight=len(logits))
        self.log(f"test/{domain}/loss", mean_loss, add_dataloader_idx=False)
        self.log_dict(metrics, batch_size=len(logits), add_dataloader_idx=False)
        if batch_idx == 0:
            self.figure_batches[domain] = self._figure_batch(batch, probs)

    def predict_step(
        self, batch: dict[str, Tensor], batch_idx: int = 0, dataloader_idx: int = 0
    ) -> Tensor:
        """Landslide probabilities [B, H, W] of ``batch["image"]`` (normalised bands)."""
        return self(batch["image"]).sigmoid()

    def _figure_batch(self, batch: dict[str, Tensor], probs: Tensor) -> dict[str, Tensor]:
        n = self.hparams["figure_samples"]
        return {
            "image": batch["image"][:n].detach().cpu(),
            "mask": batch["mask"][:n].detach().cpu(),
            "prob": probs[:n].detach().cpu(),
        }
