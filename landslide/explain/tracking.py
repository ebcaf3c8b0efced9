"""Where an explanation goes: files in a folder of its own, then the model's MLflow run.

The run gets the folder as artifacts under ``explain/``, the band importance as metrics
``explain/<domain>/f1``, ``explain/<domain>/f1_drop/<band>`` and
``explain/<domain>/ig_share/<band>``, the SE gates as ``se/<domain>/<module>/<kind>`` with
one step per channel, and the tag ``landslide.explained``.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Metric, Run
from omegaconf import OmegaConf

from landslide.explain.excitation import BACKGROUND, LANDSLIDE
from landslide.explain.figures import band_importance_figure, excitation_figure
from landslide.explain.settings import Settings
from landslide.explain.subjects import Subject
from landslide.files import safe_name, write_atomic
from landslide.mlflow_store import quiet_artifact_transfers

#: MLflow accepts at most this many metrics in one call.
METRICS_PER_CALL = 1000

#: The artifact folder of a run's explanation.
ARTIFACTS = "explain"


def write_explanation(
    folder: Path,
    subject: Subject,
    bands: pd.DataFrame,
    gates: pd.DataFrame,
    panels: dict[str, Figure],
    settings: Settings,
    refs: Sequence[str],
) -> None:
    """Write the explanation's files into ``folder``.

    Per domain, a folder ``<domain>/`` with its Grad-CAM panel (``gradcam.png``), band
    importance (``band_importance.csv``), SE gates (``se_gates.csv``, ResU-SENet) and how
    they were made (``settings.yaml``); beside them, this explanation's domains together
    (``band_importance.md``, ``band_importance.png``, ``se_gates.png``, ``settings.yaml``).
    In a run's artifacts a later explanation of a domain replaces that domain's folder and
    leaves the others' as they were.

    Args:
        folder: an empty folder.
        subject: the model explained.
        bands: its band importance (:func:`~landslide.explain.band_importance.importance_table`).
        gates: its SE gates (:func:`~landslide.explain.excitation.mean_gates`), or empty.
        panels: the Grad-CAM panel of each domain.
        settings: the knobs, recorded in ``settings.yaml``.
        refs: the models of the panels, as given.
    """
    record = OmegaConf.to_yaml(
        OmegaConf.create(
            {
                "run_id": subject.run.info.run_id,
                "run_name": subject.run.info.run_name,
                "checkpoint": str(subject.model.checkpoint.name),
                "domains": list(panels),
                "models_in_panel": list(refs),
                "explained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "settings": settings.__dict__ | {"cam_indices": _listed(settings.cam_indices)},
            }
        )
    )
    for domain, figure in panels.items():
        part = folder / safe_name(domain)
        part.mkdir()
        figure.savefig(part / "gradcam.png", dpi=120)
        bands[bands["domain"] == domain].to_csv(part / "band_importance.csv", index=False)
        if not gates.empty:
            gates[gates["domain"] == domain].to_csv(part / "se_gates.csv", index=False)
        write_atomic(part / "settings.yaml", record)
    write_atomic(folder / "settings.yaml", record)
    write_atomic(folder / "band_importance.md", band_markdown(bands))
    figures = {
        "band_importance.png": band_importance_figure(bands, f"Band importance of {subject.label}")
    }
    if not gates.empty:
        figures["se_gates.png"] = excitation_figure(gates, f"SE gates of {subject.label}")
    for name, figure in figures.items():
        figure.savefig(folder / name, dpi=120)
        plt.close(figure)


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
    """The explanation as MLflow metrics.

    Band importance per domain and band; SE gates with one step per channel, and per module
    their contrast (the mean absolute difference between landslide and other patches).
    """
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
        for kind in (LANDSLIDE, BACKGROUND):
            value = float(getattr(row, kind))
            if not np.isnan(value):
                key = f"se/{row.domain}/{row.module}/{kind}"
                metrics.append(Metric(key, value, now, int(row.channel)))
    if not gates.empty:
        # How differently a module gates landslide and other patches: one number to compare
        # modules and domains by.
        contrast = gates.groupby(["domain", "module"], sort=False)["difference"]
        for (domain, module), value in contrast.apply(lambda d: d.abs().mean()).items():
            if not np.isnan(value):
                metrics.append(Metric(f"se/{domain}/{module}/contrast", float(value), now, 0))
    return metrics


def log_explanation(
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
