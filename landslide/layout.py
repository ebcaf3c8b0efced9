"""Where a domain's files live, and what its mask values and roles mean.

Every domain, simulated or prepared from real imagery, is a folder with the same files, so
the DataModule reads both through one code path.
"""

from dataclasses import dataclass
from pathlib import Path

#: Mask values: stable ground, landslide, and pixels to ignore (no valid imagery, outside
#: the area of interest, or unlabelled). No sample window holds an ignored pixel.
STABLE, LANDSLIDE, IGNORED = 0, 1, 255
#: Domain roles: known domains give training samples, unknown ones are test-only.
KNOWN, UNKNOWN = "known", "unknown"


@dataclass(frozen=True)
class DomainFiles:
    """The files of one prepared domain.

    Attributes:
        root: the domain's folder.
    """

    root: Path

    @property
    def stack(self) -> Path:
        """float32 GeoTIFF of the bands named in :attr:`stats`.

        The bands are in :data:`landslide.bands.BANDS` order (all ten for the default world).
        """
        return self.root / "stack.tif"

    @property
    def mask(self) -> Path:
        """Single-band uint8 GeoTIFF on the stack's grid.

        Each pixel is :data:`LANDSLIDE`, :data:`STABLE` or :data:`IGNORED`.
        """
        return self.root / "mask.tif"

    @property
    def inventory(self) -> Path:
        """Landslide polygons (GeoPackage) in the stack's CRS."""
        return self.root / "inventory.gpkg"

    @property
    def stats(self) -> Path:
        """Per-band normalisation statistics (JSON), see :mod:`landslide.band_stats`."""
        return self.root / "stats.json"

    @property
    def samples(self) -> Path:
        """Optional saved sample index (JSON), see :mod:`landslide.data.sampling`."""
        return self.root / "samples.json"

    def missing(self) -> list[Path]:
        """The required files that do not exist."""
        return [p for p in (self.stack, self.mask, self.stats) if not p.is_file()]
