"""Landslide labels on the target grid, from polygons or from a label raster.

Labels use the mask values of :mod:`landslide.layout`: landslide, stable, ignored.
A polygon inventory labels its polygons landslide and everything else stable (as the
paper's inventories, mapped over whole study areas); a label raster maps its class values
through config, e.g. ``{0: ignore, 1: stable, 2: landslide}``.
"""

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
from pyproj import CRS
from rasterio.enums import Resampling

from landslide.layout import IGNORED, LANDSLIDE, STABLE
from landslide.prepare.errors import PrepareError
from landslide.prepare.grid import Grid, RasterInput, warp
from landslide.prepare.tiles import find_rasters

log = logging.getLogger(__name__)

#: Class names of a label raster's config, and their mask values.
CLASSES: dict[str, int] = {"landslide": LANDSLIDE, "stable": STABLE, "ignore": IGNORED}

#: A label raster's classes when ``inventory.classes`` is null. A configured mapping
#: replaces it whole (``conf/inventory/raster.yaml`` holds null, so Hydra merges nothing).
DEFAULT_CLASSES: dict[int, str] = {0: "ignore", 1: "stable", 2: "landslide"}

#: What a label raster's value without a class can be: an error, or ignored.
UNMAPPED: tuple[str, ...] = ("error", "ignore")


def read_polygons(
    path: str | Path,
    key: str,
    crs: CRS,
    layer: str | None = None,
    assume_crs: str | None = None,
    repair_invalid: bool = False,
) -> gpd.GeoDataFrame:
    """Read a polygon file (GeoPackage, Shapefile, GeoJSON, ...) in ``crs``.

    Args:
        path: the file.
        key: config key, for messages.
        crs: CRS to return the polygons in.
        layer: layer of a multi-layer file.
        assume_crs: CRS to assume when the file has none.
        repair_invalid: repair invalid geometries with ``make_valid`` instead of failing.

    Raises:
        PrepareError: on a missing file or CRS, no polygon, non-polygon or invalid geometry.
    """
    path = Path(path)
    if not path.exists():
        raise PrepareError(f"{path}: no such file; fix {key}.path")
    try:
        frame = gpd.read_file(path, layer=layer)
    except Exception as err:  # pyogrio raises several types for unreadable files
        raise PrepareError(f"{path}: not a readable vector file ({err}); fix {key}.path") from err
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.empty:
        raise PrepareError(f"{path}: holds no geometry; give a file with polygons")
    if frame.crs is None:
        if assume_crs is None:
            raise PrepareError(f"{path}: has no CRS; set {key}.crs=EPSG:<code>")
        frame = frame.set_crs(assume_crs)
    kinds = set(frame.geom_type) - {"Polygon", "MultiPolygon"}
    if kinds:
        raise PrepareError(
            f"{path}: holds {', '.join(sorted(kinds))} geometries; give landslide polygons"
        )
    invalid = ~frame.geometry.is_valid
    if invalid.any():
        if not repair_invalid:
            first = frame.index[invalid][0]
            raise PrepareError(
                f"{path}: {int(invalid.sum())} invalid polygons (first: row {first}, "
                f"{shapely.is_valid_reason(frame.geometry[first])}); fix them or set "
                f"{key}.repair_invalid=true"
            )
        log.warning("%s: repairing %d invalid polygons", path, int(invalid.sum()))
        frame = frame.set_geometry(frame.geometry.make_valid())
    return frame.to_crs(crs)


class PolygonInventory:
    """Landslide polygons in any CRS.

    Args:
        path: polygon file (GeoPackage, Shapefile, GeoJSON).
        layer: layer of a multi-layer file.
        crs: CRS to assume when the file has none.
        repair_invalid: repair invalid polygons instead of failing.
    """

    def __init__(
        self,
        path: str,
        layer: str | None = None,
        crs: str | None = None,
        repair_invalid: bool = False,
    ) -> None:
        self.path = Path(path)
        self.layer = layer
        self.crs = crs
        self.repair_invalid = repair_invalid

    def labels(self, grid: Grid, area: shapely.Geometry) -> tuple[np.ndarray, gpd.GeoDataFrame]:
        """Rasterise the polygons inside ``area`` onto the grid.

        Returns:
            uint8 labels (landslide inside a polygon, stable elsewhere) and the polygons in
            the grid's CRS, clipped to ``area``.

        Raises:
            PrepareError: if no polygon overlaps the area.
        """
        frame = read_polygons(
            self.path, "inventory", grid.crs, self.layer, self.crs, self.repair_invalid
        )
        inside = frame.intersects(area)
        if not inside.any():
            raise PrepareError(
                f"{self.path}: none of its {len(frame)} polygons lies in the imagery's area; "
                "check its CRS and that it belongs to this event"
            )
        if not inside.all():
            log.warning(
                "%s: %d of %d polygons lie outside the imagery's area and are dropped",
                self.path,
                int((~inside).sum()),
                len(frame),
            )
        frame = frame[inside].clip(area)
        labels = rasterio.features.rasterize(
            ((g, LANDSLIDE) for g in frame.geometry),
            out_shape=grid.shape,
            transform=grid.transform,
            fill=STABLE,
            dtype="uint8",
        )
        return labels, frame


class LabelRaster:
    """A raster of classes mapped to landslide / stable / ignore.

    Args:
        path: the label raster, or its tiles: a folder, a glob pattern or a list
            (:mod:`landslide.prepare.tiles`).
        classes: class name (``landslide``, ``stable``, ``ignore``) by pixel value, the
            whole mapping; None for :data:`DEFAULT_CLASSES`.
        crs: CRS to assume when the file has none.
        unmapped: what a value without a class is: ``error`` (the default) or ``ignore``
            (unlabelled, as the raster's nodata).
    """

    def __init__(
        self,
        path: str | Sequence[str],
        classes: Mapping[int, str] | None = None,
        crs: str | None = None,
        unmapped: str = "error",
    ) -> None:
        classes = DEFAULT_CLASSES if classes is None else classes
        unknown = set(classes.values()) - set(CLASSES)
        if unknown:
            raise PrepareError(
                f"inventory.classes maps to {sorted(unknown)}; use {', '.join(CLASSES)}"
            )
        if unmapped not in UNMAPPED:
            raise PrepareError(
                f"inventory.unmapped={unmapped!r} is not one of {', '.join(UNMAPPED)}; set "
                "inventory.unmapped"
            )
        paths = find_rasters(path, "inventory.path")
        self.raster = RasterInput(paths, "inventory", crs=crs, setting="inventory.path")
        self.classes = {int(k): v for k, v in classes.items()}
        self.unmapped = unmapped

    def labels(self, grid: Grid, area: shapely.Geometry) -> tuple[np.ndarray, gpd.GeoDataFrame]:
        """Map the raster's classes onto the grid (nearest neighbour).

        Returns:
            uint8 labels (ignored outside the raster and, with ``unmapped=ignore``, for
            values without a class) and the landslide pixels traced as polygons in the
            grid's CRS.

        Raises:
            PrepareError: if a value has no class (``unmapped=error``) or no pixel is a
                landslide.
        """
        values = warp(self.raster, grid, Resampling.nearest)
        found = np.unique(values[np.isfinite(values)]).astype(int)
        unmapped = sorted(set(found.tolist()) - set(self.classes))
        if unmapped and self.unmapped == "error":
            mapping = {**self.classes, **dict.fromkeys(unmapped, "ignore")}
            written = ", ".join(f"{k}: {v}" for k, v in sorted(mapping.items()))
            raise PrepareError(
                f"{self.raster.name}: values {unmapped} have no class; add them to "
                "inventory.classes (landslide, stable or ignore), which replaces the default, "
                f"e.g. inventory.classes={{{written}}}, or set inventory.unmapped=ignore"
            )
        if unmapped:
            log.warning(
                "%s: values %s have no class; ignored (inventory.unmapped=ignore)",
                self.raster.name,
                unmapped,
            )
        labels = np.full(grid.shape, IGNORED, dtype=np.uint8)
        for value, name in self.classes.items():
            labels[values == value] = CLASSES[name]
        if not (labels == LANDSLIDE).any():
            raise PrepareError(
                f"{self.raster.name}: no landslide pixel in the imagery's area; check "
                "inventory.classes and its CRS"
            )
        return labels, trace_polygons(labels == LANDSLIDE, grid)


def trace_polygons(landslide: np.ndarray, grid: Grid) -> gpd.GeoDataFrame:
    """The connected landslide pixels as polygons in the grid's CRS."""
    shapes = rasterio.features.shapes(
        landslide.astype(np.uint8), mask=landslide, connectivity=4, transform=grid.transform
    )
    geometries = [shapely.geometry.shape(g) for g, _ in shapes]
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries(geometries, crs=grid.crs), crs=grid.crs)
