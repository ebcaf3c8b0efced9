"""What every run records in MLflow besides Lightning's metrics.

Config, weights and figures as artifacts; tags to filter runs by and a Markdown description
with the test metrics (MLflow's ``mlflow.note.content``); system metrics on request.
"""

import hashlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, override

import matplotlib.pyplot as plt
import mlflow
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from landslide.figures import prediction_figure
from landslide.layout import KNOWN
from landslide.metrics import METRICS
from landslide.safe_loading import load_checkpoint

#: Prefix of the metrics computed on the test sets.
TEST_PREFIX = "test/"


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger, minus ending the run.

    Lightning calls ``finalize("success")`` when ``fit`` returns, before testing and artifact
    logging, so the stock logger marks a run FINISHED that may still fail.
    :mod:`landslide.lifecycle` ends the run instead, once everything is recorded.

    Test metrics are held in :attr:`test_metrics` rather than logged: they are logged once,
    linked to the logged model and to their test sets (:mod:`landslide.logged_model`).

    Args:
        register_as: register the run's logged model under this name (None: do not).
        system_metrics: record CPU, memory and GPU use while the run trains and tests.
        system_metrics_interval_s: seconds between system metric samples.
        **kwargs: :class:`MLFlowLogger`'s arguments.
    """

    def __init__(
        self,
        register_as: str | None = None,
        system_metrics: bool = False,
        system_metrics_interval_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.register_as = register_as
        self.system_metrics = system_metrics
        self.system_metrics_interval_s = system_metrics_interval_s
        self.test_metrics: dict[str, float] = {}
        self._test_step: int | None = None

    @override
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metrics, holding back ``test/*`` ones in :attr:`test_metrics`."""
        held = {k: float(v) for k, v in metrics.items() if k.startswith(TEST_PREFIX)}
        self.test_metrics.update(held)
        if held:
            self._test_step = step
        rest = {k: v for k, v in metrics.items() if k not in held}
        if rest:
            super().log_metrics(rest, step)

    def flush_test_metrics(self) -> None:
        """Log the held test metrics as plain run metrics, and hold nothing more.

        For a run that failed before its model could link them: it still shows how it tested.
        """
        if self.test_metrics:
            super().log_metrics(self.test_metrics, self._test_step)
            self.test_metrics = {}

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


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain, resolved containers."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(tree, dict)  # a DictConfig always converts to a dict
    return {str(k): v for k, v in tree.items()}


def log_config(logger: MLFlowLogger, cfg: DictConfig) -> None:
    """Log the resolved config as flattened params and as a YAML artifact."""
    tree = resolved(cfg)
    logger.log_hyperparams(flatten(tree))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(OmegaConf.to_yaml(tree))
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


def run_tags(cfg: DictConfig, provenance: Mapping[str, str], split: str) -> dict[str, str]:
    """Tags to filter and group runs by in the MLflow UI and in ``search_runs``.

    ``network``, ``mix``, ``data_source`` and ``data_version`` (the world generator's version,
    or a digest of the prepared domains' digests), ``split``, ``budget`` (the ``trainer``
    config chosen), and MLflow's own source tags (user, entry point, git commit).

    Args:
        cfg: the run's config.
        provenance: :meth:`LandslideDataModule.provenance`.
        split: the sample split used (``random`` or ``blocked``).
    """
    version = provenance.get("data.world.generator_version")
    if version is None:
        joined = "".join(f"{k}={v}" for k, v in sorted(provenance.items()))
        version = hashlib.sha256(joined.encode()).hexdigest()[:12]
    return {
        **{k: str(v) for k, v in resolve_tags().items()},
        "network": str(cfg.model.name),
        "mix": str(cfg.domain_mix.name),
        "data_source": "default_world" if cfg.data.get("world") else "prepared",
        "data_version": str(version),
        "split": split,
        "budget": budget_name(cfg),
    }


def budget_name(cfg: DictConfig) -> str:
    """The ``trainer`` config a run chose (``cpu``, ``paper``, ...), else its epochs."""
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("trainer")
        if choice:
            return str(choice)
    return f"{cfg.trainer.max_epochs} epochs"


def run_description(
    cfg: DictConfig,
    data_source: str,
    roles: Mapping[str, str],
    metrics: Mapping[str, float],
    best: tuple[str, float, int],
) -> str:
    """A run's Markdown description: what it trained on, its budget, and its test metrics.

    Args:
        cfg: the run's config.
        data_source: which data, said plainly.
        roles: each test domain's role (``known`` or ``unknown``).
        metrics: ``test/<domain>/<metric>`` values.
        best: the kept checkpoint's ``(monitored metric, value, epoch)``.
    """
    counts = {str(k): int(v) for k, v in cfg.domain_mix.counts.items() if int(v) > 0}
    mix = ", ".join(f"{name} {n}" for name, n in counts.items())
    trainer = cfg.trainer
    batches = trainer.get("limit_train_batches")
    per_epoch = f" of {batches} batches" if batches not in (None, 1.0) else ""
    monitor, score, epoch = best
    epochs = f"{trainer.max_epochs} epoch" + ("s" if trainer.max_epochs != 1 else "")
    lines = [
        f"**{cfg.model.name}** trained on mix **{cfg.domain_mix.name}** ({mix} samples, "
        f"{cfg.data.val_fraction:.0%} of them held out for validation) of {data_source}; "
        f"budget `{budget_name(cfg)}`: {epochs}{per_epoch}, batch size "
        f"{cfg.data.batch_size}, seed {cfg.seed}. Kept: lowest {monitor} {score:.4f} "
        f"(epoch {epoch}).",
        "",
        "| test domain | role | " + " | ".join(METRICS) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in METRICS) + " |",
    ]
    for domain, role in roles.items():
        if role == KNOWN:
            seen = "trained on" if domain in counts else "known, not in the mix"
        else:
            seen = "unseen"
        values = (metrics.get(f"test/{domain}/{m}", float("nan")) for m in METRICS)
        lines.append(f"| {domain} | {seen} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return "\n".join(lines)


def describe_run(client: mlflow.MlflowClient, run_id: str, description: str) -> None:
    """Set the run's description, shown on its page in the MLflow UI."""
    client.set_tag(run_id, MLFLOW_RUN_NOTE, description)


@contextmanager
def system_metrics(logger: "RunLogger") -> Iterator[None]:
    """Record CPU, memory, disk, network and (with NVML) GPU use into the run, if enabled."""
    if not logger.system_metrics:
        yield
        return
    # Imported here: it needs psutil, and nothing else does.
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(
        logger.run_id,
        sampling_interval=logger.system_metrics_interval_s,
        resume_logging=True,  # a resumed run continues its series
        tracking_uri=logger.experiment.tracking_uri,
    )
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()
