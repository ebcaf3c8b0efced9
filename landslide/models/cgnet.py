"""CGNet: the light-weight Context Guided Network, configuration M3N21.

Wu, Tang, Zhang, Cao & Zhang, "CGNet: A Light-weight Context Guided Network for Semantic
Segmentation", IEEE TIP 30, 1169-1179, 2021 (arXiv 1811.08201); official code
wutianyiRosun/CGNet, ``model/CGNet.py``, ``Context_Guided_Network(M=3, N=21)``, the
configuration of the paper's Cityscapes and CamVid results.

Why this CGNet: Yang et al. (2024) explain CGNet's low scores in Table X by its being "a
light-weight model with less than 2 M parameters". Their reference list gives CGNet as
[52], Zhang & Pang's "Cross-guidance network" (Sci. China Inf. Sci. 2020), but the name,
the light-weight description and the parameter figure fit Wu et al.'s network (0.5 M),
the CGNet in common use as a light-weight segmentation baseline. (Table X's bracketed
numbers, [47]-[49], point at other entries of the list; the text's [52]-[54] name the
three networks.)

Layout (88 x 88 input, ten bands; ``C`` is the number of input bands):

=========  =====================================================  ================
stage      operation                                              output
=========  =====================================================  ================
stage 1    conv3x3 s2, conv3x3, conv3x3 (each BN-PReLU)           32 @ 44
inject 1   input average-pooled (3x3, s2), concat, BN-PReLU       32 + C @ 44
stage 2    CG block down (d = 2, r = 8), M - 1 = 2 CG blocks      64 @ 22
inject 2   concat blocks, down block, input pooled twice          128 + C @ 22
stage 3    CG block down (d = 4, r = 16), N - 1 = 20 CG blocks    128 @ 11
head       concat blocks and down block, BN-PReLU, conv1x1        num_classes @ 11
upsample   bilinear x 8                                           num_classes @ 88
=========  =====================================================  ================

A CG block reduces its input with a 1x1 conv (BN-PReLU) to half its width, runs a
channel-wise 3x3 conv (the local feature ``f_loc``) and a channel-wise dilated 3x3 conv (the
surrounding context ``f_sur``) beside each other, concatenates them (the joint feature
``f_joi``) after BN-PReLU, reweights the channels with the global context ``f_glo`` (an SE
module: average pool, FC-ReLU-FC-sigmoid) and adds the block input (local residual
learning). The down-sampling block starts with a 3x3 stride-2 conv to the full width instead
and fuses the joint feature back to that width with a 1x1 conv before ``f_glo``; it has no
residual. As in the official code, BatchNorm uses ``eps = 1e-3`` and every convolution
outside ``f_glo`` is bias-free and Kaiming-normal initialised.

Input sizes: the forward pass pads the input to a multiple of 8 (replicating the border),
so the final up-sampling is exactly x 8 as in the paper, and crops the output back.

Parameter counts:

- ``CGNet(in_channels=10, num_classes=1)``: 505,852 (the network of the Table X runs).
- ``CGNet(in_channels=3, num_classes=19)``: 496,306, the same count, tensor for tensor, as
  the official ``Context_Guided_Network(classes=19, M=3, N=21)``; the paper's abstract
  reports "less than 0.5 M parameters", Yang et al. "less than 2 M".
- The difference: seven more input bands add 14,154 weights (to the first conv, the two
  input-injection BN-PReLUs and the first convs of both down-sampling blocks); one class
  instead of 19 removes 18 x 256 = 4,608 head weights.

Differences from the official code, none changing the architecture or the count: the input
is padded to a multiple of 8 and the output cropped (the official code up-samples to the
input size directly); ``f_glo`` uses 1x1 convolutions (torchvision's SE) instead of linear
layers, the same function and parameters, with PyTorch's default initialisation as there.
"""

from typing import override

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from landslide.models.base import AnySizeSegmenter
from landslide.models.blocks import SqueezeExcitation

TOTAL_STRIDE = 8
"""Down-sampling from the input to stage 3; inputs are padded to a multiple of it."""

BN_EPS = 1e-3
"""BatchNorm epsilon of the official code."""


def _conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
) -> nn.Conv2d:
    """Bias-free convolution with 'same' padding (for stride 1), Kaiming-normal weights."""
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=(kernel_size - 1) // 2 * dilation,
        dilation=dilation,
        groups=groups,
        bias=False,
    )
    nn.init.kaiming_normal_(conv.weight)
    return conv


def _bn_prelu(channels: int) -> nn.Sequential:
    """BatchNorm (eps 1e-3) followed by a per-channel PReLU."""
    return nn.Sequential(nn.BatchNorm2d(channels, eps=BN_EPS), nn.PReLU(channels))


def _conv_bn_prelu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
) -> nn.Sequential:
    """Convolution followed by BatchNorm and PReLU."""
    return nn.Sequential(
        _conv(in_channels, out_channels, kernel_size, stride), *_bn_prelu(out_channels)
    )


class ContextGuidedBlock(nn.Module):
    """The CG block: local feature, surrounding context, joint feature and global context.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output; must equal ``in_channels`` unless
            ``downsample``.
        dilation: dilation rate of the surrounding-context convolution ``f_sur``.
        reduction: reduction ratio of the global-context SE module ``f_glo``.
        downsample: the stage's first block: a 3x3 stride-2 conv to ``out_channels`` before
            ``f_loc`` / ``f_sur``, a 1x1 conv fusing the joint feature back to
            ``out_channels``, and no residual. Otherwise a 1x1 conv to ``out_channels / 2``
            and the input added to the output.

    Raises:
        ValueError: if a residual block changes the width or has an odd width.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dilation: int,
        reduction: int,
        downsample: bool = False,
    ) -> None:
        super().__init__()
        if not downsample and (in_channels != out_channels or out_channels % 2):
            raise ValueError(
                "a residual CG block keeps an even width, got "
                f"{in_channels} -> {out_channels} channels"
            )
        self.downsample = downsample
        if downsample:
            branch = out_channels
            self.reduce = _conv_bn_prelu(in_channels, branch, 3, stride=2)
        else:
            branch = out_channels // 2
            self.reduce = _conv_bn_prelu(in_channels, branch, 1)
        self.local = _conv(branch, branch, 3, groups=branch)
        self.surrounding = _conv(branch, branch, 3, dilation=dilation, groups=branch)
        self.joint = _bn_prelu(2 * branch)
        self.fuse: nn.Module = _conv(2 * branch, out_channels, 1) if downsample else nn.Identity()
        self.global_context = SqueezeExcitation(out_channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x: features ``[N, in_channels, H, W]``.

        Returns:
            Features ``[N, out_channels, H', W']``: ``H' = ceil(H / 2)`` when down-sampling,
            else ``H`` (likewise ``W'``).
        """
        reduced = self.reduce(x)
        joint = self.joint(torch.cat([self.local(reduced), self.surrounding(reduced)], dim=1))
        out = self.global_context(self.fuse(joint))
        return out if self.downsample else x + out


class CGNet(AnySizeSegmenter):
    """CGNet (Wu et al., TIP 2021), M3N21: stages of 3 and 21 CG blocks, 0.5 M parameters.

    Returns LOGITS (no sigmoid or softmax) at the input size, for any input size.

    Args:
        in_channels: input bands (10 in Yang et al.); also fed to stages 2 and 3 by input
            injection.
        num_classes: output channels (1 for binary landslide mapping).
        stage2_blocks: ``M``, CG blocks of stage 2 (64 channels, dilation 2) including its
            down-sampling block.
        stage3_blocks: ``N``, CG blocks of stage 3 (128 channels, dilation 4) including its
            down-sampling block.

    Raises:
        ValueError: if a stage has fewer than one block.
    """

    total_stride = TOTAL_STRIDE

    def __init__(
        self,
        in_channels: int = 10,
        num_classes: int = 1,
        stage2_blocks: int = 3,
        stage3_blocks: int = 21,
    ) -> None:
        super().__init__()
        if stage2_blocks < 1 or stage3_blocks < 1:
            raise ValueError(
                f"each stage needs at least one block, got M={stage2_blocks}, N={stage3_blocks}"
            )
        self.stage1 = nn.Sequential(
            _conv_bn_prelu(in_channels, 32, 3, stride=2),
            _conv_bn_prelu(32, 32, 3),
            _conv_bn_prelu(32, 32, 3),
        )
        self.inject = nn.AvgPool2d(3, stride=2, padding=1)
        self.stage1_out = _bn_prelu(32 + in_channels)

        self.stage2_down = ContextGuidedBlock(
            32 + in_channels, 64, dilation=2, reduction=8, downsample=True
        )
        self.stage2 = nn.Sequential(
            *(ContextGuidedBlock(64, 64, dilation=2, reduction=8) for _ in range(stage2_blocks - 1))
        )
        self.stage2_out = _bn_prelu(128 + in_channels)

        self.stage3_down = ContextGuidedBlock(
            128 + in_channels, 128, dilation=4, reduction=16, downsample=True
        )
        self.stage3 = nn.Sequential(
            *(
                ContextGuidedBlock(128, 128, dilation=4, reduction=16)
                for _ in range(stage3_blocks - 1)
            )
        )
        self.stage3_out = _bn_prelu(256)

        self.head = _conv(256, num_classes, 1)

    @override
    def cam_layers(self) -> list[nn.Module]:
        """Stage 3's output (1/8 of the input), which the head classifies."""
        return [self.stage3_out]

    @override
    def segment(self, x: Tensor) -> Tensor:
        injected_half = self.inject(x)
        injected_quarter = self.inject(injected_half)

        features = self.stage1_out(torch.cat([self.stage1(x), injected_half], dim=1))

        down = self.stage2_down(features)
        features = self.stage2_out(torch.cat([self.stage2(down), down, injected_quarter], dim=1))

        down = self.stage3_down(features)
        features = self.stage3_out(torch.cat([down, self.stage3(down)], dim=1))

        logits = F.interpolate(
            self.head(features), size=x.shape[-2:], mode="bilinear", align_corners=False
        )
        return logits
