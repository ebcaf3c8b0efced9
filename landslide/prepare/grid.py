"""The target grid of a prepared domain, and warping every input onto it.

The paper resamples all layers to 10 m by bilinear interpolation on one grid. Here the grid
is a projected CRS in metres (by default the UTM zone of the area's centre), ``res`` metre
square pixels aligned to multiples of ``res``, covering the overlap of every input and the
area of interest. An input in several tiles (see :mod:`landslide.prepare.tiles`) is
mosaicked on the fly by :func:`warp`.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
import shapely
from pyproj import CRS, Transformer
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
class TileSummary:
    """What the tiles of one input share.

    Attributes:
        dtype: the data type of the band read.
        nodata_declared: whether the config or every tile declares a nodata value.
    """

    dtype: np.dtype
    nodata_declared: bool


@dataclass(frozen=True)
class RasterInput:
    """One input raster band, possibly in several tiles, and how to read it.

    Attributes:
        paths: the files, tiles of one product (see :mod:`landslide.prepare.tiles`), a tuple
            even for one file; where they overlap the first one wins.
        key: the config key it came from (``pre``, ``dem``, ...), for messages.
        band: 1-based band index, the same in every tile or one per tile.
        crs: CRS to assume when a file has none.
        nodata: nodata value overriding the files' own.
        setting: the config key of the paths (``post.files.red``), for messages; empty for
            the key itself.
    """

    paths: tuple[Path, ...]
    key: str
    band: int | tuple[int, ...] = 1
    crs: str | None = None
    nodata: float | None = None
    setting: str = ""

    @property
    def name(self) -> str:
        """The file, or the setting and its number of tiles, for messages."""
        if len(self.paths) == 1:
            return str(self.paths[0])
        return f"{self.setting or self.key} ({len(self.paths)} files)"

    def tiles(self) -> list[tuple[Path, int]]:
        """``(path, band)`` of every tile, in mosaic order."""
        bands = self.band if isinstance(self.band, tuple) else (self.band,) * len(self.paths)
        return list(zip(self.paths, bands, strict=True))

    def source_crs(self, src: rasterio.DatasetReader, path: Path | None = None) -> CRS:
        """A file's CRS, or the configured one.

        Raises:
            PrepareError: if neither exists.
        """
        if self.crs is not None:
            return CRS.from_user_input(self.crs)
        if src.crs is None:
            raise PrepareError(
                f"{path or self.paths[0]}: has no CRS; set {self.key}.crs=EPSG:<code> to the CRS "
                "it was exported in"
            )
        return CRS.from_user_input(src.crs)

    def footprint(self, crs: CRS) -> shapely.Geometry:
        """The union of the tiles' bounding boxes in ``crs``."""
        boxes = []
        for path, _ in self.tiles():
            with open_raster(path, self.setting or self.key) as src:
                crs_of_file = self.source_crs(src, path)
                bounds = transform_bounds(crs_of_file, crs, *src.bounds, densify_pts=21)
            boxes.append(shapely.box(*bounds))
        return boxes[0] if len(boxes) == 1 else shapely.union_all(boxes)

    def check_tiles(self) -> TileSummary:
        """Check that every tile has the band and the first tile's band count and data type.

        Raises:
            PrepareError: naming the tile that differs, or lacks the band.
        """
        first: tuple[Path, int, str] | None = None
        declared = self.nodata is not None
        every_declares = True
        for path, band in self.tiles():
            with open_raster(path, self.setting or self.key) as src:
                if band > src.count:
                    raise PrepareError(
                        f"{path}: has {src.count} bands, band {band} asked; fix {self.key}"
                    )
                count, dtype = src.count, src.dtypes[band - 1]
                every_declares &= src.nodata is not None
            if first is None:
                first = (path, count, dtype)
            elif (count, dtype) != first[1:]:
                raise PrepareError(
                    f"{path}: {count} bands of {dtype}, unlike {first[0]} ({first[1]} bands of "
                    f"{first[2]}); the files of {self.setting or self.key} must be tiles of one "
                    "product"
                )
        assert first is not None, "a raster input has at least one file"
        return TileSummary(np.dtype(first[2]), declared or every_declares)


def _inside(
    src: rasterio.DatasetReader, crs: CRS, grid: Grid, resampling: Resampling
) -> np.ndarray:
    """The grid pixels a tile resamples from neighbours on every side.

    For bilinear, those between its outermost pixel centres; for nearest, all it covers.
    """
    inset = 0.5 if resampling != Resampling.nearest else 0.0
    corners = [(inset, inset), (src.width - inset, inset)]
    corners += [(src.width - inset, src.height - inset), (inset, src.height - inset)]
    polygon = shapely.Polygon([src.transform @ corner for corner in corners])
    polygon = shapely.segmentize(polygon, max(polygon.length / 400, abs(src.transform.a)))
    to_grid = Transformer.from_crs(crs, grid.crs, always_xy=True)
    polygon = shapely.transform(polygon, lambda xy: np.column_stack(to_grid.transform(*xy.T)))
    return rasterio.features.geometry_mask(
        [polygon], out_shape=grid.shape, transform=grid.transform, invert=True
    )


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
    raster: RasterInput,
    grid: Grid,
    resampling: Resampling = Resampling.bilinear,
    fill: float | None = None,
) -> np.ndarray:
    """Reproject one band onto the grid, mosaicking its tiles on the fly.

    Each tile is reprojected in turn (GDAL reads it block by block, never whole) and fills
    the pixels no earlier tile gave a value, so overlaps take the first tile. Tiles may be in
    different CRSs. Within half a pixel of a tile's edge, bilinear resampling lacks the
    neighbours beyond it; such a pixel is taken from a later tile that holds it inside, if
    any, so tiles join without a seam.

    Args:
        raster: the band to read.
        grid: the target grid.
        resampling: bilinear for continuous values (the paper's), nearest for classes.
        fill: value left out before resampling in tiles that declare no nodata (a detected
            fill, see :mod:`landslide.prepare.fill`); the config's and the file's nodata take
            precedence.

    Returns:
        float32 array on the grid; NaN where no tile has data (outside them, nodata, NaN).

    Raises:
        PrepareError: if the tiles differ in band count or data type, or lack the band.
    """
    raster.check_tiles()
    out: np.ndarray | None = None
    at_edge: np.ndarray | None = None  # pixels taken from a tile's edge
    mosaic = len(raster.paths) > 1
    for path, band in raster.tiles():
        part = np.full(grid.shape, np.nan, dtype=np.float32)
        with open_raster(path, raster.setting or raster.key) as src:
            crs = raster.source_crs(src, path)
            nodata = next((v for v in (raster.nodata, src.nodata, fill) if v is not None), None)
            reproject(
                source=rasterio.band(src, band),
                destination=part,
                src_crs=crs,
                src_nodata=nodata,
                dst_transform=grid.transform,
                dst_crs=grid.crs,
                dst_nodata=np.nan,
                resampling=resampling,
            )
            inside = _inside(src, crs, grid, resampling) if mosaic else None
        if out is None:
            out = part
            at_edge = np.isfinite(part) & ~inside if inside is not None else None
        else:
            assert at_edge is not None and inside is not None, "set for every tile of a mosaic"
            take = np.isfinite(part) & (np.isnan(out) | (at_edge & inside))
            out[take] = part[take]
            at_edge[take] = ~inside[take]
        if not np.isnan(out).any() and (at_edge is None or not at_edge.any()):
            break
    assert out is not None, "a raster input has at least one file"
    return out
