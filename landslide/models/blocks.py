"""Building blocks shared by the networks: the residual unit and squeeze-and-excitation.

The residual unit is the one of ResU-Net (Zhang, Liu & Wang 2018, after He et al. 2016,
"Identity mappings in deep residual networks"): BN-ReLU-conv3x3-BN-ReLU-conv3x3, added to
the input or, when the shape changes, to a 1x1-conv + BN projection of it. Down-sampling is
a stride on the first convolution (and on the projection), not pooling.

Convolutions that feed a BatchNorm (directly, or through the addition and the next unit's
pre-activation) carry no bias: BN's shift makes it redundant.
"""

from torch import Tensor, nn
from torchvision.ops import SqueezeExcitation as _TorchvisionSqueezeExcitation


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with 'same' padding (for stride 1) and no bias."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def batchnorm_relu(channels: int) -> nn.Sequential:
    """BatchNorm followed by ReLU: the pre-activation of a residual unit."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class ResidualUnit(nn.Module):
    """Pre-activation residual unit: ``x + F(x)`` with ``F`` = BN-ReLU-conv-BN-ReLU-conv.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        stride: stride of the first 3x3 convolution and of the shortcut projection;
            2 halves the spatial size.
        preactivate: apply BN-ReLU before the first convolution. ``False`` gives the first
            unit of ResU-Net (the stem), which sees the raw bands: conv-BN-ReLU-conv plus
            shortcut, as in Zhang et al. (2018), Fig. 2.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        preactivate: bool = True,
    ) -> None:
        super().__init__()
        self.preact1: nn.Module = batchnorm_relu(in_channels) if preactivate else nn.Identity()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.preact2 = batchnorm_relu(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.shortcut: nn.Module
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the unit.

        Args:
            x: features ``[N, in_channels, H, W]``.

        Returns:
            Features ``[N, out_channels, H / stride, W / stride]`` (sizes rounded up).
        """
        residual = self.conv2(self.preact2(self.conv1(self.preact1(x))))
        return self.shortcut(x) + residual


class SqueezeExcitation(_TorchvisionSqueezeExcitation):
    """Squeeze-and-excitation channel attention (Hu et al., CVPR 2018).

    Global average pool, FC-ReLU-FC-sigmoid (the FCs as 1x1 convolutions, with bias),
    and the input multiplied channel-wise by the resulting gate in (0, 1). This is
    torchvision's module; only the hidden ("squeeze") width is chosen here.

    Args:
        channels: channels of the input (and output).
        reduction: ratio ``r`` of channels to hidden units; Hu et al. use 16.
        min_squeeze_channels: floor on the hidden width, so that narrow inputs (e.g. 8
            channels with ``r = 16``) still get a working bottleneck instead of zero units.
    """

    def __init__(self, channels: int, reduction: int = 16, min_squeeze_channels: int = 4) -> None:
        if reduction < 1 or min_squeeze_channels < 1:
            raise ValueError(
                f"reduction ({reduction}) and min_squeeze_channels ({min_squeeze_channels}) "
                "must be at least 1"
            )
        super().__init__(channels, squeeze_channels(channels, reduction, min_squeeze_channels))
        self.reduction = reduction


def squeeze_channels(channels: int, reduction: int = 16, min_squeeze_channels: int = 4) -> int:
    """Hidden width of an SE module: ``max(channels // reduction, min_squeeze_channels)``."""
    return max(channels // reduction, min_squeeze_channels)
