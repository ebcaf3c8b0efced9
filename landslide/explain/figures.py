"""The explanation's figures: the Grad-CAM panel, the SE gates and the band importance."""

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from landslide.explain.excitation import BACKGROUND, LANDSLIDE  # noqa: E402
from landslide.figures import display_bands, stretch  # noqa: E402
from landslide.layout import IGNORED  # noqa: E402


def gradcam_panel(
    images: np.ndarray,
    masks: np.ndarray,
    heatmaps: Mapping[str, np.ndarray],
    bands: Sequence[str],
    title: str,
) -> Figure:
    """One row per patch: its image, the ground truth and one heatmap per model (Fig. 13).

    Args:
        images: normalised bands ``[N, C, H, W]`` in ``bands`` order.
        masks: reference ``[N, H, W]`` (255 ignored, shown grey).
        heatmaps: per model label, Grad-CAM heatmaps ``[N, H, W]`` in [0, 1].
        bands: the channels of ``images``.
        title: the figure's title.
    """
    channels, image_label = display_bands(list(bands))
    n, columns = len(images), 2 + len(heatmaps)
    fig, axes = plt.subplots(n, columns, figsize=(2.3 * columns, 2.3 * n), squeeze=False)
    for i in range(n):
        rgb = stretch(np.moveaxis(images[i, channels], 0, -1))
        truth = np.where(masks[i] == IGNORED, 0.5, masks[i]).astype(float)
        axes[i, 0].imshow(rgb, interpolation="nearest")
        axes[i, 1].imshow(truth, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        for ax, heatmap in zip(axes[i, 2:], heatmaps.values(), strict=True):
            ax.imshow(rgb, interpolation="nearest")
            ax.imshow(heatmap[i], cmap="jet", vmin=0, vmax=1, alpha=0.5, interpolation="bilinear")
    labels = [image_label, "ground truth", *heatmaps]
    for ax, label in zip(axes[0], labels, strict=True):
        ax.set_title(label, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def excitation_figure(gates: pd.DataFrame, title: str) -> Figure:
    """Per SE module (columns) and domain (rows): mean gate per channel, by patch kind.

    Args:
        gates: :func:`~landslide.explain.excitation.mean_gates` tables, concatenated.
        title: the figure's title.
    """
    domains, modules = _in_order(gates["domain"]), _in_order(gates["module"])
    fig, axes = plt.subplots(
        len(domains),
        len(modules),
        figsize=(4.2 * len(modules), 2.4 * len(domains)),
        squeeze=False,
        sharey=True,
    )
    for row, domain in enumerate(domains):
        for col, module in enumerate(modules):
            ax = axes[row, col]
            part = gates[(gates["domain"] == domain) & (gates["module"] == module)]
            for kind, colour in ((LANDSLIDE, "tab:red"), (BACKGROUND, "tab:blue")):
                ax.plot(part["channel"], part[kind], color=colour, lw=0.9, label=kind)
            ax.set_ylim(0, 1)
            ax.set_title(f"{domain}: {module}", fontsize=8)
            if col == 0:
                ax.set_ylabel("mean gate")
            if row == len(domains) - 1:
                ax.set_xlabel("channel")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def band_importance_figure(table: pd.DataFrame, title: str) -> Figure:
    """Bars per band and domain: the F1 drop of band ablation and the IG share.

    Args:
        table: :func:`~landslide.explain.band_importance.importance_table` rows, concatenated.
        title: the figure's title.
    """
    domains, bands = _in_order(table["domain"]), _in_order(table["band"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), squeeze=False)
    width = 0.8 / len(domains)
    x = np.arange(len(bands))
    for ax, column, label in (
        (axes[0, 0], "f1_drop", "F1 drop with the band at its mean"),
        (axes[0, 1], "ig_share", "share of |integrated gradients|"),
    ):
        for k, domain in enumerate(domains):
            part = table[table["domain"] == domain].set_index("band").reindex(bands)
            ax.bar(x + (k - (len(domains) - 1) / 2) * width, part[column], width, label=domain)
        ax.set_xticks(x, bands, rotation=45, ha="right", fontsize=8)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _in_order(values: pd.Series) -> list[str]:
    """The distinct values of a column, in their first appearance's order."""
    return list(dict.fromkeys(values))
