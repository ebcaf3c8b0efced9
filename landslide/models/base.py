"""The contract of a network: logits at the input size, for any input size.

Every network subclasses :class:`AnySizeSegmenter` and implements
:meth:`~AnySizeSegmenter.segment`; the task, the mapping and the tests rely on nothing else.
"""

from abc import ABC, abstractmethod

import torch.nn.functional as F
from torch import Tensor, nn


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad height and width at the bottom and right up to a multiple of ``multiple``.

    Networks that down-sample by a total stride ``s`` pad their input to a multiple of
    ``s`` and crop their output back to the input size, so every input size works and the
    feature grids stay aligned with the input grid. Replicate padding works for any input
    size (reflect needs the pad to be smaller than the image) and does not put an
    out-of-range value at the border.

    Args:
        x: images or features ``[N, C, H, W]``.
        multiple: the size both ``H`` and ``W`` are rounded up to a multiple of.

    Returns:
        ``x`` itself if no padding is needed, else ``[N, C, H', W']`` with ``H' >= H`` and
        ``W' >= W`` the next multiples of ``multiple``.
    """
    pad_h = -x.shape[-2] % multiple
    pad_w = -x.shape[-1] % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


class AnySizeSegmenter(nn.Module, ABC):
    """Base of the networks: segments images of any size despite their down-sampling.

    The contract of a network: subclass this, set ``total_stride`` (the product of its
    strides; 1 if it does not down-sample) and implement :meth:`segment` for inputs whose
    height and width are multiples of it. :meth:`forward` pads the input with
    :func:`pad_to_multiple` and crops the logits back to its size. A subclass without
    :meth:`segment` cannot be instantiated (``TypeError``).
    """

    total_stride: int = 1

    def cam_layers(self) -> list[nn.Module]:
        """The modules whose outputs are the network's last decoder features.

        Grad-CAM (:mod:`landslide.explain.gradcam`) weighs these feature maps by the
        gradient of the landslide score; several modules (parallel branches feeding the
        classifier) are averaged. A new network names its own.

        Raises:
            NotImplementedError: the network does not name them.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not name its last decoder features; define "
            "cam_layers() in its module to explain it with Grad-CAM"
        )

    def excitation_modules(self) -> dict[str, nn.Module]:
        """Squeeze-and-excitation modules whose channel weights are worth reporting, by name.

        :mod:`landslide.explain.excitation` averages their gates over patches. None by
        default; ResU-SENet names its three skip modules.
        """
        return {}

    def forward(self, x: Tensor) -> Tensor:
        """Segment a batch of images.

        Args:
            x: images ``[N, in_channels, H, W]``, any ``H`` and ``W``.

        Returns:
            Logits ``[N, num_classes, H, W]``.
        """
        height, width = x.shape[-2:]
        return self.segment(pad_to_multiple(x, self.total_stride))[..., :height, :width]

    @abstractmethod
    def segment(self, x: Tensor) -> Tensor:
        """Segment images whose height and width are multiples of ``total_stride``.

        Args:
            x: images ``[N, in_channels, H, W]``, ``H`` and ``W`` multiples of
                ``total_stride``.

        Returns:
            Logits ``[N, num_classes, H, W]``: no sigmoid or softmax.
        """
