"""Balanced patch locations and the paper's sample pools.

The paper's "Data Sample Production" tool cuts patches around the landslide inventory and
keeps positive (landslide) and negative (no landslide) patches in balance; "Dataset Split"
divides a domain's 1000 samples 7:3 into training and testing. Here both happen on the mask
raster, seeded, so every run of every model sees the same pools.

Patches may overlap, as in the paper. Overlapping training and test patches share pixels,
so test scores of a random split are optimistic; keep that in mind when comparing domains.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Patch:
    """A square window of a domain's grid, in pixels.

    Attributes:
        row: top row of the window.
        col: left column of the window.
        positive: whether the window holds landslide pixels.
    """

    row: int
    col: int
    positive: bool


@dataclass(frozen=True)
class SamplePool:
    """A domain's fixed pool of samples, split into training and testing parts.

    Attributes:
        train: training part, ordered so that every prefix is balanced (positive and
            negative patches alternate).
        test: testing part, balanced.
    """

    train: tuple[Patch, ...]
    test: tuple[Patch, ...]


def window_landslide_fraction(mask: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Fraction of landslide pixels in every ``size`` window on a ``stride`` grid.

    Uses a summed-area table, so the cost does not depend on the window size.

    Returns:
        Array [n_rows, n_cols]; entry (i, j) is the window with top-left
        (i * stride, j * stride).
    """
    height, width = mask.shape
    if height < size or width < size:
        raise ValueError(f"scene of {height}x{width} px is smaller than one {size} px patch")
    table = np.zeros((height + 1, width + 1), dtype=np.int64)
    table[1:, 1:] = np.cumsum(np.cumsum(mask > 0, axis=0), axis=1)
    rows = np.arange(0, height - size + 1, stride)
    cols = np.arange(0, width - size + 1, stride)
    r0, c0 = np.meshgrid(rows, cols, indexing="ij")
    counts = (
        table[r0 + size, c0 + size] - table[r0, c0 + size] - table[r0 + size, c0] + table[r0, c0]
    )
    return counts / float(size * size)


def balanced_patches(
    mask: np.ndarray,
    count: int,
    size: int,
    rng: np.random.Generator,
    *,
    min_landslide_fraction: float = 0.005,
    stride: int = 8,
    name: str = "scene",
) -> tuple[list[Patch], list[Patch]]:
    """Draw ``count // 2`` positive and ``count - count // 2`` negative patches.

    A positive patch has at least ``min_landslide_fraction`` landslide pixels; a negative
    patch has none. Candidates lie on a ``stride`` pixel grid and are drawn without
    replacement.

    Args:
        mask: landslide mask, 1 landslide, 0 not.
        count: number of patches to draw.
        size: patch side in pixels.
        rng: random generator (seeded by the caller).
        min_landslide_fraction: least landslide share of a positive patch.
        stride: spacing of candidate windows in pixels.
        name: the scene's name, for error messages.

    Returns:
        The positive and the negative patches.

    Raises:
        ValueError: if the scene has too few candidate windows of either kind.
    """
    fraction = window_landslide_fraction(mask, size, stride)
    n_pos, n_neg = count // 2, count - count // 2
    drawn: dict[bool, list[Patch]] = {}
    for positive, wanted, candidates in (
        (True, n_pos, np.argwhere(fraction >= min_landslide_fraction)),
        (False, n_neg, np.argwhere(fraction == 0)),
    ):
        if len(candidates) < wanted:
            kind = "landslide" if positive else "landslide-free"
            raise ValueError(
                f"{name}: only {len(candidates)} {kind} {size} px windows, {wanted} needed; "
                "use a larger scene or lower data.pool_size"
            )
        chosen = candidates[rng.choice(len(candidates), size=wanted, replace=False)]
        drawn[positive] = [Patch(int(i) * stride, int(j) * stride, positive) for i, j in chosen]
    return drawn[True], drawn[False]


def interleave(positives: Sequence[Patch], negatives: Sequence[Patch]) -> list[Patch]:
    """Alternate positive and negative patches so every prefix stays balanced."""
    out: list[Patch] = []
    for i in range(max(len(positives), len(negatives))):
        out.extend(p[i] for p in (positives, negatives) if i < len(p))
    return out


def _test_counts(pool_size: int, test_fraction: float) -> tuple[int, int]:
    """Positive and negative test patches of a stratified split."""
    return round(pool_size // 2 * test_fraction), round(
        (pool_size - pool_size // 2) * test_fraction
    )


def train_part_size(pool_size: int, test_fraction: float) -> int:
    """How many of a pool's patches :func:`sample_pool` puts in the training part."""
    return pool_size - sum(_test_counts(pool_size, test_fraction))


def sample_pool(
    mask: np.ndarray,
    size: int,
    pool_size: int,
    test_fraction: float,
    seed: int,
    *,
    min_landslide_fraction: float = 0.005,
    name: str = "scene",
) -> SamplePool:
    """The paper's per-domain pool: balanced patches split into train and test parts.

    The split is stratified: both parts keep the positive/negative balance.
    """
    rng = np.random.default_rng(seed)
    positives, negatives = balanced_patches(
        mask, pool_size, size, rng, min_landslide_fraction=min_landslide_fraction, name=name
    )
    n_test_pos, n_test_neg = _test_counts(pool_size, test_fraction)
    return SamplePool(
        train=tuple(interleave(positives[n_test_pos:], negatives[n_test_neg:])),
        test=tuple(interleave(positives[:n_test_pos], negatives[:n_test_neg])),
    )
