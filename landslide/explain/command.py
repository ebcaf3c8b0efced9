"""What ``explain.py`` does with its config: load the models, measure, write and log.

Each model (a training run, named as ``map.py`` names one) is explained on test patches of
its run's own test domains, rebuilt from the run's recorded config: the patches it was
tested on. The outputs of each model go to a folder of their own, complete or absent, and
then to its MLflow run: artifacts under ``explain/``, band importance as metrics
``explain/<domain>/f1``, ``explain/<domain>/f1_drop/<band>`` and
``explain/<domain>/ig_share/<band>``, and the SE gates as ``se/<domain>/<module>/<kind>``
with one step per channel.
"""

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from mlflow.entities import Metric, Run
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor

from landslide.checkpointing import checkpoint_run_id
from landslide.data.datamodule import LandslideDataModule
from landslide.errors import UserError
from landslide.explain.band_importance import ablation_drops, band_means, importance_table
from landslide.explain.band_importance import integrated_gradients as attribute_bands
from landslide.explain.excitation import excitation_gates, mean_gates
from landslide.explain.figures import band_importance_figure, excitation_figure, gradcam_panel
from landslide.explain.gradcam import cam_regions, landslide_cams, probabilities
from landslide.explain.samples import DomainSamples, balanced_indices, read_test_patches
from landslide.files import staged_dir, write_atomic
from landslide.mapping.model import TrainedModel
from landslide.mapping.predict import resolve_device
from landslide.mapping.runs import resolve_model
from landslide.mlflow_store import open_store, quiet_artifact_transfers
from landslide.model_refs import resolve_run
from landslide.models.base import AnySizeSegmenter
from landslide.selection import changed_data, recorded_config, run_datamodule

log = logging.getLogger(__name__)

#: MLflow accepts at most this many metrics in one call.
METRICS_PER_CALL = 1000

#: The artifact folder of a run's explanation.
ARTIFACTS = "explain"


class ExplainError(UserError):
    """Bad input to ``explain.py``: the message is one line naming the input and the fix."""


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


@dataclass
class Explanation:
    """What was measured for one model.

    Attributes:
        run_id: its MLflow run.
        folder: where its files were written.
        bands: band importance, one row per domain and band.
        gates: SE gates, one row per domain, module and channel (empty without SE).
    """

    run_id: str
    folder: Path
    bands: pd.DataFrame
    gates: pd.DataFrame


def run_explain(cfg: DictConfig) -> list[Explanation]:
    """Explain every model ``cfg.model`` names and log each explanation to its run.

    Raises:
        ExplainError: on bad input, before anything is written.
    """
    if OmegaConf.is_missing(cfg, "model"):
        raise ExplainError(
            "model= not set; e.g. python explain.py model=<run name, run id or checkpoint>"
        )
    refs = [str(r) for r in cfg.model] if isinstance(cfg.model, ListConfig) else [str(cfg.model)]
    settings = _settings(cfg)
    device = resolve_device(str(cfg.device))
    try:
        client = open_store(str(cfg.tracking_uri))
    except UserError as err:
        raise ExplainError(str(err)) from None
    with tempfile.TemporaryDirectory(prefix="landslide-explain-") as workdir:
        subjects = [
            _subject(client, ref, list(cfg.experiments), Path(workdir), device) for ref in refs
        ]
    domains = _domains(cfg.domain, subjects)
    out_dir = Path(cfg.out_dir)
    measured = [_measure(s, domains, settings) for s in subjects]
    panels = {d: _panel(subjects, d, settings) for d in domains}
    explanations = []
    for subject, (bands, gates) in zip(subjects, measured, strict=True):
        folder = out_dir / _safe(subject.run.info.run_name or subject.run.info.run_id)
        with staged_dir(folder) as tmp:
            _write(tmp, subject, bands, gates, panels, settings, refs)
        log.info("%s: explanation written to %s", subject.label, folder)
        if cfg.log:
            _log(client, subject.run, folder, bands, gates)
            log.info("%s: logged to run %s", subject.label, subject.run.info.run_id)
        explanations.append(Explanation(subject.run.info.run_id, folder, bands, gates))
    return explanations


@dataclass(frozen=True)
class Settings:
    """The measurement's knobs (``conf/explain/explain.yaml``)."""

    patches: int | None
    seed: int
    batch_size: int
    cam_patches: int
    cam_indices: tuple[int, ...] | None
    ig_patches: int
    ig_steps: int


def _settings(cfg: DictConfig) -> Settings:
    def count(key: str, optional: bool = False, least: int = 1) -> Any:
        value = OmegaConf.select(cfg, key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            hint = "" if not optional else " or null"
            raise ExplainError(f"{key}={value!r}: give an integer >= {least}{hint}")
        return value

    indices = OmegaConf.select(cfg, "gradcam.indices")
    if indices is not None:
        items = list(indices) if isinstance(indices, ListConfig) else [indices]
        if not items or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in items):
            raise ExplainError(
                f"gradcam.indices={indices}: give test-set indexes >= 0, e.g. "
                "gradcam.indices=[0,5,9], or null"
            )
        indices = tuple(items)
    return Settings(
        patches=count("patches", optional=True, least=2),
        seed=count("seed", least=0),
        batch_size=count("batch_size"),
        cam_patches=count("gradcam.patches"),
        cam_indices=indices,
        ig_patches=count("attribution.patches", least=0),
        ig_steps=count("attribution.steps", least=2),
    )


def _subject(
    client: mlflow.MlflowClient,
    ref: str,
    experiments: Sequence[str],
    workdir: Path,
    device: torch.device,
) -> Subject:
    """Load the model ``ref`` names and rebuild its run's test data."""
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
    cfg = recorded_config(client, run.run)
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


def _domains(chosen: Any, subjects: Sequence[Subject]) -> list[str]:
    """The test domains to explain: ``chosen``, or every test domain of the first model."""
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


def _samples(subject: Subject, domain: str, indices: Sequence[int]) -> DomainSamples:
    try:
        return read_test_patches(subject.data, domain, indices)
    except IndexError as err:
        raise ExplainError(f"gradcam.indices: {err}") from None


def _measure(
    subject: Subject, domains: Sequence[str], settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Band importance and SE gates of one model on each domain's drawn test patches."""
    network, device = subject.network, next(subject.network.parameters()).device
    bands_tables, gate_tables = [], []
    for domain in domains:
        patches = subject.data.pools[domain].test
        indices = balanced_indices(patches, settings.patches, settings.seed)
        samples = _samples(subject, domain, indices)
        log.info("%s on %s: %d test patches", subject.label, domain, len(indices))
        gates = excitation_gates(network, samples.images, settings.batch_size)
        if gates:
            gate_tables.append(mean_gates(gates, samples.positive, domain))
        base_f1, drops = ablation_drops(
            lambda images: network(images.to(device))[:, 0].sigmoid(),
            samples.images,
            samples.masks,
            subject.model.threshold,
            settings.batch_size,
        )
        attributions = _attributions(subject, samples, settings)
        bands_tables.append(
            importance_table(domain, subject.model.bands, base_f1, drops, attributions)
        )
    gates_table = pd.concat(gate_tables, ignore_index=True) if gate_tables else pd.DataFrame()
    return pd.concat(bands_tables, ignore_index=True), gates_table


def _attributions(subject: Subject, samples: DomainSamples, settings: Settings) -> Tensor | None:
    """Integrated gradients on up to ``ig_patches`` of the landslide patches drawn."""
    positive = samples.positive.nonzero().flatten()
    if settings.ig_patches == 0 or len(positive) == 0:
        return None
    rng = np.random.default_rng(settings.seed)
    keep = sorted(rng.permutation(len(positive))[: settings.ig_patches].tolist())
    chosen = samples.subset(positive[keep])
    device = next(subject.network.parameters()).device
    attributions, errors = attribute_bands(
        lambda images: subject.network(images)[:, 0],
        chosen.images.to(device),
        (chosen.masks == 1).to(device),
        band_means(samples.images).to(device),
        settings.ig_steps,
        settings.batch_size,
    )
    # Completeness: the band sums add up to the score's change; what is left over is the
    # integral's error, as a share of that change.
    relative = errors.abs() / attributions.sum(1).abs().clamp(min=1e-12)
    log.info(
        "%s on %s: integrated gradients of %d patches; convergence error at most %.1f%% of "
        "the score's change (raise attribution.steps if large)",
        subject.label,
        samples.domain,
        len(chosen.indices),
        100 * float(relative.max()),
    )
    return attributions.cpu()


def _panel(subjects: Sequence[Subject], domain: str, settings: Settings) -> Figure:
    """The Grad-CAM panel of ``domain``: chosen test patches, one heatmap column per model."""
    first = subjects[0]
    patches = first.data.pools[domain].test
    if settings.cam_indices is not None:
        indices = list(settings.cam_indices)
    else:
        positive = [i for i, p in enumerate(patches) if p.positive] or list(range(len(patches)))
        rng = np.random.default_rng(settings.seed)
        indices = sorted(rng.permutation(positive)[: settings.cam_patches].tolist())
    heatmaps: dict[str, np.ndarray] = {}
    shown: DomainSamples | None = None
    for subject in subjects:
        samples = _samples(subject, domain, indices)
        if shown is not None and samples.windows != shown.windows:
            raise ExplainError(
                f"model: runs {first.run.info.run_name} and {subject.run.info.run_name} were "
                f"tested on other patches of {domain} (other data settings); explain them "
                "one at a time"
            )
        shown = shown or samples
        try:
            probs = probabilities(subject.network, samples.images, settings.batch_size)
            regions = cam_regions(samples.masks, probs, subject.model.threshold)
            heatmaps[subject.label] = landslide_cams(
                subject.network,
                samples.images,
                regions,
                settings.batch_size,
            )
        except NotImplementedError as err:
            raise ExplainError(f"model={subject.label}: {err}") from None
    assert shown is not None
    title = f"Grad-CAM on {domain} test patches {', '.join(map(str, shown.indices))}"
    channels = first.model.bands
    return gradcam_panel(shown.images.numpy(), shown.masks.numpy(), heatmaps, channels, title)


def _write(
    folder: Path,
    subject: Subject,
    bands: pd.DataFrame,
    gates: pd.DataFrame,
    panels: dict[str, Figure],
    settings: Settings,
    refs: Sequence[str],
) -> None:
    """The explanation's files: panels, SE gates (if any), band importance, settings."""
    for domain, figure in panels.items():
        figure.savefig(folder / f"gradcam_{_safe(domain)}.png", dpi=120)
    if not gates.empty:
        gates.to_csv(folder / "se_gates.csv", index=False)
        figure = excitation_figure(gates, f"SE gates of {subject.label}")
        figure.savefig(folder / "se_gates.png", dpi=120)
        plt.close(figure)
    bands.to_csv(folder / "band_importance.csv", index=False)
    write_atomic(folder / "band_importance.md", band_markdown(bands))
    figure = band_importance_figure(bands, f"Band importance of {subject.label}")
    figure.savefig(folder / "band_importance.png", dpi=120)
    plt.close(figure)
    record = {
        "run_id": subject.run.info.run_id,
        "run_name": subject.run.info.run_name,
        "checkpoint": str(subject.model.checkpoint.name),
        "models_in_panel": list(refs),
        "explained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": settings.__dict__ | {"cam_indices": _listed(settings.cam_indices)},
    }
    write_atomic(folder / "settings.yaml", OmegaConf.to_yaml(OmegaConf.create(record)))


def _listed(values: Sequence[int] | None) -> list[int] | None:
    return list(values) if values is not None else None


def band_markdown(bands: pd.DataFrame) -> str:
    """Band importance as Markdown: per domain, each band's F1 drop and IG share."""
    lines = []
    for domain, part in bands.groupby("domain", sort=False):
        lines += [
            f"## {domain} (F1 with every band {part['f1'].iloc[0]:.4f})",
            "",
            "| band | F1 drop with the band at its mean | share of abs. integrated gradients "
            "| mean integrated gradient |",
            "| --- | ---: | ---: | ---: |",
        ]
        for row in part.itertuples():
            lines.append(
                f"| {row.band} | {row.f1_drop:+.4f} | {row.ig_share:.3f} | {row.ig_mean:+.4f} |"
            )
        lines.append("")
    return "\n".join(lines)


def explain_metrics(bands: pd.DataFrame, gates: pd.DataFrame) -> list[Metric]:
    """The explanation as MLflow metrics (SE gates with one step per channel)."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    metrics = []
    for domain, part in bands.groupby("domain", sort=False):
        metrics.append(Metric(f"explain/{domain}/f1", float(part["f1"].iloc[0]), now, 0))
        for row in part.itertuples():
            metrics.append(Metric(f"explain/{domain}/f1_drop/{row.band}", row.f1_drop, now, 0))
            if not np.isnan(row.ig_share):
                metrics.append(
                    Metric(f"explain/{domain}/ig_share/{row.band}", row.ig_share, now, 0)
                )
    for row in gates.itertuples():
        for kind in ("landslide", "background"):
            value = float(getattr(row, kind))
            if not np.isnan(value):
                key = f"se/{row.domain}/{row.module}/{kind}"
                metrics.append(Metric(key, value, now, int(row.channel)))
    return metrics


def _log(
    client: mlflow.MlflowClient, run: Run, folder: Path, bands: pd.DataFrame, gates: pd.DataFrame
) -> None:
    """Log the folder as artifacts, then the metrics, then the tag ``landslide.explained``."""
    run_id = run.info.run_id
    with quiet_artifact_transfers():
        client.log_artifacts(run_id, str(folder), ARTIFACTS)
    metrics = explain_metrics(bands, gates)
    for start in range(0, len(metrics), METRICS_PER_CALL):
        client.log_batch(run_id, metrics=metrics[start : start + METRICS_PER_CALL])
    client.set_tag(run_id, "landslide.explained", datetime.now(UTC).isoformat(timespec="seconds"))


def _safe(name: str) -> str:
    """A name usable as one file or folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"
