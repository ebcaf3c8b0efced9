"""What ``explain.py`` does with its config: load the models, measure, write and log.

Each model (a training run, named as ``map.py`` names one) is explained on test patches of
its run's own test domains, rebuilt from the run's recorded config: the patches it was
tested on. Bad input is refused before the long part: the models, the domains, the
Grad-CAM patches and panels come first, then the gates, the ablation and the integrated
gradients. The outputs of each model go to a folder of their own, complete or absent, and
then to its MLflow run (:mod:`landslide.explain.tracking`).
"""

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor

from landslide.errors import UserError
from landslide.explain.band_importance import ablation_drops, band_means, importance_table
from landslide.explain.band_importance import integrated_gradients as attribute_bands
from landslide.explain.errors import ExplainError
from landslide.explain.excitation import excitation_gates, mean_gates
from landslide.explain.figures import gradcam_panel
from landslide.explain.gradcam import cam_regions, landslide_cams
from landslide.explain.samples import DomainSamples, balanced_indices, read_test_patches
from landslide.explain.settings import Settings, settings_from_config
from landslide.explain.subjects import Subject, choose_domains, load_subject
from landslide.explain.tracking import log_explanation, write_explanation
from landslide.files import safe_name, staged_dir
from landslide.mapping.predict import resolve_device
from landslide.mlflow_store import open_store

log = logging.getLogger(__name__)


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
    settings = settings_from_config(cfg)
    try:
        device = resolve_device(str(cfg.device))
        client = open_store(str(cfg.tracking_uri))
    except UserError as err:
        raise ExplainError(str(err)) from None
    with tempfile.TemporaryDirectory(prefix="landslide-explain-") as workdir:
        subjects = [
            load_subject(client, ref, list(cfg.experiments), Path(workdir), device) for ref in refs
        ]
    domains = choose_domains(cfg.domain, subjects)
    _check_cam_indices(settings, subjects, domains)
    # The panels first: a network that cannot be explained is refused before the long part.
    panels = {d: _panel(subjects, d, settings) for d in domains}
    measured = [_measure(s, domains, settings) for s in subjects]
    explanations = []
    for subject, (bands, gates) in zip(subjects, measured, strict=True):
        folder = Path(cfg.out_dir) / safe_name(subject.run.info.run_name or subject.run.info.run_id)
        with staged_dir(folder) as tmp:
            write_explanation(tmp, subject, bands, gates, panels, settings, refs)
        log.info("%s: explanation written to %s", subject.label, folder)
        if cfg.log:
            log_explanation(client, subject.run, folder, bands, gates)
            log.info("%s: logged to run %s", subject.label, subject.run.info.run_id)
        explanations.append(Explanation(subject.run.info.run_id, folder, bands, gates))
    for figure in panels.values():
        plt.close(figure)
    return explanations


def _check_cam_indices(
    settings: Settings, subjects: Sequence[Subject], domains: Sequence[str]
) -> None:
    """Refuse ``gradcam.indices`` outside a domain's test set, before anything is measured."""
    if settings.cam_indices is None:
        return
    for subject in subjects:
        for domain in domains:
            size = len(subject.data.pools[domain].test)
            bad = [i for i in settings.cam_indices if i >= size]
            if bad:
                raise ExplainError(
                    f"gradcam.indices: test patch index {bad[0]} of {domain}: its test set "
                    f"holds {size} patches (0 to {size - 1})"
                )


def _measure(
    subject: Subject, domains: Sequence[str], settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Band importance and SE gates of one model on each domain's drawn test patches."""
    bands_tables, gate_tables = [], []
    for domain in domains:
        patches = subject.data.pools[domain].test
        indices = balanced_indices(patches, settings.patches, settings.seed)
        samples = read_test_patches(subject.data, domain, indices)
        log.info("%s on %s: %d test patches", subject.label, domain, len(indices))
        gates = excitation_gates(subject.network, samples.images, settings.batch_size)
        if gates:
            gate_tables.append(mean_gates(gates, samples.positive, domain))
        base_f1, drops = ablation_drops(
            subject.predict,
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
    device = subject.device
    attributions, errors = attribute_bands(
        subject.model.task,  # its forward: landslide logits [N, H, W]
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
        samples = read_test_patches(subject.data, domain, indices)
        if shown is not None and samples.windows != shown.windows:
            raise ExplainError(
                f"model: runs {first.run.info.run_name} and {subject.run.info.run_name} were "
                f"tested on other patches of {domain} (other data settings); explain them "
                "one at a time"
            )
        shown = shown or samples
        try:
            probs = subject.predict(samples.images)
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
