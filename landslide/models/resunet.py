"""ResU-Net: a U-Net built from pre-activation residual units.

Zhang, Liu & Wang, "Road extraction by deep residual U-Net", IEEE GRSL 15(5), 2018.

Layout (default widths, 88 x 88 input):

=========  =====================================  ==========
stage      operation                              output
=========  =====================================  ==========
stem       conv3x3-BN-ReLU-conv3x3 + shortcut     64 @ 88
encoder 1  residual unit, stride 2                128 @ 44
encoder 2  residual unit, stride 2                256 @ 22
bridge     residual unit, stride 2                512 @ 11
decoder 1  up x2, concat encoder 2, res. unit     256 @ 22
decoder 2  up x2, concat encoder 1, res. unit     128 @ 44
decoder 3  up x2, concat stem, res. unit          64 @ 88
head       conv1x1                                num_classes @ 88
=========  =====================================  ==========

Up-sampling is bilinear (``align_corners=False``): parameter-free like the original's
nearest-neighbour up-sampling, without its blocky 2 x 2 artefacts in the logits.

Parameter count, 10 input bands and 1 output class: ``ResUNet()``: 8,224,065.
"""

from collections.abc import Sequence
from typing import override

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from landslide.models.base import AnySizeSegmenter
from landslide.models.blocks import ResidualUnit, SqueezeExcitation

NUM_DOWNSAMPLINGS = 3
"""Stride-2 steps between the input and the bridge; inputs are padded to a multiple of 2**3."""


class ResUNet(AnySizeSegmenter):
    """ResU-Net (Zhang, Liu & Wang 2018) with optional SE attention on the skip connections.

    The network returns LOGITS: no sigmoid or softmax is applied; the loss and the metrics
    apply it. Inputs of any size work: the forward pass pads height and width up to a
    multiple of 8 (replicating the border) and crops the output back, so the output has
    the spatial size of the input.

    Args:
        in_channels: input bands (10 in the paper: Sentinel-2 bands plus terrain factors).
        num_classes: output channels (1 for binary landslide mapping).
        widths: channels of the stem, encoder unit 1, encoder unit 2 and the bridge.
        decoder_widths: channels of the three decoder units, from the coarsest (next to the
            bridge) to the finest. ``None`` means the reversed encoder widths
            ``(widths[2], widths[1], widths[0])``, as in Zhang et al. (2018).
        skip_attention: put a squeeze-and-excitation module on each of the three skip
            tensors before concatenation (ResU-SENet, Yang et al. 2024).
        se_reduction: reduction ratio ``r`` of the SE modules (ignored without attention).

    Raises:
        ValueError: if ``widths`` does not have 4 entries or ``decoder_widths`` 3.
    """

    total_stride = 2**NUM_DOWNSAMPLINGS

    def __init__(
        self,
        in_channels: int = 10,
        num_classes: int = 1,
        widths: Sequence[int] = (64, 128, 256, 512),
        decoder_widths: Sequence[int] | None = None,
        skip_attention: bool = False,
        se_reduction: int = 16,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != NUM_DOWNSAMPLINGS + 1:
            raise ValueError(f"widths needs {NUM_DOWNSAMPLINGS + 1} entries, got {widths}")
        if decoder_widths is None:
            decoder_widths = widths[-2::-1]
        decoder_widths = tuple(int(w) for w in decoder_widths)
        if len(decoder_widths) != NUM_DOWNSAMPLINGS:
            raise ValueError(
                f"decoder_widths needs {NUM_DOWNSAMPLINGS} entries, got {decoder_widths}"
            )
        self.widths = widths
        self.decoder_widths = decoder_widths

        self.stem = ResidualUnit(in_channels, widths[0], preactivate=False)
        self.encoder = nn.ModuleList(
            ResidualUnit(widths[i], widths[i + 1], stride=2) for i in range(NUM_DOWNSAMPLINGS)
        )

        # Skip tensors, finest first: stem, encoder unit 1, encoder unit 2.
        skip_widths = widths[:NUM_DOWNSAMPLINGS]
        self.skip_attention = nn.ModuleList(
            SqueezeExcitation(w, se_reduction) if skip_attention else nn.Identity()
            for w in skip_widths
        )

        decoder: list[nn.Module] = []
        below = widths[-1]
        for skip_width, width in zip(reversed(skip_widths), decoder_widths, strict=True):
            decoder.append(ResidualUnit(below + skip_width, width))
            below = width
        self.decoder = nn.ModuleList(decoder)

        self.head = nn.Conv2d(decoder_widths[-1], num_classes, 1)

    @override
    def cam_layers(self) -> list[nn.Module]:
        """The last decoder unit, whose features the 1x1 head classifies."""
        return [self.decoder[-1]]

    @override
    def excitation_modules(self) -> dict[str, nn.Module]:
        """The SE modules on the skips, finest first: ``stem``, ``encoder1``, ``encoder2``.

        The paper reads them as weighing edge and colour, texture and semantic features.
        """
        names = ("stem", *(f"encoder{i}" for i in range(1, NUM_DOWNSAMPLINGS)))
        return {
            name: module
            for name, module in zip(names, self.skip_attention, strict=True)
            if isinstance(module, SqueezeExcitation)
        }

    @override
    def segment(self, x: Tensor) -> Tensor:
        skips = [self.stem(x)]
        for unit in self.encoder:
            skips.append(unit(skips[-1]))
        features = skips.pop()  # the bridge output
        skips = [attend(skip) for attend, skip in zip(self.skip_attention, skips, strict=True)]

        for unit, skip in zip(self.decoder, reversed(skips), strict=True):
            features = F.interpolate(
                features, size=skip.shape[-2:], mode="bilinear", align_corners=False
            )
            features = unit(torch.cat([features, skip], dim=1))

        return self.head(features)
