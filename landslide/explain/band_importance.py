"""How much each input band contributes to a model's landslide map.

The paper's first stated limitation is that it "did not obtain specific weight values" for
the bands; two measures answer it, per domain:

- **Band ablation**: the drop in pixel F1 (the test metric, ignored pixels skipped) when one
  band is replaced everywhere by its mean over the patches, the other bands unchanged. A
  band the model does not read drops nothing; a band it relies on drops the F1.
- **Integrated gradients** (Sundararajan et al. 2017, from the maintained ``captum``): the
  mean landslide logit over a patch's reference landslide pixels is attributed to every input
  value along the straight path from a baseline (each band at its mean, as in the ablation)
  to the patch; summed over a band's pixels, the attributions of the ten bands add up to the
  score's change from the baseline. Reported as each band's share of the absolute
  attribution, averaged over landslide patches, and its signed mean (positive: the band's
  values push towards landslide).
"""

from collections.abc import Callable, Sequence

import pandas as pd
import torch
from captum.attr import IntegratedGradients
from torch import Tensor
from torchmetrics.classification import BinaryF1Score

from landslide.layout import IGNORED

#: Landslide probabilities ``[N, H, W]`` of normalised bands ``[N, C, H, W]``.
Predictor = Callable[[Tensor], Tensor]


def band_means(images: Tensor) -> Tensor:
    """Each band's mean over the patches and their pixels ``[C]`` (NaN values skipped)."""
    return images.transpose(0, 1).flatten(1).nanmean(1)


def pixel_f1(probabilities: Tensor, masks: Tensor, threshold: float) -> float:
    """The test metric's F1 of the landslide class over all pixels, ignored ones skipped."""
    metric = BinaryF1Score(threshold=threshold, ignore_index=IGNORED)
    return float(metric(probabilities, masks.long()))


@torch.no_grad()
def ablation_drops(
    predict: Predictor, images: Tensor, masks: Tensor, threshold: float, batch_size: int = 16
) -> tuple[float, Tensor]:
    """The F1 of ``predict`` and its drop when each band is replaced by its mean.

    Args:
        predict: the model, from normalised bands to landslide probabilities.
        images: normalised bands ``[N, C, H, W]``.
        masks: reference ``[N, H, W]`` (1 landslide, 0 not, 255 ignored).
        threshold: probability above which a pixel is mapped as landslide.
        batch_size: patches per forward pass.

    Returns:
        The F1 with every band, and per band ``[C]`` that F1 minus the F1 with the band
        at its mean (positive: the model relies on the band).
    """
    means = band_means(images)

    def f1_with(band: int | None) -> float:
        outputs = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].clone()
            if band is not None:
                batch[:, band] = means[band]
            outputs.append(predict(batch).cpu())
        return pixel_f1(torch.cat(outputs), masks, threshold)

    base = f1_with(None)
    return base, torch.tensor([base - f1_with(band) for band in range(images.shape[1])])


def region_score(logits: Callable[[Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """The score integrated gradients attributes: mean logit over each patch's region.

    Args:
        logits: landslide logits ``[N, H, W]`` of normalised bands ``[N, C, H, W]``.

    Returns:
        ``score(images, regions)`` ``[N]``, regions ``[N, H, W]`` of 0 and 1.
    """

    def score(images: Tensor, regions: Tensor) -> Tensor:
        weights = regions.to(images.dtype)
        return (logits(images) * weights).sum((1, 2)) / weights.sum((1, 2)).clamp(min=1)

    return score


def integrated_gradients(
    logits: Callable[[Tensor], Tensor],
    images: Tensor,
    regions: Tensor,
    baseline: Tensor,
    n_steps: int = 16,
    batch_size: int = 16,
) -> tuple[Tensor, Tensor]:
    """Each band's attribution of the mean landslide logit over each patch's region.

    Args:
        logits: landslide logits ``[N, H, W]`` of normalised bands ``[N, C, H, W]``.
        images: the patches ``[N, C, H, W]``.
        regions: per patch the pixels whose logits are averaged ``[N, H, W]`` (bool).
        baseline: each band's baseline value ``[C]`` (e.g. :func:`band_means`).
        n_steps: points of the path integral (Gauss-Legendre).
        batch_size: forward and backward passes at once (captum's internal batch).

    Returns:
        Attributions summed over each band's pixels ``[N, C]``, and each patch's
        convergence error ``[N]`` (their sum minus the score's change from the baseline).
    """
    method = IntegratedGradients(region_score(logits))
    reference = baseline.to(images.dtype).view(1, -1, 1, 1).expand_as(images[:1])
    attributions = []
    errors = []
    for i in range(len(images)):
        attribution, error = method.attribute(
            images[i : i + 1],
            baselines=reference,
            additional_forward_args=(regions[i : i + 1],),
            n_steps=n_steps,
            internal_batch_size=batch_size,
            return_convergence_delta=True,
        )
        attributions.append(attribution.detach().sum((2, 3)))
        errors.append(error.detach().reshape(-1))
    return torch.cat(attributions), torch.cat(errors)


def attribution_shares(attributions: Tensor) -> Tensor:
    """Each band's share of a patch's absolute attribution, averaged over patches ``[C]``."""
    magnitude = attributions.abs()
    return (magnitude / magnitude.sum(1, keepdim=True).clamp(min=1e-12)).mean(0)


def importance_table(
    domain: str,
    bands: Sequence[str],
    base_f1: float,
    f1_drops: Tensor,
    attributions: Tensor | None,
) -> pd.DataFrame:
    """One row per band: its F1 drop and, when measured, its integrated-gradients share.

    Columns ``domain``, ``band``, ``f1`` (with every band), ``f1_drop``, ``ig_share``,
    ``ig_mean`` (NaN when no landslide patch was attributed).
    """
    nan = torch.full((len(bands),), float("nan"))
    shares = attribution_shares(attributions) if attributions is not None else nan
    means = attributions.mean(0) if attributions is not None else nan
    return pd.DataFrame(
        {
            "domain": domain,
            "band": list(bands),
            "f1": base_f1,
            "f1_drop": f1_drops.tolist(),
            "ig_share": shares.tolist(),
            "ig_mean": means.tolist(),
        }
    )
