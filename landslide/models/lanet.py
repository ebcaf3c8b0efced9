"""LANet: local attention embedding on a ResNet-50 fully convolutional network.

Ding, Tang & Bruzzone, "LANet: Local Attention Embedding to Improve the Semantic
Segmentation of Remote Sensing Images", IEEE TGRS 59(1), 426-435, 2021; official code
ggsDing/LANet, ``models/LANet.py`` with the FCN of ``models/FCN_32s.py`` (the one it
imports).

Layout (88 x 88 input, padded to 96; ``C`` is the number of input bands):

===========  ================================================  ===============
branch       operation                                         output
===========  ================================================  ===============
stem         conv7x7 s2 (C -> 64), BN-ReLU, max-pool s2        64 @ 24
low level    ResNet-50 layer1                                  256 @ 24
high level   layer2, layer3, layer4 (strides 2, 2, 2)          2048 @ 3
FCN head     conv1x1-BN-ReLU                                   128 @ 3
high PAM     patch attention, 4 x 4-pixel patches, r = 16      128 @ 3
low PAM      conv1x1-BN-ReLU, patch attention, 20 x 20, r = 8  64 @ 24
AEM          high-level attention (7 x 7 local mean, r = 16)   64 @ 24
             up-sampled to reweight the low-level features
classifiers  conv1x1 on each branch, bilinear to the input,    num_classes @ 96
             summed
===========  ================================================  ===============

The patch attention module (PAM) averages the features over a grid of patches, maps each
patch's mean through conv1x1-BN-ReLU-conv1x1-sigmoid to channel weights, up-samples them
bilinearly and returns ``x * A + x``. The attention embedding module (AEM) computes such
weights from the high-level features (a 7 x 7 moving average instead of patches) for the
low-level channels and returns ``low * A``; as in the official code the high-level
features enter it detached, so the AEM trains the low-level branch and itself only.

Backbone: torchvision's ResNet-50 definition, built WITHOUT weights (none can be
downloaded here; the authors start from ImageNet weights), its first convolution replaced
by a ``C``-band 7 x 7 convolution (Kaiming-normal initialised like the rest of
torchvision's ResNet), and its pooling and fully connected layers dropped. The output
stride is 32, as in the code the authors' LANet imports.

Input sizes: the forward pass pads the input to a multiple of 32 (replicating the border)
and crops the output back. A feature map smaller than one patch gets a single patch:
with 88-pixel inputs both PAMs see one patch (24 // 20 = 1 and 3 // 4 = 0, raised to 1),
so they act as global channel attention; with 512-pixel inputs the grids are 6 x 6 (low) and
4 x 4 (high). On a one-patch grid the PAM's BatchNorm sees one value per channel and
image, so training needs batches of at least two images (the paper's batch is 5).

Parameter counts:

- ``LANet(in_channels=10, num_classes=1)``: 23,814,090 (the network of the Table X runs):
  23,529,984 in the backbone, 262,400 in the FCN head, 21,706 in the PAMs, AEM and
  classifiers.
- ``LANet(in_channels=3, num_classes=6)``: 23,793,108. The official ``LANet(3, 6)`` (six
  classes as in the paper's Potsdam and Vaihingen data) counts 23,810,650: it also builds
  the FCN's own classifier (conv1x1-BN-ReLU-conv1x1, 17,542 parameters at six classes),
  which LANet's forward pass never uses, so it is left out here.
- The LANet paper's own figure could not be checked here; none is quoted.

Differences from the official code besides the unused classifier: no pretrained weights
(see above); BatchNorm keeps PyTorch's default momentum (0.1) where the official code sets
``momentum=0.95`` in its added layers, a Keras-style value that in PyTorch makes the running
statistics follow the last batch almost entirely; a PAM grid has at least one patch (the
official code fails on maps smaller than a patch); padding and cropping as above.
"""

from typing import override

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet50

from landslide.models.base import AnySizeSegmenter

TOTAL_STRIDE = 32
"""Down-sampling from the input to ResNet-50's layer4; inputs are padded to a multiple."""


def _conv1x1_bn_relu(in_channels: int, out_channels: int, bias: bool = True) -> nn.Sequential:
    """1x1 convolution followed by BatchNorm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, bias=bias),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize to ``size`` (``align_corners=False``)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class PatchAttention(nn.Module):
    """Patch attention module (PAM): channel attention computed per local patch.

    Args:
        channels: channels of the input (and output).
        reduction: ratio of ``channels`` to the hidden width of the attention MLP.
        patch_size: side of a patch in feature pixels; the map is averaged over a grid of
            ``max(1, H // patch_size) x max(1, W // patch_size)`` patches.
    """

    def __init__(self, channels: int, reduction: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.gate = nn.Sequential(
            _conv1x1_bn_relu(channels, channels // reduction),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Reweight ``x`` by its patch-wise attention and add it back.

        Args:
            x: features ``[N, channels, H, W]``.

        Returns:
            ``x * A + x``, same shape, with ``A`` the up-sampled patch attention.
        """
        height, width = x.shape[-2:]
        grid = (max(1, height // self.patch_size), max(1, width // self.patch_size))
        attention = self.gate(F.adaptive_avg_pool2d(x, grid))
        return x * _upsample(attention, (height, width)) + x


class AttentionEmbedding(nn.Module):
    """Attention embedding module (AEM): high-level local attention on low-level features.

    Args:
        high_channels: channels of the high-level features.
        low_channels: channels of the low-level features (and of the output).
        reduction: ratio of ``high_channels`` to the hidden width of the attention MLP.
        window: the high-level features are first averaged over ``(window + 1)``-pixel
            square neighbourhoods (stride 1, zero padding counted as in the official code).
    """

    def __init__(
        self, high_channels: int, low_channels: int, reduction: int = 16, window: int = 6
    ) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AvgPool2d(window + 1, stride=1, padding=window // 2),
            _conv1x1_bn_relu(high_channels, high_channels // reduction),
            nn.Conv2d(high_channels // reduction, low_channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, high: Tensor, low: Tensor) -> Tensor:
        """Reweight the low-level features by attention from the (detached) high level.

        Args:
            high: high-level features ``[N, high_channels, h, w]``.
            low: low-level features ``[N, low_channels, H, W]``.

        Returns:
            ``low * A``, shape of ``low``.
        """
        attention = self.gate(high.detach())
        height, width = low.shape[-2:]
        return low * _upsample(attention, (height, width))


class LANet(AnySizeSegmenter):
    """LANet (Ding, Tang & Bruzzone, TGRS 2021): ResNet-50 FCN with PAMs and an AEM.

    Returns LOGITS (no sigmoid or softmax) at the input size, for any input size.

    Args:
        in_channels: input bands of the 7 x 7 stem convolution (10 in Yang et al.).
        num_classes: output channels (1 for binary landslide mapping).
    """

    total_stride = TOTAL_STRIDE

    def __init__(self, in_channels: int = 10, num_classes: int = 1) -> None:
        super().__init__()
        resnet = resnet50(weights=None)
        stem_conv = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(stem_conv.weight, mode="fan_out", nonlinearity="relu")
        self.stem = nn.Sequential(stem_conv, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1 = resnet.layer1
        self.high_layers = nn.Sequential(resnet.layer2, resnet.layer3, resnet.layer4)
        self.head = _conv1x1_bn_relu(2048, 128, bias=False)

        self.high_attention = PatchAttention(128, reduction=16, patch_size=4)
        self.low_reduce = _conv1x1_bn_relu(256, 64)
        self.low_attention = PatchAttention(64, reduction=8, patch_size=20)
        self.embedding = AttentionEmbedding(128, 64, reduction=16, window=6)

        self.high_classifier = nn.Conv2d(128, num_classes, 1)
        self.low_classifier = nn.Conv2d(64, num_classes, 1)

    @override
    def cam_layers(self) -> list[nn.Module]:
        """Both branches the classifiers read: the high-level and the embedded low-level."""
        return [self.high_attention, self.embedding]

    @override
    def segment(self, x: Tensor) -> Tensor:
        low = self.layer1(self.stem(x))
        high = self.high_attention(self.head(self.high_layers(low)))
        low = self.embedding(high, self.low_attention(self.low_reduce(low)))

        height, width = x.shape[-2:]
        size = (height, width)
        logits = _upsample(self.high_classifier(high), size) + _upsample(
            self.low_classifier(low), size
        )
        return logits
