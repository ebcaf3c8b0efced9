"""Where a prepared domain's files live.

Every domain, simulated or prepared from real imagery, is a folder with the same files, so
the DataModule reads both through one code path.
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DomainFiles:
    """The files of one prepared domain.

    Attributes:
        root: the domain's folder.
    """

    root: Path

    @property
    def stack(self) -> Path:
        """Ten-band float32 GeoTIFF in :data:`landslide.bands.BANDS` order."""
        return self.root / "stack.tif"

    @property
    def mask(self) -> Path:
        """Single-band uint8 GeoTIFF on the stack's grid: 1 landslide, 0 not."""
        return self.root / "mask.tif"

    @property
    def inventory(self) -> Path:
        """Landslide polygons (GeoPackage) in the stack's CRS."""
        return self.root / "inventory.gpkg"

    @property
    def stats(self) -> Path:
        """Per-band normalisation statistics (JSON), see :mod:`landslide.data.normalization`."""
        return self.root / "stats.json"

    def missing(self) -> list[Path]:
        """The required files that do not exist."""
        return [p for p in (self.stack, self.mask, self.stats) if not p.is_file()]
