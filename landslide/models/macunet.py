"""MACU-Net: a U-Net with asymmetric convolutions and multi-scale skip connections.

Li, Duan, Zheng, Zhang & Atkinson, "MACU-Net for Semantic Segmentation of Fine-Resolution
Remotely Sensed Images", IEEE GRSL 19, 8007205, 2022 (arXiv 2007.13083); official code
lironui/MACU-Net, ``MACUNet.py``.

Every convolution is an asymmetric convolution block (ACB, after Ding et al.'s ACNet): a
3x3, a 1x3 and a 3x1 convolution of the same input, summed, then BN-ReLU. Encoder levels
(88 x 88 input, padded to 96; widths ``w = (16, 32, 64, 128, 256)``):

=======  ==================================  ===========
level    operation                           output
=======  ==================================  ===========
0        2 ACBs                              16 @ 96
1        max-pool 2, 2 ACBs                  32 @ 48
2        max-pool 2, 3 ACBs                  64 @ 24
3        max-pool 2, 3 ACBs                  128 @ 12
4        max-pool 2, 3 ACBs (bottleneck)     256 @ 6
=======  ==================================  ===========

Multi-scale skip connections: every encoder level ``i < 3`` also sends its output down a
chain of (max-pool 2, one ACB) steps to each deeper level up to 3, and the bottleneck and
decoder levels 3 to 1 send theirs up a chain of 2 x 2 stride-2 transposed convolutions to
each shallower level. Decoder level ``j`` (3 down to 0) concatenates the five tensors that
reach it, each ``w[j]`` channels: ``4 - j`` up-sampled from the bottleneck and the deeper
decoder levels, the encoder's output at level ``j`` and ``j`` chains from the shallower
encoder levels. It fuses them with channel attention (a 1x1 conv to ``2 w[j]``, then
CBAM-style gates: average- and max-pooled descriptors through two separate bias-free MLPs
with ratio 16, summed, sigmoid) and applies two ACBs to ``w[j]`` channels. A 1x1 conv gives
the class logits at level 0. Concatenation order is the official one (the direct
up-sampling, the longer up-chains deepest first, the encoder output, then the encoder
chains nearest first), so the layout matches the official code tensor for tensor.

Input sizes: the forward pass pads the input to a multiple of 16 (replicating the border),
so every pooling halves exactly, and crops the output back.

Parameter counts:

- ``MACUNet(in_channels=10, num_classes=1)``: 5,153,329 (the network of the Table X runs).
- ``MACUNet(in_channels=3, num_classes=6)``: 5,151,734, the same count, tensor for tensor,
  as the official ``MACUNet(3, 6)`` (six classes as in the paper's GID and WHDLD data):
  the "5.15 M" quoted for MACU-Net. The paper's own table was not available here to check.
- The difference: seven more input bands add 7 x 15 x 16 = 1,680 weights to the first ACB;
  one class instead of six removes 5 x 17 = 85 head parameters.

Differences from the official code: only the padding and cropping.
"""

from collections.abc import Sequence
from typing import cast, override

import torch
from torch import Tensor, nn

from landslide.models.base import AnySizeSegmenter
from landslide.models.blocks import squeeze_channels

ENCODER_DEPTHS = (2, 2, 3, 3, 3)
"""ACBs per encoder level, finest first; the last level is the bottleneck."""

NUM_LEVELS = len(ENCODER_DEPTHS)
BOTTLENECK = NUM_LEVELS - 1
"""Index of the deepest level; the decoder has levels ``BOTTLENECK - 1`` down to 0."""

TOTAL_STRIDE = 2**BOTTLENECK
"""Down-sampling from the input to the bottleneck; inputs are padded to a multiple of it."""


class AsymmetricConvBlock(nn.Module):
    """ACB: 3x3, 1x3 and 3x1 convolutions (with bias) of the same input, summed, BN-ReLU.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.square = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.horizontal = nn.Conv2d(in_channels, out_channels, (1, 3), padding=(0, 1))
        self.vertical = nn.Conv2d(in_channels, out_channels, (3, 1), padding=(1, 0))
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to features ``[N, in_channels, H, W]``; same ``H`` and ``W``."""
        return self.relu(self.bn(self.square(x) + self.horizontal(x) + self.vertical(x)))


class SkipChannelAttention(nn.Module):
    """Fusion of a multi-scale skip: 1x1 projection, then channel attention.

    The attention is CBAM's channel attention with one MLP per pooled descriptor:
    ``x * sigmoid(MLP_avg(avgpool(x)) + MLP_max(maxpool(x)))``, MLPs bias-free 1x1 convs.

    Args:
        in_channels: channels of the concatenated skip tensors.
        out_channels: channels after the projection (and of the output).
        reduction: ratio of ``out_channels`` to the hidden width of each MLP (at least
            one unit).
    """

    def __init__(self, in_channels: int, out_channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = squeeze_channels(out_channels, reduction, min_squeeze_channels=1)
        self.project = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.avg_mlp = self._mlp(out_channels, hidden)
        self.max_mlp = self._mlp(out_channels, hidden)

    @staticmethod
    def _mlp(channels: int, hidden: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Project ``[N, in_channels, H, W]`` to ``out_channels`` and reweight the channels."""
        x = self.project(x)
        avg = self.avg_mlp(x.mean(dim=(-2, -1), keepdim=True))
        peak = self.max_mlp(x.amax(dim=(-2, -1), keepdim=True))
        return x * torch.sigmoid(avg + peak)


def _down_step(in_channels: int, out_channels: int) -> nn.Sequential:
    """One level down: 2 x 2 max-pool, then an ACB."""
    return nn.Sequential(nn.MaxPool2d(2), AsymmetricConvBlock(in_channels, out_channels))


def _up_step(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """One level up: 2 x 2 transposed convolution with stride 2."""
    return nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)


def _chain(paths: nn.ModuleList, index: int) -> nn.ModuleList:
    """The chain of steps at ``index`` of a list of chains (``down_paths`` or ``up_paths``).

    ``nn.ModuleList`` indexes as a plain ``nn.Module``; these lists hold ``nn.ModuleList``s.
    """
    return cast(nn.ModuleList, paths[index])


class MACUNet(AnySizeSegmenter):
    """MACU-Net (Li et al., GRSL 2022): ACB U-Net with multi-scale skips and attention.

    Returns LOGITS (no sigmoid or softmax) at the input size, for any input size.

    Args:
        in_channels: input bands (10 in Yang et al.).
        num_classes: output channels (1 for binary landslide mapping).
        widths: channels of the five levels, finest first; the official (16, 32, 64, 128,
            256).

    Raises:
        ValueError: if ``widths`` does not have five entries.
    """

    total_stride = TOTAL_STRIDE

    def __init__(
        self,
        in_channels: int = 10,
        num_classes: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != NUM_LEVELS:
            raise ValueError(f"widths needs {NUM_LEVELS} entries, got {widths}")
        self.widths = widths

        encoder: list[nn.Module] = []
        for level, depth in enumerate(ENCODER_DEPTHS):
            width = widths[level]
            first = (
                AsymmetricConvBlock(in_channels, width)
                if level == 0
                else _down_step(widths[level - 1], width)
            )
            rest = (AsymmetricConvBlock(width, width) for _ in range(depth - 1))
            encoder.append(nn.Sequential(first, *rest))
        self.encoder = nn.ModuleList(encoder)

        # down_paths[i][k]: from encoder level i, the step into level i + 1 + k (up to 3).
        self.down_paths = nn.ModuleList(
            nn.ModuleList(_down_step(widths[k - 1], widths[k]) for k in range(i + 1, BOTTLENECK))
            for i in range(BOTTLENECK - 1)
        )
        # up_paths[s - 1][k]: from level s (bottleneck or decoder), the step into s - 1 - k.
        self.up_paths = nn.ModuleList(
            nn.ModuleList(_up_step(widths[k + 1], widths[k]) for k in reversed(range(s)))
            for s in range(1, NUM_LEVELS)
        )
        self.fusion = nn.ModuleList(
            SkipChannelAttention(NUM_LEVELS * widths[j], 2 * widths[j]) for j in range(BOTTLENECK)
        )
        self.decoder = nn.ModuleList(
            nn.Sequential(
                AsymmetricConvBlock(2 * widths[j], widths[j]),
                AsymmetricConvBlock(widths[j], widths[j]),
            )
            for j in range(BOTTLENECK)
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    @override
    def cam_layers(self) -> list[nn.Module]:
        """The finest decoder level, whose features the 1x1 head classifies."""
        return [self.decoder[0]]

    @override
    def segment(self, x: Tensor) -> Tensor:
        encoded = []
        for encode in self.encoder:
            x = encode(x)
            encoded.append(x)

        # Skips from the encoder per level: its own output, then the chains nearest first.
        skips = [[features] for features in encoded[:BOTTLENECK]]
        for source in reversed(range(BOTTLENECK - 1)):
            features = encoded[source]
            for target, step in enumerate(_chain(self.down_paths, source), start=source + 1):
                features = step(features)
                skips[target].append(features)

        # Up-sampled inputs per level, appended as their sources are computed (deepest
        # first), so the direct up-sampling from the level below is the last one appended.
        ups: list[list[Tensor]] = [[] for _ in range(BOTTLENECK)]
        self._send_up(BOTTLENECK, encoded[BOTTLENECK], ups)
        for level in reversed(range(BOTTLENECK)):
            *longer, direct = ups[level]
            inputs = torch.cat([direct, *longer, *skips[level]], dim=1)
            x = self.decoder[level](self.fusion[level](inputs))
            if level > 0:
                self._send_up(level, x, ups)

        return self.head(x)

    def _send_up(self, source: int, features: Tensor, ups: list[list[Tensor]]) -> None:
        """Up-sample ``features`` of level ``source`` to every shallower level.

        Args:
            source: level of ``features`` (the bottleneck or a decoder level).
            features: the level's output.
            ups: per level, the up-sampled tensors received so far; appended to.
        """
        chain = _chain(self.up_paths, source - 1)
        for target, step in zip(reversed(range(source)), chain, strict=True):
            features = step(features)
            ups[target].append(features)
