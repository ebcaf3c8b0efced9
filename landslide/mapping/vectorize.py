"""Landslide polygons from a binary map delivered in strips of rows, with zonal statistics.

rasterio's ``shapes`` traces a whole array at once; a scene-sized array is what streaming
avoids, so this traces each strip, links the pieces that continue across a strip's last
row, and unions a landslide's pieces once nothing below can reach it. Statistics (pixel
count, probability sum and maximum, slope sum, ignored reference pixels) are summed per
piece with scipy and merged with the pieces, so they are exact for the whole polygon.
Connectivity is 4 (edge neighbours), as in the traced polygons.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from scipy import ndimage

FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


@dataclass
class _Component:
    """A landslide under construction: its traced pieces and summed statistics."""

    pieces: list[shapely.Geometry] = field(default_factory=list)
    pixels: int = 0
    prob_sum: float = 0.0
    prob_max: float = 0.0
    slope_sum: float = 0.0
    ignored: int = 0

    def absorb(self, other: "_Component") -> None:
        self.pieces += other.pieces
        self.pixels += other.pixels
        self.prob_sum += other.prob_sum
        self.prob_max = max(self.prob_max, other.prob_max)
        self.slope_sum += other.slope_sum
        self.ignored += other.ignored


class StreamingVectorizer:
    """Collect a binary map strip by strip; :meth:`finish` returns its polygons.

    Args:
        transform: the scene's affine transform.
        crs: the scene's CRS (projected, metres).
        min_area: landslides smaller than this (m²) are dropped as specks.
    """

    def __init__(self, transform: Affine, crs: CRS, min_area: float = 0.0) -> None:
        self.transform = transform
        self.crs = crs
        self.pixel_area = abs(transform.a * transform.e)
        self.min_pixels = int(np.ceil(min_area / self.pixel_area - 1e-9))
        self.has_slope = False
        self._open: dict[int, _Component] = {}
        self._bottom: np.ndarray | None = None  # open component id of each last-row pixel
        self._next_row = 0
        self._next_id = 1
        self._done: list[_Component] = []
        self.dropped = 0

    def add(
        self,
        row: int,
        landslide: np.ndarray,
        probability: np.ndarray,
        slope: np.ndarray | None = None,
        ignored: np.ndarray | None = None,
    ) -> None:
        """Add the strip of rows starting at ``row`` (strips must come in order).

        Args:
            row: the strip's first row in the scene.
            landslide: bool [rows, width].
            probability: float [rows, width], summarised per landslide.
            slope: slope in degrees, for each landslide's mean slope.
            ignored: bool, reference pixels that are unlabelled (for evaluation).
        """
        if row != self._next_row:
            raise ValueError(f"strip starts at row {row}, expected {self._next_row}")
        self._next_row = row + landslide.shape[0]
        self.has_slope |= slope is not None
        labels, count = ndimage.label(landslide, FOUR_CONNECTED)
        pieces = self._pieces(row, labels, count, probability, slope, ignored)
        # Link pieces touching the strip's first row to the open components above them.
        parent = {key: key for key in [*self._open, *(-i for i in range(1, count + 1))]}

        def find(key: int) -> int:
            while parent[key] != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        if self._bottom is not None and count:
            both = (self._bottom > 0) & (labels[0] > 0)
            for above, below in set(zip(self._bottom[both], labels[0][both], strict=True)):
                parent[find(int(above))] = find(-int(below))
        groups: dict[int, _Component] = {}
        members: dict[int, int] = {}
        for key in parent:
            root = find(key)
            piece = self._open[key] if key > 0 else pieces[-key - 1]
            if root not in groups:
                groups[root] = _Component()
            groups[root].absorb(piece)
            members[key] = root
        # A group is still open if one of its pieces touches this strip's last row.
        ids = {root: self._new_id() for root in groups}
        last = labels[-1]
        open_roots = {members[-int(v)] for v in np.unique(last[last > 0])}
        self._open = {ids[r]: g for r, g in groups.items() if r in open_roots}
        self._finish_components(g for r, g in groups.items() if r not in open_roots)
        lookup = np.zeros(count + 1, np.int64)
        for i in range(1, count + 1):
            lookup[i] = ids[members[-i]] if members[-i] in open_roots else 0
        self._bottom = lookup[last]

    def finish(self) -> gpd.GeoDataFrame:
        """The landslides of the whole map, one polygon each, with their attributes.

        The attributes are ``area_m2``, ``mean_prob``, ``max_prob``, ``mean_slope`` (if a
        slope was given), ``ignored_share`` (if reference labels were given), centroid
        ``x``/``y`` in the scene's CRS and ``lon``/``lat``.
        """
        self._finish_components(self._open.values())
        self._open, self._bottom = {}, None
        geometries = [shapely.union_all(c.pieces) for c in self._done]
        columns: dict[str, list[float]] = {
            "area_m2": [c.pixels * self.pixel_area for c in self._done],
            "mean_prob": [c.prob_sum / c.pixels for c in self._done],
            "max_prob": [c.prob_max for c in self._done],
        }
        if self.has_slope:
            columns["mean_slope"] = [c.slope_sum / c.pixels for c in self._done]
        columns["ignored_share"] = [c.ignored / c.pixels for c in self._done]
        centroids = shapely.centroid(np.asarray(geometries, dtype=object))
        x = shapely.get_x(centroids) if geometries else np.zeros(0)
        y = shapely.get_y(centroids) if geometries else np.zeros(0)
        lon, lat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True).transform(x, y)
        frame = gpd.GeoDataFrame(
            {
                "id": np.arange(1, len(geometries) + 1),
                **columns,
                "x": x,
                "y": y,
                "lon": np.asarray(lon),
                "lat": np.asarray(lat),
            },
            geometry=gpd.GeoSeries(geometries, crs=self.crs),
            crs=self.crs,
        )
        return frame.astype({"id": "int64"})

    def _pieces(
        self,
        row: int,
        labels: np.ndarray,
        count: int,
        probability: np.ndarray,
        slope: np.ndarray | None,
        ignored: np.ndarray | None,
    ) -> list[_Component]:
        if count == 0:
            return []
        index = np.arange(1, count + 1)
        pixels = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        prob_sum = ndimage.sum_labels(probability, labels, index)
        prob_max = ndimage.maximum(probability, labels, index)
        slope_sum = ndimage.sum_labels(slope, labels, index) if slope is not None else 0 * pixels
        ignored_n = (
            ndimage.sum_labels(ignored, labels, index) if ignored is not None else 0 * pixels
        )
        geoms: list[list[shapely.Geometry]] = [[] for _ in range(count)]
        transform = self.transform @ Affine.translation(0, row)
        for geom, value in rasterio.features.shapes(
            labels.astype(np.int32), mask=labels > 0, connectivity=4, transform=transform
        ):
            geoms[int(value) - 1].append(shapely.geometry.shape(geom))
        return [
            _Component(
                geoms[i],
                int(pixels[i]),
                float(prob_sum[i]),
                float(prob_max[i]),
                float(slope_sum[i]),
                int(ignored_n[i]),
            )
            for i in range(count)
        ]

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _finish_components(self, components: Iterable[_Component]) -> None:
        for component in components:
            if component.pixels >= max(self.min_pixels, 1):
                self._done.append(component)
            else:
                self.dropped += 1
