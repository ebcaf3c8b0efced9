"""The simulation of one study area: its fields, its objects, and the passes that write it.

Each simulated domain imitates one of the paper's study areas (Section II, Table I) on a
``size`` x ``size`` grid of 10 m pixels in the domain's UTM zone, centred near its epicentre.
The physics lives in the sibling modules: terrain (:mod:`~landslide.world.terrain`), land
cover and parcels (:mod:`~landslide.world.cover`), landslides, old scars, building sites and
forest clearings (:mod:`~landslide.world.objects`), and the reflectance of each date with its
confounders (:mod:`~landslide.world.render`). Every noise field is a
:class:`~landslide.world.noise.NoiseField`, defined for the whole scene but evaluated tile
by tile.

:class:`Scene` streams over ``TILE_PX`` tiles in three passes, so memory is bounded by a few
tiles and the coarse maps (1 / 16 of the scene) whatever the scene size:

1. a sparse sample of the land-cover scores gives the thresholds of each class's share;
2. the likelihood of landslides, old scars, building sites and clearings is summed into
   coarse maps, from which these objects are drawn for the whole scene;
3. each tile is rendered (pre and post reflectance, NDVI, slope, hillshade) and written as a
   window of ``stack.tif`` and ``mask.tif``; the inventory's polygons are traced per tile
   and merged across tiles.
"""

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
import rasterio.features
import rasterio.windows
import shapely
from pyproj import Transformer
from rasterio.transform import Affine, from_origin
from scipy.stats import norm

from landslide.bands import BANDS
from landslide.features.spectral import ndvi
from landslide.features.terrain import sun_position
from landslide.layout import DomainFiles
from landslide.world import objects
from landslide.world.cover import CoverModel, classify, cover_thresholds, make_parcels
from landslide.world.noise import NoiseField, white_noise
from landslide.world.objects import Ellipses, Footprint, Rectangles
from landslide.world.params import LAND_COVERS, RES, CloudParams, WorldParams
from landslide.world.render import Sky, TileGround, render
from landslide.world.terrain import Terrain, TerrainTile, Window

#: Side of the tiles the scene is generated and written in (a multiple of the file blocks).
TILE_PX = 512
#: The inventory GeoPackage's ``last_change`` stamp, fixed (see ``_write_inventory``).
_GPKG_TIMESTAMP = "2000-01-01T00:00:00.000Z"
_BLOCK = 256
# Every COVER_SAMPLE-th pixel (in each direction) samples the land-cover scores.
_COVER_SAMPLE = 4
# Relative likelihood of a landslide starting on each land cover (at equal slope and shaking).
_PRONENESS = {
    "forest": 1.0,
    "grass": 1.0,
    "cropland": 0.3,
    "bare_rock": 0.6,
    "water": 0.0,
    "built": 0.0,
    "river_bar": 0.0,
}
# Building sites go on open ground flatter than this (degrees).
_SITE_SLOPE = 8.0
_SITE_COVERS = ("grass", "cropland", "built")
_FOREST = LAND_COVERS.index("forest")
# Share of the ground a clearing clears: clear-cuts leave seed trees and buffer strips.
_CLEARED = (0.6, 1.0)
# Half-width of a road (pixels) and the largest share of a pixel it covers.
_ROAD_HALF_PX = 0.5
_ROAD_COVER = 0.8


@dataclass(frozen=True)
class _Objects:
    """The scene's discrete objects: landslides, old scars, building sites, clearings."""

    landslides: Ellipses
    scars: Ellipses
    sites: Rectangles
    clearings: Rectangles


class Scene:
    """One simulated domain: its fields, drawn objects, and the passes that write it.

    Args:
        domain: the domain config.
        p: the world parameters.
        size: grid side in pixels.
        seed: the domain's seed.
    """

    def __init__(self, domain: Mapping[str, Any], p: WorldParams, size: int, seed: int) -> None:
        self.p = p
        self.size = size
        self.crs = str(domain["crs"])
        scene = (size, size)
        seeds = iter(np.random.SeedSequence(seed).generate_state(20, np.uint32).tolist())
        lat, lon = float(domain["epicentre"]["lat"]), float(domain["epicentre"]["lon"])
        to_crs = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
        self.epicentre = to_crs.transform(lon, lat)
        half = size * RES / 2.0
        x0 = RES * round((self.epicentre[0] + p.centre_offset_m[0] - half) / RES)
        y0 = RES * round((self.epicentre[1] + p.centre_offset_m[1] + half) / RES)
        self.origin = (x0, y0)
        self.transform = from_origin(x0, y0, RES, RES)
        self.suns = {d: sun_position(lat, lon, str(domain[f"{d}_date"])) for d in ("pre", "post")}
        self.terrain = Terrain(p.terrain, next(seeds), scene, size / 2.0, self.suns)
        self.cover = CoverModel(p, (next(seeds), next(seeds), next(seeds)), scene)
        self.parcels = make_parcels(p, scene, np.random.default_rng(next(seeds)))
        self.geology = NoiseField(next(seeds), 3.0, 100.0, scene)
        self.edge = (
            NoiseField(next(seeds), 3.0, 4.0, scene),
            NoiseField(next(seeds), 3.0, 16.0, scene),
        )
        self.texture = NoiseField(next(seeds), 2.6, 40.0, scene)
        self.soil_texture = NoiseField(next(seeds), 3.0, 8.0, scene)
        self.bars = NoiseField(next(seeds), 3.0, 30.0, scene)
        spacing = p.confounders.roads.spacing_m / RES
        self.roads = tuple(
            NoiseField(next(seeds), 3.5, c, scene, reach_px=2)
            for c in (spacing, 2 * spacing, spacing)
        )
        self.clouds = {d: self._cloud_field(next(seeds), d) for d in ("pre", "post")}
        self.objects_seed = next(seeds)
        self.noise_seed = next(seeds)

    def _cloud_field(self, seed: int, date: str) -> NoiseField | None:
        """The cloud field of a date (reaching as far as its shadow), or None if clear."""
        cloud: CloudParams = getattr(self.p, date).cloud
        if cloud.cover <= 0:
            return None
        longest = max(_shadow_shift(cloud, self.suns[date]), key=abs)
        reach = abs(math.ceil(longest)) + 2  # beyond the rounded shift
        return NoiseField(seed, 3.5, 50.0, (self.size, self.size), reach_px=reach)

    def tiles(self) -> list[Window]:
        """The tiles of the scene, row by row."""
        n = self.size
        return [
            Window(r, c, min(TILE_PX, n - r), min(TILE_PX, n - c))
            for r in range(0, n, TILE_PX)
            for c in range(0, n, TILE_PX)
        ]

    def write(self, files: DomainFiles) -> float:
        """Run the three passes and write the stack, mask and inventory.

        Returns:
            The share of the scene covered by landslides.
        """
        thresholds = self._cover_thresholds()
        drawn = self._draw_objects(thresholds)
        return self._render(files, thresholds, drawn)

    def _cover_thresholds(self) -> dict[str, float]:
        """Pass 1: land-cover thresholds from every ``_COVER_SAMPLE``-th pixel's scores."""
        samples: dict[str, list[np.ndarray]] = {}
        step = _COVER_SAMPLE
        for window in self.tiles():
            scores = self.cover.scores(window, self.terrain.tile(window))
            for name, score in scores.items():
                samples.setdefault(name, []).append(score[::step, ::step].ravel())
        return cover_thresholds(
            {k: np.concatenate(v) for k, v in samples.items()}, self.p.land_cover
        )

    def _draw_objects(self, thresholds: Mapping[str, float]) -> _Objects:
        """Pass 2: the scene's landslides, scars, sites and clearings, from likelihood maps."""
        maps = self._likelihood_maps(thresholds)
        slides_p, confounders = self.p.landslides, self.p.confounders
        rng = np.random.default_rng(self.objects_seed)
        scene = (self.size, self.size)
        area_m2 = self.size * self.size * RES * RES
        gradient = (maps["gx"], maps["gy"])
        areas = objects.landslide_areas(slides_p, slides_p.share * area_m2, rng)
        partial = rng.random(areas.size) < slides_p.partial
        strength = np.where(partial, rng.uniform(0.35, 0.75, areas.size), 1.0)
        slides = objects.ellipses(slides_p, areas, maps["slides"], gradient, scene, rng, strength)
        scar_areas = objects.landslide_areas(slides_p, self.p.scars.share * area_m2, rng)
        least, most = self.p.scars.revegetation
        reveg = rng.uniform(least, most, scar_areas.size)
        scars = objects.ellipses(
            slides_p, scar_areas, maps["scars"], gradient, scene, rng, 1.0 - reveg
        )
        scars = dataclasses.replace(scars, rock=np.zeros_like(scars.rock))  # weathered soil
        sites = objects.rectangles(
            confounders.construction.share,
            confounders.construction.area_m2,
            maps["sites"],
            scene,
            rng,
        )
        clearings = objects.rectangles(
            confounders.clearings.share,
            confounders.clearings.area_m2,
            maps["clearings"],
            scene,
            rng,
            _CLEARED,
        )
        return _Objects(slides, scars, sites, clearings)

    def _likelihood_maps(self, thresholds: Mapping[str, float]) -> dict[str, np.ndarray]:
        """Coarse sums of each object's likelihood and of the DEM gradient (``gx``, ``gy``).

        Each cell sums ``objects.BLOCK`` x ``objects.BLOCK`` pixels of the scene.
        """
        p = self.p
        cells = -(-self.size // objects.BLOCK)
        names = ("slides", "scars", "sites", "clearings", "gx", "gy")
        maps = {k: np.zeros((cells, cells)) for k in names}
        proneness = np.array([_PRONENESS[c] for c in LAND_COVERS], np.float32)
        site_covers = np.isin(
            np.arange(len(LAND_COVERS)), [LAND_COVERS.index(c) for c in _SITE_COVERS]
        )
        slope_deg, spread = p.landslides.slope_deg, p.landslides.slope_spread_deg
        for window in self.tiles():
            terrain = self.terrain.tile(window)
            cover = classify(self.cover.scores(window, terrain), thresholds)
            logistic = 1.0 / (1.0 + np.exp(-(terrain.slope - slope_deg) / spread))
            geology = np.exp(p.landslides.clustering * self._field(self.geology, window))
            prone = logistic * proneness[cover] * geology
            shake = objects.shaking(p.shaking, window, self.origin, self.epicentre)
            cell = tuple(
                slice(s.start // objects.BLOCK, -(-s.stop // objects.BLOCK)) for s in window.slices
            )
            maps["slides"][cell] = objects.block_sum(prone * shake)
            maps["scars"][cell] = objects.block_sum(prone)
            maps["sites"][cell] = objects.block_sum(
                site_covers[cover] & (terrain.slope < _SITE_SLOPE)
            )
            maps["clearings"][cell] = objects.block_sum(
                (cover == _FOREST) & (terrain.slope < p.confounders.clearings.max_slope_deg)
            )
            maps["gx"][cell] = objects.block_sum(terrain.dz_dx)
            maps["gy"][cell] = objects.block_sum(terrain.dz_dy)
        return maps

    def _render(
        self, files: DomainFiles, thresholds: Mapping[str, float], drawn: _Objects
    ) -> float:
        """Pass 3: render and write every tile; trace and write the inventory.

        Returns:
            The share of the scene covered by landslides.
        """
        profile = dict(
            driver="GTiff",
            width=self.size,
            height=self.size,
            crs=self.crs,
            transform=self.transform,
            tiled=True,
            blockxsize=_BLOCK,
            blockysize=_BLOCK,
        )
        parts: dict[int, list] = {}
        landslide_px = 0
        with (
            rasterio.open(files.stack, "w", count=len(BANDS), dtype="float32", **profile) as stack,
            rasterio.open(
                files.mask, "w", count=1, dtype="uint8", compress="deflate", **profile
            ) as mask,
        ):
            stack.descriptions = BANDS
            mask.set_band_description(1, "landslide")
            for window in self.tiles():
                layers, labels = self._tile(window, thresholds, drawn)
                win = rasterio.windows.Window(window.col, window.row, window.width, window.height)
                stack.write(np.stack([layers[b] for b in BANDS]), window=win)
                mask.write((labels > 0).astype(np.uint8), 1, window=win)
                landslide_px += int((labels > 0).sum())
                _trace(labels, rasterio.windows.transform(win, self.transform), parts)
        _write_inventory(files.inventory, parts, self.crs)
        return landslide_px / float(self.size * self.size)

    def _tile(
        self, window: Window, thresholds: Mapping[str, float], drawn: _Objects
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The ten bands and the landslide labels of one tile."""
        p = self.p
        terrain = self.terrain.tile(window)
        cover = classify(self.cover.scores(window, terrain), thresholds)
        edge = (self._field(self.edge[0], window), self._field(self.edge[1], window))
        shape = (window.height, window.width)
        slides, scars, sites, clearings = (Footprint.empty(shape) for _ in range(4))
        objects.rasterise_ellipses(drawn.landslides, window, edge, slides, first_id=1)
        objects.rasterise_ellipses(drawn.scars, window, edge, scars, first_id=None)
        objects.rasterise_rectangles(drawn.sites, window, sites)
        objects.rasterise_rectangles(drawn.clearings, window, clearings)
        ground = TileGround(
            cover=cover,
            parcel_ids=self.parcels.ids(window),
            texture=self._field(self.texture, window),
            soil_texture=self._field(self.soil_texture, window),
            fresh_bars=self._field(self.bars, window) > norm.ppf(1.0 - p.confounders.bars_fresh),
            roads=self._roads(window, terrain, cover),
            scars=scars,
            sites=sites,
            clearings=clearings,
            landslides=slides,
        )
        layers = {"slope": terrain.slope, "hillshade": terrain.shade["post"]}
        for i, date in enumerate(("pre", "post")):
            sky = self._sky(window, terrain, date)
            noise = np.stack(
                [
                    white_noise(self.noise_seed + 4 * i + b, window.row, window.col, *shape)
                    for b in range(4)
                ]
            )
            refl = render(p, date, ground, self.parcels, sky, noise)
            layers[f"{date}_blue"], layers[f"{date}_green"], layers[f"{date}_red"] = refl[:3]
            layers[f"{date}_ndvi"] = ndvi(refl[2], refl[3])
        return layers, slides.labels

    @staticmethod
    def _field(field: NoiseField, window: Window, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
        """A noise field on a tile, optionally shifted by (rows, cols)."""
        return field.window(
            window.row + shift[0], window.col + shift[1], window.height, window.width
        )

    def _roads(
        self, window: Window, terrain: TerrainTile, cover: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Road share per pixel and date: the zero lines of a smooth field, on gentle ground.

        The distance of a pixel to the line is ``|f| / |grad f|``; the network reaches the
        ``confounders.roads.share`` of the landscape where a second field is high, and the
        roads where a third field is high are new (post image only).
        """
        roads = self.p.confounders.roads
        net, reach, new = self.roads
        f = self._field(net, window.grow(1))
        gy, gx = np.gradient(f)
        distance = np.abs(f[1:-1, 1:-1]) / (np.hypot(gy, gx)[1:-1, 1:-1] + 1e-6)
        line = _ROAD_COVER * np.clip(0.5 + _ROAD_HALF_PX - distance, 0.0, 1.0)
        wet = np.isin(cover, [LAND_COVERS.index("water"), LAND_COVERS.index("river_bar")])
        keep = (self._field(reach, window) > norm.ppf(1.0 - roads.share)) & ~wet
        keep &= terrain.slope < roads.max_slope_deg
        post = np.where(keep, line, 0.0).astype(np.float32)
        is_new = self._field(new, window) > norm.ppf(1.0 - roads.new)
        return {"pre": np.where(is_new, 0.0, post).astype(np.float32), "post": post}

    def _sky(self, window: Window, terrain: TerrainTile, date: str) -> Sky:
        """Light, thin cloud and cloud shadow of one tile at one date."""
        cloud: CloudParams = getattr(self.p, date).cloud
        field = self.clouds[date]
        shape = (window.height, window.width)
        opacity = shadow = np.zeros(shape, np.float32)
        if field is not None:
            t = norm.ppf(1.0 - cloud.cover)
            dr, dc = _shadow_shift(cloud, self.suns[date])
            opacity = cloud.opacity * np.clip((self._field(field, window) - t) / 0.8, 0.0, 1.0)
            shifted = self._field(field, window, (round(dr), round(dc)))
            shadow = cloud.opacity * np.clip((shifted - t) / 0.8, 0.0, 1.0)
        return Sky(terrain.shade[date], self.suns[date][1], opacity, shadow)


def _shadow_shift(cloud: CloudParams, sun: tuple[float, float]) -> tuple[float, float]:
    """(rows, cols) from a ground pixel to the cloud that shades it: towards the sun."""
    azimuth, altitude = (math.radians(a) for a in sun)
    length = cloud.height_m / math.tan(max(altitude, math.radians(5.0))) / RES
    return -math.cos(azimuth) * length, math.sin(azimuth) * length


def _trace(labels: np.ndarray, transform: Affine, parts: dict[int, list]) -> None:
    """Add the polygons of each landslide id on a tile to ``parts``."""
    for geom, value in rasterio.features.shapes(
        labels, mask=labels > 0, connectivity=4, transform=transform
    ):
        parts.setdefault(int(value), []).append(shapely.geometry.shape(geom))


def _write_inventory(path: Path, parts: Mapping[int, list], crs: str) -> None:
    """One polygon (or multipolygon) per landslide id, merged across tiles."""
    ids = sorted(parts)
    geoms = [parts[i][0] if len(parts[i]) == 1 else shapely.union_all(parts[i]) for i in ids]
    frame = gpd.GeoDataFrame(
        {"landslide_id": np.array(ids, np.int32)},
        geometry=gpd.GeoSeries(geoms, crs=crs),
        crs=crs,
    )
    frame["area_m2"] = frame.geometry.area
    # GDAL stamps a GeoPackage with the time of writing; a fixed stamp keeps the file a pure
    # function of the parameters and seed, like the rasters.
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _GPKG_TIMESTAMP})
    try:
        frame.to_file(path, driver="GPKG", layer="landslides", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
