"""The models ``explain.py`` explains: each one's network, training run and test data."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import torch
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import ListConfig
from torch import Tensor

from landslide.checkpointing import checkpoint_run_id
from landslide.data.datamodule import LandslideDataModule
from landslide.errors import UserError
from landslide.explain.errors import ExplainError
from landslide.mapping.model import TrainedModel
from landslide.mapping.runs import resolve_model
from landslide.model_refs import resolve_run
from landslide.models.base import AnySizeSegmenter
from landslide.selection import changed_data, recorded_config, run_datamodule

log = logging.getLogger(__name__)


@dataclass
class Subject:
    """A model to explain, the run it comes from, its test data and what is measured.

    Attributes:
        model: the trained model.
        run: its training run.
        data: the DataModule the run's recorded config builds, set up.
        network: the model's network on the explanation's device.
        label: how the model is named in figures (network, mix, seed).
    """

    model: TrainedModel
    run: Run
    data: LandslideDataModule
    network: AnySizeSegmenter
    label: str

    @property
    def device(self) -> torch.device:
        """Where the network is."""
        return next(self.network.parameters()).device

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        """Landslide probabilities ``[N, H, W]`` (on the CPU) of normalised bands, as tested."""
        return self.model.task.predict_step({"image": images.to(self.device)}).cpu()


def load_subject(
    client: mlflow.MlflowClient,
    ref: str,
    experiments: Sequence[str],
    workdir: Path,
    device: torch.device,
) -> Subject:
    """Load the model ``ref`` names and rebuild its run's test data.

    Args:
        client: the tracking client.
        ref: the model as ``map.py`` takes it (run name or id, URI, a run's checkpoint).
        experiments: where a run name is looked for.
        workdir: where artifacts are downloaded.
        device: where the network is put.

    Raises:
        ExplainError: naming ``ref``: no such model, no run behind a checkpoint, data that
            has changed since the run, or a network that is not a landslide network.
    """
    try:
        choice = resolve_model(ref, client, experiments, workdir)
    except UserError as err:
        raise ExplainError(str(err)) from None
    model = choice.model
    run_id = model.run_id or checkpoint_run_id(model.checkpoint)
    if run_id is None:
        raise ExplainError(
            f"model={ref}: the checkpoint names no training run, so its test data is unknown; "
            "give the run's name or id, or a best.ckpt written by train.py"
        )
    try:
        run = resolve_run(client, run_id, experiments, "model")
    except UserError as err:
        raise ExplainError(
            f"model={ref}: checkpoint of run {run_id}: {err}; point tracking_uri at the store "
            "it was trained in"
        ) from None
    log.info("model=%s: %s", ref, choice.reason)
    try:
        cfg = recorded_config(client, run.run)
    except (MlflowException, OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ExplainError(
            f"model={ref}: run {run.run.info.run_name} has no readable config.yaml ({reason}), "
            "so its test data cannot be rebuilt; explain a run trained by train.py"
        ) from None
    data = run_datamodule(cfg, run.run)
    changed = changed_data(run.run, data.provenance())
    if changed is not None:
        raise ExplainError(
            f"model={ref}: run {run.run.info.run_name} was tested on data that has changed "
            f"since ({changed}); its test patches cannot be rebuilt, retrain it"
        )
    data.setup("test")
    if tuple(data.bands) != tuple(model.bands):
        raise ExplainError(
            f"model={ref}: the checkpoint reads bands {list(model.bands)} but its run's "
            f"config {list(data.bands)}; give the run's own checkpoint"
        )
    network = model.task.model
    if not isinstance(network, AnySizeSegmenter):
        raise ExplainError(f"model={ref}: {type(network).__name__} is not a landslide network")
    network.to(device).eval()
    params = run.run.data.params
    label = " ".join(
        v
        for v in (
            params.get("model.name", type(network).__name__),
            params.get("domain_mix.name"),
            f"seed {params['seed']}" if "seed" in params else None,
        )
        if v
    )
    return Subject(model, run.run, data, network, label)


def choose_domains(chosen: Any, subjects: Sequence[Subject]) -> list[str]:
    """The test domains to explain: ``chosen``, or every test domain of the first model.

    Raises:
        ExplainError: a domain is not a test domain of every model.
    """
    available = subjects[0].data.test_domains
    if chosen is None:
        domains = list(available)
    else:
        domains = [str(d) for d in chosen] if isinstance(chosen, ListConfig) else [str(chosen)]
    for subject in subjects:
        missing = [d for d in domains if d not in subject.data.test_domains]
        if missing:
            raise ExplainError(
                f"domain={missing[0]}: not a test domain of run {subject.run.info.run_name}; "
                f"its test domains: {', '.join(subject.data.test_domains)}"
            )
    return domains
