"""The transform that applies a domain's per-band statistics to its samples.

The paper normalises every scene with per-band min-max scaling. The statistics
(:mod:`landslide.band_stats`) are computed once per domain, saved beside its stack and applied
identically at training and mapping time.
"""

import math

import torch
from torch import Tensor

from landslide.band_stats import BandStats


class MinMaxNormalize:
    """Scale each band of ``sample["image"]`` to [0, 1] with a domain's min and max.

    A sample transform for torchgeo datasets. Bands with a constant value map to 0. A pixel
    missing in any band (NaN: no imagery there, ignored in the mask) reads 0 in every band,
    as :mod:`landslide.mapping.predict` feeds such pixels, so a window holding some stays
    finite through the network; the loss and metrics skip those pixels.
    """

    def __init__(self, stats: BandStats) -> None:
        self.stats = stats
        lo = torch.tensor(stats.minimum, dtype=torch.float32)
        span = torch.tensor(stats.maximum, dtype=torch.float32) - lo
        span[span <= 0] = math.inf
        self.lo = lo[:, None, None]
        self.span = span[:, None, None]

    def __call__(self, sample: dict[str, Tensor]) -> dict[str, Tensor]:
        """Normalise ``sample["image"]`` in place and return ``sample``."""
        image = (sample["image"] - self.lo) / self.span
        missing = ~torch.isfinite(image).all(dim=-3, keepdim=True)
        sample["image"] = image.masked_fill(missing, 0.0)
        return sample
