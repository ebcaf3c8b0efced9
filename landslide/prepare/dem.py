"""Elevation from a DEM in any CRS, resolution and vertical unit, on the target grid.

Slope and hillshade need elevations in metres on a grid in metres. The DEM is reprojected
(bilinear) onto the 10 m target grid first, whatever its own CRS (a DEM in geographic
degrees, e.g. SRTM from Earth Engine, is fine), and elevations in feet are converted with
``units: foot``. Slope is then computed on the target grid, never on the DEM's own.

The DEM may come in tiles (``dem.path`` a folder, a glob pattern or a list, see
:mod:`landslide.prepare.tiles`), e.g. SRTM or Copernicus 1-degree tiles; they are
mosaicked on the fly. Only a nodata value the file or ``dem.nodata`` declares is left out:
unlike imagery, a DEM is never searched for a fill value, since elevation 0 is sea level.
"""

import logging
from collections.abc import Sequence

import numpy as np

from landslide.prepare.errors import PrepareError
from landslide.prepare.grid import Grid, RasterInput, warp
from landslide.prepare.tiles import find_rasters

log = logging.getLogger(__name__)

#: Metres per vertical unit.
UNITS: dict[str, float] = {
    "metre": 1.0,
    "meter": 1.0,
    "foot": 0.3048,
    "us_survey_foot": 1200 / 3937,
}

#: Plausible elevations on land, metres: the Dead Sea shore to Everest.
PLAUSIBLE_M: tuple[float, float] = (-450.0, 8850.0)


class DemSource:
    """A DEM raster.

    Args:
        path: the DEM GeoTIFF (one band), or its tiles: a folder, a glob pattern or a list.
        units: vertical unit of its values: ``metre``, ``foot`` or ``us_survey_foot``.
        crs: CRS to assume when the file has none.
        nodata: nodata value overriding the file's own.
    """

    def __init__(
        self,
        path: str | Sequence[str],
        units: str = "metre",
        crs: str | None = None,
        nodata: float | None = None,
    ) -> None:
        if units not in UNITS:
            raise PrepareError(
                f"dem.units={units!r} is not one of {', '.join(UNITS)}; set dem.units"
            )
        paths = find_rasters(path, "dem.path")
        self.raster = RasterInput(paths, "dem", crs=crs, nodata=nodata, setting="dem.path")
        self.units = units

    def elevation(self, grid: Grid) -> np.ndarray:
        """Elevation in metres on the grid (NaN where the DEM has no data).

        Warns when elevations are implausible in metres (a DEM in feet read as metres).
        """
        metres = warp(self.raster, grid) * np.float32(UNITS[self.units])
        finite = metres[np.isfinite(metres)]
        if finite.size and (finite.min() < PLAUSIBLE_M[0] or finite.max() > PLAUSIBLE_M[1]):
            log.warning(
                "%s: elevations %.0f to %.0f m are implausible; if the DEM is in feet set "
                "dem.units=foot",
                self.raster.name,
                finite.min(),
                finite.max(),
            )
        return metres
