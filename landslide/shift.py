"""Domain shift between a training mix and a scene, measured on the model's inputs.

The paper (Section V) relates a model's accuracy on an unseen domain to the per-band MMD
between its training samples and that domain's samples, and picks the model with the
smallest discrepancy for a new earthquake. These helpers gather the normalised patches the
model sees and compare them band by band. A scene is represented by random windows of its
stack (seeded), so no landslide labels are needed: that is the situation of a new event.
"""

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import rasterio
import torch
from torch import Tensor
from torch.utils.data import Dataset

from landslide.bands import BANDS
from landslide.data.datamodule import LandslideDataModule
from landslide.data.datasets import PatchDataset
from landslide.data.sampling import Patch
from landslide.layout import DomainFiles
from landslide.mmd import per_band_mmd


def patch_images(
    files: Mapping[str, DomainFiles],
    patches: Mapping[str, Sequence[Patch]],
    size: int,
    bands: Sequence[str] = BANDS,
    max_patches: int | None = None,
    seed: int = 0,
    labelled: bool = True,
) -> Tensor:
    """Normalised images [N, C, H, W] of the given patches of each domain.

    Args:
        files: the files of each domain named in ``patches``.
        patches: patches by domain name.
        size: patch side in pixels.
        bands: the bands to read, in stack order.
        max_patches: draw at most this many patches in all (seeded, spread over the domains
            in proportion to their counts); None reads every patch.
        seed: seed of that draw.
        labelled: whether the domains have masks (a scene to map has none).
    """
    return _images(
        patches,
        lambda name, chosen: PatchDataset(
            files[name], chosen, size, bands=bands, labelled=labelled
        ),
        max_patches,
        seed,
    )


def _images(
    patches: Mapping[str, Sequence[Patch]],
    dataset: Callable[[str, list[Patch]], Dataset[dict[str, Tensor]]],
    max_patches: int | None,
    seed: int,
) -> Tensor:
    """The images of ``patches``, read through ``dataset(name, patches)``.

    ``dataset`` gives one sample per patch, in order. At most ``max_patches`` are read, a
    seeded draw over all domains.
    """
    items = [(name, p) for name, ps in patches.items() for p in ps]
    if max_patches is not None and len(items) > max_patches:
        keep = np.random.default_rng(seed).choice(len(items), max_patches, replace=False)
        items = [items[i] for i in sorted(keep)]
    images: list[Tensor] = []
    for name in dict.fromkeys(n for n, _ in items):
        chosen = [p for n, p in items if n == name]
        samples = dataset(name, chosen)
        images.extend(samples[i]["image"] for i in range(len(chosen)))
    return torch.stack(images)


def random_windows(files: DomainFiles, count: int, size: int, seed: int = 0) -> list[Patch]:
    """``count`` uniformly random ``size`` px windows of a scene (seeded)."""
    with rasterio.open(files.stack) as src:
        height, width = src.height, src.width
    if height < size or width < size:
        raise ValueError(f"{files.stack}: {height}x{width} px is smaller than one {size} px patch")
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, height - size + 1, count)
    cols = rng.integers(0, width - size + 1, count)
    return [Patch(int(r), int(c), False) for r, c in zip(rows, cols, strict=True)]


def training_images(datamodule: LandslideDataModule, max_patches: int, seed: int = 0) -> Tensor:
    """Normalised images of a set-up DataModule's training and validation patches.

    The patches are raster windows or patch files, each read through
    :meth:`LandslideDataModule.dataset`.
    """
    patches = {n: datamodule.train_patches[n] + datamodule.val_patches[n] for n in datamodule.mix}
    return _images(patches, datamodule.dataset, max_patches, seed)


def scene_images(
    files: DomainFiles, count: int, size: int, bands: Sequence[str] = BANDS, seed: int = 0
) -> Tensor:
    """Normalised images of ``count`` random windows of a scene (no labels needed)."""
    windows = random_windows(files, count, size, seed)
    return patch_images({"scene": files}, {"scene": windows}, size, bands, labelled=False)


def mix_to_scene_mmd(
    datamodule: LandslideDataModule,
    scene: DomainFiles,
    max_patches: int = 300,
    pixels: int = 2000,
    seed: int = 0,
    device: str | None = None,
) -> dict[str, float]:
    """Per-band squared MMD between a mix's training samples and random windows of a scene.

    Args:
        datamodule: a set-up DataModule whose mix is the model's training data.
        scene: the scene's files (its own normalisation statistics are applied).
        max_patches: patches drawn from each side (seeded).
        pixels: pixels drawn from each side for the MMD (see :func:`per_band_mmd`).
        seed: seed of every draw.
        device: where the kernels are computed; None picks a GPU when there is one.
    """
    target = scene_images(scene, max_patches, datamodule.patch_size, datamodule.bands, seed)
    return _mix_mmd(datamodule, target, max_patches, pixels, seed, device)


def mix_to_domain_mmd(
    datamodule: LandslideDataModule,
    target: str,
    max_patches: int = 300,
    pixels: int = 2000,
    seed: int = 0,
    device: str | None = None,
) -> dict[str, float]:
    """:func:`mix_to_scene_mmd` with one of the DataModule's own domains as the scene.

    The scene's images are random windows of a raster domain, or the test files of a
    patch-folder domain (whose files are not one scene to draw windows from).
    """
    if target not in datamodule.patch_domains:
        return mix_to_scene_mmd(
            datamodule, datamodule.files(target), max_patches, pixels, seed, device
        )
    images = _images({target: datamodule.pools[target].test}, datamodule.dataset, max_patches, seed)
    return _mix_mmd(datamodule, images, max_patches, pixels, seed, device)


def _mix_mmd(
    datamodule: LandslideDataModule,
    target: Tensor,
    max_patches: int,
    pixels: int,
    seed: int,
    device: str | None,
) -> dict[str, float]:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    source = training_images(datamodule, max_patches, seed).to(device)
    return per_band_mmd(source, target.to(device), datamodule.bands, pixels=pixels, seed=seed)
