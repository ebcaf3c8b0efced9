"""The paper's training augmentation: horizontal flip, vertical flip, diagonal mirror."""

import torch
from torch import Tensor, nn


class RandomDihedralFlips(nn.Module):
    """Flip batch samples horizontally, vertically and across the main diagonal.

    Each flip applies to each sample with probability ``p``, with the same choice for its
    image and mask.
    Written by hand because kornia offers the two flips but no transpose (the paper's
    "diagonal mirroring"); doing all three here on whole batches keeps image and mask
    aligned by construction. Runs on whatever device the batch is on.

    Args:
        p: probability of each of the three flips.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Augment a batch.

        Args:
            image: [B, C, H, W], H == W.
            mask: [B, H, W].

        Returns:
            The flipped image and mask.
        """
        if image.shape[-1] != image.shape[-2]:
            raise ValueError(f"diagonal mirroring needs square patches, got {image.shape}")
        mask = mask.unsqueeze(1)
        batch = image.shape[0]
        for flip in (
            lambda t: t.flip(-1),
            lambda t: t.flip(-2),
            lambda t: t.transpose(-1, -2),
        ):
            chosen = (torch.rand(batch, device=image.device) < self.p).view(-1, 1, 1, 1)
            image = torch.where(chosen, flip(image), image)
            mask = torch.where(chosen, flip(mask), mask)
        return image, mask.squeeze(1)
