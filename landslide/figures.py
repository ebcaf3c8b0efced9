"""Figures of test patches: post-event RGB, ground truth and prediction."""

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from landslide.bands import BANDS, POST_RGB, PRE_RGB  # noqa: E402


def stretch(rgb: np.ndarray, low: float = 2, high: float = 98) -> np.ndarray:
    """Per-channel percentile contrast stretch of an [H, W, 3] array to [0, 1], for display."""
    lo, hi = np.percentile(rgb, [low, high], axis=(0, 1))
    return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-6), 0, 1)


def display_bands(bands: Sequence[str]) -> tuple[list[int], str]:
    """Channels to show for a band set: post-event RGB, else pre-event RGB, else band 1.

    Returns:
        The channel indexes (three, or one shown in grey) and a label for them.
    """
    for rgb, label in ((POST_RGB, "post-event RGB"), (PRE_RGB, "pre-event RGB")):
        if set(rgb) <= set(bands):
            return [bands.index(b) for b in rgb], label
    return [0, 0, 0], bands[0]


def prediction_figure(
    batch: Mapping[str, Tensor],
    title: str,
    threshold: float = 0.5,
    bands: Sequence[str] = BANDS,
) -> Figure:
    """One row per patch: an image, ground truth, predicted probability and mask.

    Args:
        batch: ``image`` [N, C, H, W] (normalised bands), ``mask`` [N, H, W],
            ``prob`` [N, H, W] landslide probability.
        title: figure title (e.g. the test domain).
        threshold: probability above which a pixel is predicted a landslide.
        bands: the names of the image channels (see :func:`display_bands`).
    """
    channels, image_label = display_bands(list(bands))
    n = len(batch["image"])
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for i in range(n):
        rgb = batch["image"][i, channels].permute(1, 2, 0).numpy()
        prob = batch["prob"][i].numpy()
        panels = (
            (stretch(rgb), None, image_label),
            (batch["mask"][i].numpy(), "gray", "ground truth"),
            (prob >= threshold, "gray", f"prediction (p >= {threshold})"),
        )
        for ax, (data, cmap, label) in zip(axes[i], panels, strict=True):
            ax.imshow(data, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
