"""Domain shift between a training mix and a test domain, measured on the model's inputs.

The paper (Section V) relates a model's accuracy on an unseen domain to the per-band MMD
between its training samples and that domain's samples. These helpers gather the
normalised patches the model actually sees and compare them band by band.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from landslide.bands import BANDS
from landslide.data.datamodule import LandslideDataModule
from landslide.data.datasets import PatchDataset
from landslide.data.sampling import Patch
from landslide.mmd import per_band_mmd


def patch_images(
    datamodule: LandslideDataModule,
    patches: Mapping[str, Sequence[Patch]],
    max_patches: int | None = None,
    seed: int = 0,
) -> Tensor:
    """Normalised images [N, C, H, W] of the given patches of each domain.

    Args:
        datamodule: a set-up DataModule (for file locations and patch size).
        patches: patches by domain name.
        max_patches: draw at most this many patches in all (seeded, spread over the domains
            in proportion to their counts); None reads every patch.
        seed: seed of that draw.
    """
    items = [(name, p) for name, ps in patches.items() for p in ps]
    if max_patches is not None and len(items) > max_patches:
        keep = np.random.default_rng(seed).choice(len(items), max_patches, replace=False)
        items = [items[i] for i in sorted(keep)]
    images = []
    for name in dict.fromkeys(n for n, _ in items):
        chosen = [p for n, p in items if n == name]
        dataset = PatchDataset(datamodule.files(name), chosen, datamodule.patch_size)
        images.extend(dataset[i]["image"] for i in range(len(dataset)))
    return torch.stack(images)


def mix_to_domain_mmd(
    datamodule: LandslideDataModule,
    target: str,
    max_patches: int = 300,
    pixels: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Per-band squared MMD between the mix's training samples and ``target``'s test samples."""
    training = {n: datamodule.train_patches[n] + datamodule.val_patches[n] for n in datamodule.mix}
    source = patch_images(datamodule, training, max_patches, seed)
    test = patch_images(datamodule, {target: datamodule.pools[target].test}, max_patches, seed)
    return per_band_mmd(source, test, BANDS, pixels=pixels, seed=seed)
