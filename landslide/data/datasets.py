"""torchgeo datasets over a prepared domain, and a map-style view of fixed patches."""

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from torch import Tensor
from torch.utils.data import Dataset, default_collate
from torchgeo.datasets import IntersectionDataset, RasterDataset

from landslide.band_stats import BandStats
from landslide.bands import BANDS
from landslide.data.integrity import check_domain
from landslide.data.normalization import MinMaxNormalize
from landslide.data.sampling import Patch
from landslide.layout import DomainFiles


class LandslideStack(RasterDataset):
    """The analysis-ready stack of one domain, reading the requested bands.

    Args:
        path: the stack GeoTIFF.
        stack_bands: the bands the file holds, in order (from its statistics).
        bands: the bands to read, each one of ``stack_bands``.
        transforms: sample transform (normalisation).
    """

    filename_glob = "stack.tif"
    is_image = True

    def __init__(
        self,
        path: Path,
        stack_bands: Sequence[str],
        bands: Sequence[str],
        transforms: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
    ) -> None:
        self.all_bands = tuple(stack_bands)
        super().__init__(paths=[str(path)], bands=list(bands), transforms=transforms)


class LandslideMask(RasterDataset):
    """The landslide mask of one domain: 1 landslide, 0 not."""

    filename_glob = "mask.tif"
    is_image = False


def stack_stats(files: DomainFiles, bands: Sequence[str], labelled: bool = True) -> BandStats:
    """The statistics of a domain's stack, checked against its files.

    Checks that the stack holds ``bands`` and that its rasters read to the end
    (:mod:`~landslide.data.integrity`, once per file in a process): the DataModule calls this
    when it sets up, so damage is reported before training.

    Args:
        files: the domain's files.
        bands: the bands that will be read.
        labelled: whether the domain must have a mask; a scene to map has none.

    Raises:
        FileNotFoundError: if a file of the domain is missing.
        ValueError: if the stack lacks a requested band.
        DataError: if the stack or mask is damaged, truncated or not a raster.
    """
    missing = [p for p in files.missing() if labelled or p != files.mask]
    if missing:
        raise FileNotFoundError(
            f"{files.root}: missing {', '.join(p.name for p in missing)}; prepare the domain "
            "first (the default world is generated on first use)"
        )
    stats = BandStats.load(files.stats)
    absent = [b for b in bands if b not in stats.bands]
    if absent:
        raise ValueError(
            f"{files.stack}: has no band {', '.join(absent)} (it holds {', '.join(stats.bands)}); "
            "choose a band set it holds (bands=... or data.bands=[...]) or prepare it again "
            "with those bands"
        )
    check_domain(files, labelled)
    return stats


def domain_dataset(
    files: DomainFiles, bands: Sequence[str] = BANDS, labelled: bool = True
) -> IntersectionDataset | LandslideStack:
    """Image stack intersected with its mask, normalised with the domain's statistics.

    Args:
        files: the domain's files.
        bands: the bands to read, in :data:`BANDS` order.
        labelled: intersect with the mask; False reads the image alone (a scene to map).
    """
    stats = stack_stats(files, bands, labelled)
    normalize = MinMaxNormalize(stats.select(bands))
    image = LandslideStack(files.stack, stats.bands, bands, transforms=normalize)
    if not labelled:
        return image
    mask = LandslideMask(paths=[str(files.mask)])
    return image & mask


class PatchDataset(Dataset[dict[str, Tensor]]):
    """Fixed patches of one domain as a map-style dataset.

    torchgeo samplers draw random windows; the paper instead fixes a pool of samples per
    domain, so this wraps a GeoDataset with a list of pixel windows turned into
    georeferenced queries. Domains keep their own CRS: concatenate several of these with
    :class:`torch.utils.data.ConcatDataset` instead of a torchgeo ``UnionDataset``, which
    would reproject every domain into one CRS.

    Args:
        files: the domain's files.
        patches: pixel windows on the domain's grid.
        size: patch side in pixels.
        domain_index: integer stored in each sample under ``"domain"``.
        bands: the bands to read, in :data:`BANDS` order.
        labelled: read the mask too; False for a scene without labels (samples then hold
            no ``"mask"``).
    """

    def __init__(
        self,
        files: DomainFiles,
        patches: Sequence[Patch],
        size: int,
        domain_index: int = 0,
        bands: Sequence[str] = BANDS,
        labelled: bool = True,
    ) -> None:
        self.files = files
        self.bands = tuple(bands)
        self.labelled = labelled
        self.patches = tuple(patches)
        self.size = size
        self.domain_index = domain_index
        self._dataset: IntersectionDataset | LandslideStack | None = None
        self._reader: WindowReader | None = None

    @property
    def dataset(self) -> IntersectionDataset | LandslideStack:
        """The domain's torchgeo dataset (stack and mask), opened on first use."""
        # Opened lazily so each DataLoader worker builds its own file handles.
        if self._dataset is None:
            self._dataset = domain_dataset(self.files, self.bands, self.labelled)
        return self._dataset

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        patch = self.patches[index]
        reader = self.reader
        if reader.holds(patch, self.size):
            sample = reader.read(patch, self.size)
        else:  # not on the stack's grid: torchgeo's query pads it as any GeoDataset does
            sample = self._query(patch)
        item = {"image": sample["image"], "domain": torch.tensor(self.domain_index)}
        if self.labelled:
            item["mask"] = sample["mask"].float()
        return item

    @property
    def reader(self) -> "WindowReader":
        """Windowed reads of the domain's files, opened on first use."""
        if self._reader is None:
            self._reader = WindowReader(self.files, self.bands, self.labelled)
        return self._reader

    def _query(self, patch: Patch) -> dict[str, Tensor]:
        xres, yres = self.dataset.res
        left, top = self._origin()
        xmin = left + patch.col * xres
        ymax = top - patch.row * yres
        query = (
            slice(xmin, xmin + self.size * xres, xres),
            slice(ymax - self.size * yres, ymax, yres),
        )
        return self.dataset[query]

    def _origin(self) -> tuple[float, float]:
        x, y, _ = self.dataset.bounds
        return x.start, y.stop

    def __getstate__(self) -> dict:
        # File handles do not pickle; workers reopen them.
        state = self.__dict__.copy()
        state["_dataset"] = None
        state["_reader"] = None
        return state


class WindowReader:
    """Pixel windows of one domain's stack and mask, read straight from the two files.

    Written by hand because torchgeo's ``RasterDataset`` answers georeferenced queries: it
    finds the files under a bounding box and merges them onto the query's grid
    (``rasterio.merge``), about 11 ms for an 88 px window of the default world on a 2-core
    CPU. A pool window lies on its domain's own grid in one file, so a windowed rasterio read
    returns the same pixels (``tests/test_data.py`` checks it against the torchgeo query) in
    about 1 ms: a run's 1,900 pool windows take 2 s instead of 22 s. Samples are normalised
    as :func:`domain_dataset` normalises them.

    Args:
        files: the domain's files.
        bands: the bands to read, in :data:`BANDS` order.
        labelled: read the mask too.
    """

    def __init__(self, files: DomainFiles, bands: Sequence[str], labelled: bool = True) -> None:
        stats = stack_stats(files, bands, labelled)
        self.normalize = MinMaxNormalize(stats.select(bands))
        self.indexes = [stats.bands.index(band) + 1 for band in bands]
        self.stack = rasterio.open(files.stack)
        self.mask = rasterio.open(files.mask) if labelled else None

    def holds(self, patch: Patch, size: int) -> bool:
        """Whether the ``size`` px window at ``patch`` lies inside the stack."""
        return (
            0 <= patch.row
            and 0 <= patch.col
            and patch.row + size <= self.stack.height
            and patch.col + size <= self.stack.width
        )

    def read(self, patch: Patch, size: int) -> dict[str, Tensor]:
        """The normalised image [C, size, size] (float32) and, if labelled, the mask."""
        window = Window(patch.col, patch.row, size, size)
        pixels = self.stack.read(self.indexes, window=window).astype(np.float32, copy=False)
        sample = self.normalize({"image": torch.from_numpy(pixels)})
        if self.mask is not None:
            sample["mask"] = torch.from_numpy(self.mask.read(1, window=window))
        return sample


class CachedSamples(Dataset[dict[str, Tensor]]):
    """The samples of ``dataset``, each read once and then served from memory.

    The paper's pools are fixed and small (1000 patches of 10 x 88 x 88 float32 per domain,
    31 MB), so reading the same windows from the GeoTIFFs again every epoch costs time and
    buys nothing: the DataModule wraps its training and validation sets in this. Samples
    are kept as read (normalised, before augmentation, which runs on the batch). Once every
    sample has been read they are stacked into one tensor per key, and a DataLoader batch
    is a single gather (:meth:`__getitems__`, collated by :func:`collate_samples`) instead
    of one Python call per sample. Each DataLoader worker keeps the samples it read
    (persistent workers keep them across epochs).

    Args:
        dataset: a map-style dataset of sample dicts with the same keys and shapes.
    """

    def __init__(self, dataset: Dataset[dict[str, Tensor]]) -> None:
        self.dataset = dataset
        self._samples: dict[int, dict[str, Tensor]] = {}
        self._stacked: dict[str, Tensor] | None = None

    def __len__(self) -> int:
        """The number of samples of the wrapped dataset."""
        return len(self.dataset)  # type: ignore[arg-type]  # map-style datasets are sized

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Sample ``index``: read on first use, then from memory (a new dict each time)."""
        if self._stacked is not None:
            return {key: values[index] for key, values in self._stacked.items()}
        sample = self._samples.get(index)
        if sample is None:
            sample = self._samples[index] = self.dataset[index]
            if len(self._samples) == len(self):
                self._stack()
        return dict(sample)

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]] | dict[str, Tensor]:
        """The samples at ``indices``, for a DataLoader batch.

        Returns:
            One gathered batch once all samples are in memory, else a list of samples
            (:func:`collate_samples` takes both).
        """
        if self._stacked is None:
            return [self[index] for index in indices]
        rows = torch.as_tensor(indices)
        return {key: values[rows] for key, values in self._stacked.items()}

    def _stack(self) -> None:
        samples = [self._samples[i] for i in range(len(self))]
        self._stacked = {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
        self._samples = {}


def collate_samples(
    data: list[dict[str, Tensor]] | dict[str, Tensor],
) -> dict[str, Tensor]:
    """Collate a list of samples into a batch, or pass an already gathered batch on.

    The same tensors either way: gathering rows of stacked samples equals stacking them.
    """
    return data if isinstance(data, dict) else default_collate(data)
