"""Grad-CAM heatmaps of a segmentation network's last decoder features (paper Fig. 13).

The maintained ``grad-cam`` package (pytorch-grad-cam) computes them: the feature maps of
the network's :meth:`~landslide.models.base.AnySizeSegmenter.cam_layers`, weighted by the
spatial mean of the gradient of a landslide score, summed over channels, rectified, scaled
up to the patch and to [0, 1] per patch (so a heatmap says where, not how strongly). The
score is the landslide logit summed over the patch's *region*: its reference landslide
pixels; where it has none, the pixels the model maps as landslide; where it maps none
either, every labelled pixel.
"""

import numpy as np
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget
from torch import Tensor

from landslide.layout import IGNORED
from landslide.models.base import AnySizeSegmenter, pad_to_multiple


def cam_regions(masks: Tensor, probabilities: Tensor, threshold: float) -> Tensor:
    """Per patch, the pixels whose landslide score Grad-CAM explains ``[N, H, W]`` (bool).

    Args:
        masks: reference ``[N, H, W]`` (1 landslide, 255 ignored).
        probabilities: the model's landslide probability ``[N, H, W]``.
        threshold: probability above which a pixel is mapped as landslide.
    """
    labelled = masks != IGNORED
    regions = masks == 1
    mapped = (probabilities >= threshold) & labelled
    for i in range(len(masks)):
        if not regions[i].any():
            regions[i] = mapped[i] if mapped[i].any() else labelled[i]
    return regions


def landslide_cams(
    network: AnySizeSegmenter, images: Tensor, regions: Tensor, batch_size: int = 16
) -> np.ndarray:
    """Grad-CAM heatmaps ``[N, H, W]`` in [0, 1], one per patch, at the patch's size.

    Args:
        network: a network that names its :meth:`cam_layers`.
        images: normalised bands ``[N, C, H, W]``.
        regions: the pixels whose landslide logits are summed into the score
            ``[N, H, W]`` (bool), e.g. from :func:`cam_regions`.
        batch_size: patches per forward and backward pass.

    Raises:
        NotImplementedError: the network does not name its last decoder features.
    """
    layers = network.cam_layers()
    height, width = images.shape[-2:]
    # Padded here as the network pads (bottom and right), so that the features grid, scaled
    # by grad-cam to the padded size, lines up with the patch; then cropped back.
    padded = pad_to_multiple(images, network.total_stride)
    regions = F.pad(regions, (0, padded.shape[-1] - width, 0, padded.shape[-2] - height))
    heatmaps = []
    with GradCAM(model=network, target_layers=layers) as cam:
        for start in range(0, len(images), batch_size):
            targets = [
                SemanticSegmentationTarget(0, region.numpy().astype(np.float32))
                for region in regions[start : start + batch_size].cpu()
            ]
            batch = padded[start : start + batch_size]
            heatmaps.append(cam(input_tensor=batch, targets=targets)[:, :height, :width])
    return np.concatenate(heatmaps).astype(np.float32)
