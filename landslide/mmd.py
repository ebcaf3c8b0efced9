"""Per-band maximum mean discrepancy (MMD) between two sets of samples.

The paper (Section V, Tables XI and XII) compares the band distributions of a model's
training data with a new scene by MMD and picks the model whose data is closest. Here each
band's distribution is the distribution of its normalised pixel values, subsampled to a
fixed, seeded number of pixels so full domains stay cheap.

Kernel: a sum of Gaussian kernels at ``scales`` times the median pairwise distance of the
pooled sample (the median heuristic, made robust to its occasional under- or
over-estimation by the multi-bandwidth sum). Estimator: the unbiased U-statistic of
Gretton et al. (2012, JMLR, Eq. 3), which can be slightly negative when the distributions
match; ``biased=True`` gives the V-statistic, which is exactly zero for identical samples.
Runs on whatever device the inputs are on (a GPU when there is one).

No maintained library computes per-band MMD with these choices on torch tensors
(torchmetrics has no MMD; geomloss does optimal transport), hence the few lines here.
"""

import functools
import operator
from collections.abc import Sequence

import torch
from torch import Tensor

DEFAULT_SCALES: tuple[float, ...] = (0.5, 1.0, 2.0)


def median_distance(x: Tensor, y: Tensor) -> Tensor:
    """Median Euclidean distance between distinct points of the pooled sample [n + m, d].

    For an even count of distances, the lower of the two middle ones.
    """
    z = torch.cat([x, y])
    dist = torch.cdist(z, z)
    off_diagonal = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    return dist[off_diagonal].median()


def mmd2(
    x: Tensor,
    y: Tensor,
    bandwidth: float | Tensor | None = None,
    scales: Sequence[float] = DEFAULT_SCALES,
    biased: bool = False,
) -> Tensor:
    """Squared MMD between samples ``x`` [n, d] and ``y`` [m, d].

    Args:
        x: first sample, one row per point.
        y: second sample.
        bandwidth: base Gaussian bandwidth; None uses the median heuristic.
        scales: multiples of the base bandwidth whose kernels are summed.
        biased: V-statistic (zero for identical samples) instead of the U-statistic.

    Returns:
        A scalar tensor.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"need two [n, d] samples of equal d, got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if len(x) < 2 or len(y) < 2:
        raise ValueError("each sample needs at least two points")
    x, y = x.double(), y.double()
    base = median_distance(x, y) if bandwidth is None else torch.as_tensor(bandwidth).double()
    base = torch.clamp(base, min=1e-12)

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        sq = torch.cdist(a, b).square()
        kernels = (torch.exp(-sq / (2 * (s * base) ** 2)) for s in scales)
        return functools.reduce(operator.add, kernels)  # a Tensor, where sum() starts at int 0

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    n, m = len(x), len(y)
    if biased:
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return within_x + within_y - 2 * kxy.mean()


def sample_pixels(images: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` random pixels (with replacement) of a batch [N, C, H, W] as rows [count, C]."""
    pixels = images.permute(0, 2, 3, 1).reshape(-1, images.shape[1])
    index = torch.randint(len(pixels), (count,), generator=generator)
    return pixels[index.to(pixels.device)]


def per_band_mmd(
    source: Tensor,
    target: Tensor,
    bands: Sequence[str],
    pixels: int = 2000,
    seed: int = 0,
    scales: Sequence[float] = DEFAULT_SCALES,
) -> dict[str, float]:
    """Squared MMD of each band's pixel distribution between two image sets.

    Args:
        source: images [N, C, H, W] (e.g. a model's training patches), normalised.
        target: images [M, C, H, W] (e.g. a new scene's patches), normalised alike.
        bands: names of the C bands.
        pixels: pixels drawn from each set (seeded), which bounds the cost at
            O(pixels^2) per band whatever the size of the sets.
        seed: seed of the pixel draw.
        scales: bandwidth multiples, see :func:`mmd2`.

    Returns:
        Unbiased squared MMD per band name.
    """
    if source.shape[1] != len(bands) or target.shape[1] != len(bands):
        raise ValueError(
            f"images have {source.shape[1]}/{target.shape[1]} bands, names {len(bands)}"
        )
    generator = torch.Generator().manual_seed(seed)
    x = sample_pixels(source, pixels, generator)
    y = sample_pixels(target, pixels, generator)
    return {band: float(mmd2(x[:, [b]], y[:, [b]], scales=scales)) for b, band in enumerate(bands)}
