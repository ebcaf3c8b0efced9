"""torchgeo datasets over a prepared domain, and a map-style view of fixed patches."""

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchgeo.datasets import IntersectionDataset, RasterDataset

from landslide.bands import BANDS
from landslide.data.layout import DomainFiles
from landslide.data.normalization import BandStats, MinMaxNormalize
from landslide.data.sampling import Patch


class LandslideStack(RasterDataset):
    """The ten-band analysis-ready stack of one domain (see :data:`BANDS`)."""

    filename_glob = "stack.tif"
    is_image = True
    all_bands = BANDS


class LandslideMask(RasterDataset):
    """The landslide mask of one domain: 1 landslide, 0 not."""

    filename_glob = "mask.tif"
    is_image = False


def domain_dataset(files: DomainFiles) -> IntersectionDataset:
    """Image stack intersected with its mask, normalised with the domain's statistics."""
    missing = files.missing()
    if missing:
        raise FileNotFoundError(
            f"{files.root}: missing {', '.join(p.name for p in missing)}; prepare the domain "
            "first (the default world is generated on first use)"
        )
    normalize = MinMaxNormalize(BandStats.load(files.stats))
    image = LandslideStack(paths=[str(files.stack)], transforms=normalize)
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
    """

    def __init__(
        self, files: DomainFiles, patches: Sequence[Patch], size: int, domain_index: int = 0
    ) -> None:
        self.files = files
        self.patches = tuple(patches)
        self.size = size
        self.domain_index = domain_index
        self._dataset: IntersectionDataset | None = None

    @property
    def dataset(self) -> IntersectionDataset:
        # Opened lazily so each DataLoader worker builds its own file handles.
        if self._dataset is None:
            self._dataset = domain_dataset(self.files)
        return self._dataset

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        patch = self.patches[index]
        xres, yres = self.dataset.res
        left, top = self._origin()
        xmin = left + patch.col * xres
        ymax = top - patch.row * yres
        query = (
            slice(xmin, xmin + self.size * xres, xres),
            slice(ymax - self.size * yres, ymax, yres),
        )
        sample = self.dataset[query]
        return {
            "image": sample["image"],
            "mask": sample["mask"].float(),
            "domain": torch.tensor(self.domain_index),
        }

    def _origin(self) -> tuple[float, float]:
        x, y, _ = self.dataset.bounds
        return x.start, y.stop

    def __getstate__(self) -> dict:
        # File handles do not pickle; workers reopen them.
        state = self.__dict__.copy()
        state["_dataset"] = None
        return state
