"""Per-band statistics of a stack: computed once per domain, saved beside its stack.

The paper normalises every scene with per-band min-max scaling; the statistics are shared by
everything that writes a domain (the simulated world, ``prepare.py``, mapping) and everything
that reads one (:mod:`landslide.data.normalization`), so they live below both.
"""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio

from landslide.errors import DataError
from landslide.files import write_atomic


@dataclass(frozen=True)
class BandStats:
    """Statistics of each band of a stack (NaN and nodata pixels excluded).

    Attributes:
        bands: band names, in stack order.
        minimum: per-band minimum.
        maximum: per-band maximum.
        mean: per-band mean.
        std: per-band standard deviation.
    """

    bands: tuple[str, ...]
    minimum: tuple[float, ...]
    maximum: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def select(self, bands: Sequence[str]) -> "BandStats":
        """The statistics of ``bands`` only, in the given order.

        Raises:
            ValueError: if a band has no statistics.
        """
        absent = [b for b in bands if b not in self.bands]
        if absent:
            raise ValueError(f"no statistics for bands {absent} (have {self.bands})")
        index = [self.bands.index(b) for b in bands]
        return BandStats(
            bands=tuple(bands),
            **{
                f: tuple(getattr(self, f)[i] for i in index)
                for f in ("minimum", "maximum", "mean", "std")
            },
        )

    def save(self, path: Path) -> None:
        """Write the statistics as JSON, atomically (temporary name, then rename)."""
        write_atomic(Path(path), json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "BandStats":
        """Read statistics written by :meth:`save`.

        Raises:
            DataError: if the file is not a valid statistics file (damaged or truncated).
        """
        try:
            raw = json.loads(Path(path).read_text())
            return cls(**{k: tuple(v) for k, v in raw.items()})
        except (json.JSONDecodeError, TypeError, AttributeError) as err:
            raise DataError(
                f"{path}: not a band statistics file ({err}); delete it and prepare the "
                "domain again"
            ) from err


def compute_band_stats(stack: Path, bands: tuple[str, ...]) -> BandStats:
    """Compute per-band statistics of a GeoTIFF stack, reading it block by block.

    Args:
        stack: the multi-band GeoTIFF.
        bands: names of its bands, in order.

    Returns:
        The statistics, with memory bounded by one block window at a time.
    """
    with rasterio.open(stack) as src:
        if src.count != len(bands):
            raise ValueError(f"{stack}: has {src.count} bands, expected {len(bands)} ({bands})")
        n = np.zeros(src.count)
        total = np.zeros(src.count)
        total_sq = np.zeros(src.count)
        lo = np.full(src.count, np.inf)
        hi = np.full(src.count, -np.inf)
        nodata = src.nodata
        for _, window in src.block_windows(1):
            block = src.read(window=window).astype(np.float64)
            valid = np.isfinite(block)
            if nodata is not None:
                valid &= block != nodata
            for b in range(src.count):
                values = block[b][valid[b]]
                if values.size == 0:
                    continue
                n[b] += values.size
                total[b] += values.sum()
                total_sq[b] += np.square(values).sum()
                lo[b] = min(lo[b], values.min())
                hi[b] = max(hi[b], values.max())
    if (n == 0).any():
        empty = [bands[b] for b in np.flatnonzero(n == 0)]
        raise ValueError(f"{stack}: bands {empty} hold no valid pixel; check the inputs")
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    return BandStats(
        bands=tuple(bands),
        minimum=tuple(float(v) for v in lo),
        maximum=tuple(float(v) for v in hi),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
    )
