"""Overlapping windows over a scene and the weights that blend them without seams.

A fully convolutional network sees less context near a window's edges, so its predictions
there are worse and two neighbouring windows disagree along their seam. Windows therefore
overlap, and each prediction is weighted by a mask that is 1 in the window's interior and
falls off as a squared cosine over the overlap, so the two weights at any pixel of an
overlap add up to one and the blend moves smoothly from one window to the next (the
cosine blending of TerraTorch's tiled inference, written here for a streamed, row-by-row
accumulation that no library offers).
"""

from dataclasses import dataclass

import numpy as np


def window_starts(size: int, window: int, overlap: int) -> list[int]:
    """First pixels of windows of length ``window`` covering ``size`` pixels.

    Windows step by ``window - overlap``; the last one is shifted back to end at the scene's
    edge, so every window lies inside the scene. A scene smaller than one window gets one
    window of its own size.

    Args:
        size: pixels along the axis.
        window: window length.
        overlap: pixels shared by two neighbouring windows, ``0 <= overlap < window``.
    """
    if window <= 0 or not 0 <= overlap < window:
        raise ValueError(f"window {window} and overlap {overlap}: need 0 <= overlap < window")
    if size <= window:
        return [0]
    stride = window - overlap
    starts = list(range(0, size - window, stride))
    return [*starts, size - window]


def taper(length: int, ramp: int) -> np.ndarray:
    """1-D blending weights: a squared-sine ramp up over ``ramp`` pixels, 1, then down.

    Weights stay strictly positive so that a pixel covered by one window only keeps its
    prediction after normalisation by the summed weights.
    """
    ramp = min(ramp, length // 2)
    weights = np.ones(length, np.float32)
    if ramp > 0:
        up = np.sin(0.5 * np.pi * (np.arange(ramp) + 0.5) / ramp) ** 2
        weights[:ramp] = up
        weights[length - ramp :] = up[::-1]
    return weights


@dataclass(frozen=True)
class WindowGrid:
    """The windows of a sliding-window pass over a ``height`` x ``width`` scene.

    Attributes:
        height: scene rows.
        width: scene columns.
        window: window side in pixels (clipped to the scene's sides).
        overlap: pixels shared by neighbouring windows.
    """

    height: int
    width: int
    window: int
    overlap: int

    @property
    def window_height(self) -> int:
        """Height of a window: the window size, or the scene's height if smaller."""
        return min(self.window, self.height)

    @property
    def window_width(self) -> int:
        """Width of a window: the window size, or the scene's width if smaller."""
        return min(self.window, self.width)

    @property
    def rows(self) -> list[int]:
        """First rows of the window rows, top to bottom."""
        return window_starts(self.height, self.window, self.overlap)

    @property
    def cols(self) -> list[int]:
        """First columns of the windows of each row, left to right."""
        return window_starts(self.width, self.window, self.overlap)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def weights(self) -> np.ndarray:
        """The 2-D blending mask [window_height, window_width] (outer product of tapers)."""
        return np.outer(
            taper(self.window_height, self.overlap), taper(self.window_width, self.overlap)
        )
