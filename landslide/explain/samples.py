"""The test patches of a domain that a model is explained on, read into memory."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from landslide.data.datamodule import LandslideDataModule
from landslide.data.sampling import Patch


@dataclass(frozen=True)
class DomainSamples:
    """Test patches of one domain, normalised as the model saw them in testing.

    Attributes:
        domain: the domain's name.
        images: normalised bands ``[N, C, H, W]``.
        masks: reference ``[N, H, W]``: 1 landslide, 0 not, 255 ignored.
        indices: each patch's index in the domain's test set.
        windows: each patch's window in the domain's grid.
    """

    domain: str
    images: Tensor
    masks: Tensor
    indices: tuple[int, ...]
    windows: tuple[Patch, ...]

    @property
    def positive(self) -> Tensor:
        """Which patches hold landslide pixels ``[N]``."""
        return (self.masks == 1).flatten(1).any(1)

    def subset(self, keep: Tensor | Sequence[int]) -> "DomainSamples":
        """The patches at ``keep`` (positions in this set, or a boolean mask)."""
        positions = torch.as_tensor(keep)
        if positions.dtype == torch.bool:
            positions = positions.nonzero().flatten()
        chosen = [int(i) for i in positions]
        return DomainSamples(
            self.domain,
            self.images[chosen],
            self.masks[chosen],
            tuple(self.indices[i] for i in chosen),
            tuple(self.windows[i] for i in chosen),
        )


def balanced_indices(patches: Sequence[Patch], count: int | None, seed: int) -> list[int]:
    """Indexes of ``count`` patches, half with landslides, drawn with ``seed``, in set order.

    ``None`` (or a count at least the set's size) keeps every patch. When one kind runs
    short, the other fills the count.
    """
    if count is None or count >= len(patches):
        return list(range(len(patches)))
    rng = np.random.default_rng(seed)
    positive = [i for i, p in enumerate(patches) if p.positive]
    negative = [i for i, p in enumerate(patches) if not p.positive]
    n_positive = min(len(positive), max(count - len(negative), (count + 1) // 2))
    chosen = [
        *rng.choice(positive, n_positive, replace=False).tolist(),
        *rng.choice(negative, count - n_positive, replace=False).tolist(),
    ]
    return sorted(int(i) for i in chosen)


def read_test_patches(
    datamodule: LandslideDataModule, domain: str, indices: Sequence[int]
) -> DomainSamples:
    """Read the test patches at ``indices`` of ``domain`` (the datamodule is set up)."""
    patches = datamodule.pools[domain].test
    dataset = datamodule.dataset(domain, [patches[i] for i in indices])
    items = [dataset[i] for i in range(len(indices))]
    images = torch.stack([item["image"] for item in items]).float()
    masks = torch.stack([item["mask"] for item in items]).to(torch.uint8)
    return DomainSamples(domain, images, masks, tuple(indices), tuple(patches[i] for i in indices))
