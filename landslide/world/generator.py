"""The embedded default world: seeded synthetic study areas, so the project runs offline.

Each simulated domain imitates one of the paper's study areas (Section II, Table I) on a
``size`` x ``size`` grid of 10 m pixels in the domain's UTM zone, centred near its epicentre,
and is written in the same layout as a domain prepared from real imagery
(:class:`~landslide.layout.DomainFiles`). The physics lives in the sibling modules:
terrain (:mod:`~landslide.world.terrain`), land cover and parcels
(:mod:`~landslide.world.cover`), landslides, old scars, building sites and forest clearings
(:mod:`~landslide.world.objects`), and the reflectance of each date with its confounders
(:mod:`~landslide.world.render`). Every noise field is a
:class:`~landslide.world.noise.NoiseField`, defined for the whole scene but evaluated tile
by tile.

Generation streams over ``TILE_PX`` tiles in three passes, so memory is bounded by a few
tiles and the coarse maps (1 / 16 of the scene) whatever the scene size:

1. a sparse sample of the land-cover scores gives the thresholds of each class's share;
2. the likelihood of landslides, old scars, building sites and clearings is summed into
   coarse maps,
   from which these objects are drawn for the whole scene;
3. each tile is rendered (pre and post reflectance, NDVI, slope, hillshade) and written as a
   window of ``stack.tif`` and ``mask.tif``; the inventory's polygons are traced per tile
   and merged across tiles.

Files: ``stack.tif`` (10 bands, :data:`~landslide.bands.BANDS`), ``mask.tif``,
``inventory.gpkg`` (one polygon per landslide), ``stats.json`` and ``world.json`` (the
parameters and each file's size and SHA-256, for the cache). A domain is written into a
temporary folder and renamed into place when complete; a cached domain whose files no longer
match their checksums (truncated, overwritten) is generated again.
"""

import dataclasses
import json
import logging
import math
import shutil
import tempfile
import time
import uuid
import zlib
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

from landslide import checksums
from landslide.band_stats import compute_band_stats
from landslide.bands import BANDS
from landslide.features.spectral import ndvi
from landslide.features.terrain import sun_position
from landslide.layout import DomainFiles
from landslide.world import objects
from landslide.world.cover import CoverModel, classify, cover_thresholds, make_parcels
from landslide.world.noise import NoiseField, white_noise
from landslide.world.objects import Ellipses, Footprint, Rectangles
from landslide.world.params import LAND_COVERS, RES, CloudParams, WorldParams, plain
from landslide.world.render import Sky, TileGround, render
from landslide.world.terrain import Terrain, TerrainTile, Window

logger = logging.getLogger(__name__)

#: Bump when the generator's output changes for the same parameters: cached worlds regenerate.
GENERATOR_VERSION = 4
#: The inventory GeoPackage's ``last_change`` stamp, fixed (see ``_write_inventory``).
_GPKG_TIMESTAMP = "2000-01-01T00:00:00.000Z"
#: Name of the parameter record in each generated domain folder.
RECORD_NAME = "world.json"
#: Key of the record's file manifest (size and SHA-256 of each file, see ``checksums``).
FILES_KEY = "files"
#: Side of the tiles the scene is generated and written in (a multiple of the file blocks).
TILE_PX = 512
# Domain config keys the generator reads (``role`` is not one: it does not change the data).
_DOMAIN_KEYS = ("name", "crs", "epicentre", "pre_date", "post_date")
_BLOCK = 256
# GDAL's block cache while writing and reading a domain (MB): keeps memory bounded.
_GDAL_CACHE_MB = 64
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


def simulation_seed(seed: int, name: str) -> int:
    """The seed of one simulated domain, derived from the world seed and its name (the
    sample pools have their own, :func:`landslide.data.sampling.domain_seed`).

    Uses :class:`numpy.random.SeedSequence` over ``(seed, crc32(name))``; Python's ``hash()``
    is randomised per process and would not do.

    Args:
        seed: the world seed (>= 0).
        name: the domain name.

    Returns:
        A 63-bit non-negative integer.
    """
    state = np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def world_record(domain: Mapping[str, Any], world: Mapping[str, Any], size: int, seed: int) -> dict:
    """The parameters a generated domain depends on, as stored in its ``world.json``.

    Args:
        domain: the domain config (name, crs, epicentre, dates; ``role`` is not part of it).
        world: the domain's generator parameters.
        size: grid side in pixels.
        seed: the domain's seed (see :func:`simulation_seed`).

    Returns:
        A JSON-compatible dict; two calls agree exactly when the output would be identical.
    """
    record = {
        "generator_version": GENERATOR_VERSION,
        "size": int(size),
        "seed": int(seed),
        "res": RES,
        "domain": {k: plain(domain[k]) for k in _DOMAIN_KEYS},
        "world": plain(world),
    }
    return json.loads(json.dumps(record))


def generate_domain(
    domain: Mapping[str, Any], world: Mapping[str, Any], out_dir: Path, size: int, seed: int
) -> DomainFiles:
    """Simulate one study area and write it as a prepared domain.

    Args:
        domain: the domain config: ``name``, ``crs`` (a UTM CRS in metres), ``epicentre``
            (``lat``, ``lon``), ``pre_date`` and ``post_date`` (ISO dates).
        world: the domain's generator parameters (see :class:`WorldParams`).
        out_dir: the domain folder to create or replace.
        size: grid side in pixels (10 m each); ``WorldParams.full_size_px()`` gives the
            study area's full extent.
        seed: the domain's seed; the same seed gives byte-identical files.

    Returns:
        The domain's files (stack, mask, inventory, stats, and ``world.json``).

    Raises:
        ValueError: if the parameters are invalid.
    """
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    params = WorldParams.from_mapping(world)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        files = DomainFiles(tmp)
        with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB):  # GDAL's default is 5% of the RAM
            share = _Scene(domain, params, size, seed).write(files)
            compute_band_stats(files.stack, BANDS).save(files.stats)
        record = world_record(domain, world, size, seed)
        record[FILES_KEY] = checksums.manifest(tmp, _checked_files(files))
        (tmp / RECORD_NAME).write_text(json.dumps(record, indent=2))
        _move_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "world: generated domain %s (%d px, landslide share %.4f) in %.1f s",
        domain["name"],
        size,
        share,
        time.perf_counter() - start,
    )
    return DomainFiles(out_dir)


def ensure_world(
    root: Path,
    domains: Mapping[str, Mapping[str, Any]],
    worlds: Mapping[str, Mapping[str, Any]],
    size: int,
    seed: int,
) -> dict[str, DomainFiles]:
    """Generate the default world under ``root``, reusing every domain that is up to date.

    A domain is regenerated when its folder lacks a file, its ``world.json`` differs from
    the current parameters, size, seed or :data:`GENERATOR_VERSION`, or a file differs in
    size or SHA-256 from the record (a truncated or overwritten file; hashing costs about
    0.1 s per 1024 px domain). A domain cached before checksums were recorded is
    regenerated once (the same seed gives byte-identical files).

    Args:
        root: folder holding one sub-folder per domain.
        domains: domain configs by name (``conf/domain/*.yaml``).
        worlds: generator parameters by domain name (the configs' ``world`` blocks).
        size: grid side in pixels.
        seed: world seed; each domain derives its own with :func:`simulation_seed`.

    Returns:
        The files of every domain, by name.

    Raises:
        ValueError: if a domain has no generator parameters.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    out: dict[str, DomainFiles] = {}
    for name, domain in domains.items():
        if name not in worlds or worlds[name] is None:
            raise ValueError(
                f"domain '{name}' has no world parameters; add a 'world:' block to "
                f"conf/domain/{name}.yaml"
            )
        files = DomainFiles(root / name)
        dseed = simulation_seed(seed, name)
        stale = _stale(files, world_record(domain, worlds[name], size, dseed))
        if stale is None:
            logger.debug("world: reusing domain %s", name)
        else:
            logger.log(stale[0], "world: domain %s %s; generating it again", name, stale[1])
            generate_domain(domain, worlds[name], files.root, size, dseed)
        out[name] = files
    return out


# --- simulation -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Objects:
    """The scene's discrete objects: landslides, old scars, building sites, clearings."""

    landslides: Ellipses
    scars: Ellipses
    sites: Rectangles
    clearings: Rectangles


class _Scene:
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
        self.terrain = Terrain(p, next(seeds), scene, size / 2.0, self.suns)
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
        spacing = p.road_spacing_m / RES
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
        """Pass 2: coarse likelihood maps, then the scene's landslides, scars, sites and
        clearings."""
        p = self.p
        cells = -(-self.size // objects.BLOCK)
        names = ("slides", "scars", "sites", "clearings", "gx", "gy")
        maps = {k: np.zeros((cells, cells)) for k in names}
        proneness = np.array([_PRONENESS[c] for c in LAND_COVERS], np.float32)
        site_covers = np.isin(
            np.arange(len(LAND_COVERS)), [LAND_COVERS.index(c) for c in _SITE_COVERS]
        )
        for window in self.tiles():
            terrain = self.terrain.tile(window)
            cover = classify(self.cover.scores(window, terrain), thresholds)
            logistic = 1.0 / (1.0 + np.exp(-(terrain.slope - p.slope_deg) / p.slope_spread_deg))
            geology = np.exp(p.clustering * self._field(self.geology, window))
            prone = logistic * proneness[cover] * geology
            shake = objects.shaking(p, window, self.origin, self.epicentre)
            cell = tuple(
                slice(s.start // objects.BLOCK, -(-s.stop // objects.BLOCK)) for s in window.slices
            )
            maps["slides"][cell] = objects.block_sum(prone * shake)
            maps["scars"][cell] = objects.block_sum(prone)
            maps["sites"][cell] = objects.block_sum(
                site_covers[cover] & (terrain.slope < _SITE_SLOPE)
            )
            maps["clearings"][cell] = objects.block_sum(
                (cover == _FOREST) & (terrain.slope < p.clearing_max_slope_deg)
            )
            maps["gx"][cell] = objects.block_sum(terrain.dz_dx)
            maps["gy"][cell] = objects.block_sum(terrain.dz_dy)
        rng = np.random.default_rng(self.objects_seed)
        scene = (self.size, self.size)
        area_m2 = self.size * self.size * RES * RES
        gradient = (maps["gx"], maps["gy"])
        areas = objects.landslide_areas(p, p.landslide_share * area_m2, rng)
        partial = rng.random(areas.size) < p.partial
        strength = np.where(partial, rng.uniform(0.35, 0.75, areas.size), 1.0)
        slides = objects.ellipses(p, areas, maps["slides"], gradient, scene, rng, strength)
        scar_areas = objects.landslide_areas(p, p.scar_share * area_m2, rng)
        reveg = rng.uniform(*p.scar_revegetation, scar_areas.size)
        scars = objects.ellipses(p, scar_areas, maps["scars"], gradient, scene, rng, 1.0 - reveg)
        scars = dataclasses.replace(scars, rock=np.zeros_like(scars.rock))  # weathered soil
        sites = objects.rectangles(
            p.construction_share, p.construction_area_m2, maps["sites"], scene, rng
        )
        clearings = objects.rectangles(
            p.clearing_share, p.clearing_area_m2, maps["clearings"], scene, rng, _CLEARED
        )
        return _Objects(slides, scars, sites, clearings)

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
            fresh_bars=self._field(self.bars, window) > norm.ppf(1.0 - p.bars_fresh),
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
        ``road_share`` of the landscape where a second field is high, and the roads where a
        third field is high are new (post image only).
        """
        p = self.p
        net, reach, new = self.roads
        f = self._field(net, window.grow(1))
        gy, gx = np.gradient(f)
        distance = np.abs(f[1:-1, 1:-1]) / (np.hypot(gy, gx)[1:-1, 1:-1] + 1e-6)
        line = _ROAD_COVER * np.clip(0.5 + _ROAD_HALF_PX - distance, 0.0, 1.0)
        wet = np.isin(cover, [LAND_COVERS.index("water"), LAND_COVERS.index("river_bar")])
        keep = (self._field(reach, window) > norm.ppf(1.0 - p.road_share)) & ~wet
        keep &= terrain.slope < p.road_max_slope_deg
        post = np.where(keep, line, 0.0).astype(np.float32)
        is_new = self._field(new, window) > norm.ppf(1.0 - p.road_new)
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


# --- files ------------------------------------------------------------------------------


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


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the complete folder ``tmp`` (renames only)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.old")
        out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except OSError:
        if not out_dir.exists():  # not a concurrent writer that finished first
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_temporaries(root: Path, age_s: float = 3600.0) -> None:
    """Delete folders left by interrupted generations (older than ``age_s``)."""
    now = time.time()
    for path in root.glob(".*.tmp"):
        if path.is_dir() and now - path.stat().st_mtime > age_s:
            shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(".*.old"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _checked_files(files: DomainFiles) -> list[str]:
    """The names of the files a domain's record checksums."""
    return [p.name for p in (files.stack, files.mask, files.inventory, files.stats)]


def _stale(files: DomainFiles, record: Mapping[str, Any]) -> tuple[int, str] | None:
    """Why a cached domain cannot be reused (a log level and a reason), or None."""
    try:
        stored = json.loads((files.root / RECORD_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return logging.DEBUG, "has no readable record"
    recorded = stored.pop(FILES_KEY, None) if isinstance(stored, dict) else None
    if stored != record:
        return logging.DEBUG, "was made with other parameters"
    if not isinstance(recorded, dict) or set(recorded) != set(_checked_files(files)):
        return logging.INFO, "has no checksums (cached by an older version)"
    problem = checksums.mismatch(files.root, recorded)
    if problem is not None:
        return logging.WARNING, f"is damaged ({problem})"
    return None
