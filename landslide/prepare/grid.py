"""The target grid of a prepared domain, and warping every input onto it.

The paper resamples all layers to 10 m by bilinear interpolation on one grid. Here the grid
is a projected CRS in metres (by default the UTM zone of the area's centre), ``res`` metre
square pixels aligned to multiples of ``res``, covering the overlap of every input and the
area of interest.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.transform import Affine, from_origin
from rasterio.warp import reproject, transform_bounds

from landslide.prepare.errors import PrepareError


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid.

    Attributes:
        crs: projected CRS in metres.
        transform: affine transform of the top-left corner.
        width: columns.
        height: rows.
    """

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width

    @property
    def res(self) -> float:
        """Pixel size in metres."""
        return self.transform.a

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)``."""
        left, top = self.transform.c, self.transform.f
        return left, top - self.height * self.res, left + self.width * self.res, top

    def centre_lonlat(self) -> tuple[float, float]:
        """Longitude and latitude of the grid's centre."""
        west, south, east, north = transform_bounds(self.crs, "EPSG:4326", *self.bounds)
        return (west + east) / 2.0, (south + north) / 2.0


@dataclass(frozen=True)
class RasterInput:
    """One input raster band and how to read it.

    Attributes:
        path: the file.
        key: the config key it came from (``pre``, ``dem``, ...), for messages.
        band: 1-based band index.
        crs: CRS to assume when the file has none.
        nodata: nodata value overriding the file's.
    """

    path: Path
    key: str
    band: int = 1
    crs: str | None = None
    nodata: float | None = None

    def source_crs(self, src: rasterio.DatasetReader) -> CRS:
        """The file's CRS, or the configured one.

        Raises:
            PrepareError: if neither exists.
        """
        if self.crs is not None:
            return CRS.from_user_input(self.crs)
        if src.crs is None:
            raise PrepareError(
                f"{self.path}: has no CRS; set {self.key}.crs=EPSG:<code> to the CRS it was "
                "exported in"
            )
        return CRS.from_user_input(src.crs)

    def footprint(self, crs: CRS) -> shapely.Polygon:
        """The file's bounding box in ``crs``."""
        with open_raster(self.path, self.key) as src:
            bounds = transform_bounds(self.source_crs(src), crs, *src.bounds, densify_pts=21)
        return shapely.box(*bounds)


def open_raster(path: Path, key: str) -> rasterio.DatasetReader:
    """Open a raster, failing with a one-line message when it is missing or unreadable."""
    if not Path(path).is_file():
        raise PrepareError(f"{path}: no such file; fix {key} in the prepare config")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as err:
        raise PrepareError(f"{path}: not a readable raster ({err}); fix {key}") from err


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 UTM zone holding a point (EPSG 326xx north, 327xx south)."""
    zone = min(int(math.floor((lon + 180.0) / 6.0)) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def check_metric(crs: CRS) -> CRS:
    """Check that a target CRS is projected in metres (slope needs metre pixels).

    Raises:
        PrepareError: if it is geographic or uses other units.
    """
    units = {axis.unit_name for axis in crs.axis_info}
    if not crs.is_projected or not units <= {"metre", "meter"}:
        raise PrepareError(
            f"grid.crs={crs.to_string()} is not a projected CRS in metres ({', '.join(units)}); "
            "set grid.crs to a UTM zone (EPSG:326xx/327xx) or leave it null"
        )
    return crs


def build_grid(footprints: Sequence[tuple[str, shapely.Geometry]], crs: CRS, res: float) -> Grid:
    """The grid covering the overlap of all footprints, aligned to multiples of ``res``.

    Args:
        footprints: ``(name, geometry in crs)`` of every input that must cover the grid,
            with the area of interest among them when there is one.
        crs: the target CRS.
        res: pixel size in metres.

    Raises:
        PrepareError: if an input does not overlap the ones before it.
    """
    area: shapely.Geometry | None = None
    names: list[str] = []
    for name, geometry in footprints:
        overlap = geometry if area is None else shapely.intersection(area, geometry)
        if overlap.is_empty or overlap.area == 0:
            raise PrepareError(
                f"{name}: does not overlap {', '.join(names)}; check its CRS and extent"
            )
        area, names = overlap, [*names, name]
    assert area is not None, "build_grid needs at least one footprint"
    left, bottom, right, top = area.bounds
    left, bottom = math.ceil(left / res) * res, math.ceil(bottom / res) * res
    right, top = math.floor(right / res) * res, math.floor(top / res) * res
    width, height = round((right - left) / res), round((top - bottom) / res)
    if width <= 0 or height <= 0:
        raise PrepareError(f"{', '.join(names)}: overlap narrower than one {res} m pixel")
    return Grid(crs, from_origin(left, top, res, res), width, height)


def warp(
    raster: RasterInput, grid: Grid, resampling: Resampling = Resampling.bilinear
) -> np.ndarray:
    """Reproject one band onto the grid.

    Args:
        raster: the band to read.
        grid: the target grid.
        resampling: bilinear for continuous values (the paper's), nearest for classes.

    Returns:
        float32 array on the grid; NaN where the file has no data (outside it, nodata, NaN).
    """
    with open_raster(raster.path, raster.key) as src:
        if raster.band > src.count:
            raise PrepareError(
                f"{raster.path}: has {src.count} bands, band {raster.band} asked; fix {raster.key}"
            )
        out = np.full(grid.shape, np.nan, dtype=np.float32)
        nodata = raster.nodata if raster.nodata is not None else src.nodata
        reproject(
            source=rasterio.band(src, raster.band),
            destination=out,
            src_crs=raster.source_crs(src),
            src_nodata=nodata,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=resampling,
        )
    return out
