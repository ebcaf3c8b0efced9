"""The embedded default world: seeded synthetic study areas, so the project runs offline.

Each simulated domain imitates one of the paper's study areas (Section II, Table I) on a
``size`` x ``size`` grid of 10 m pixels in the domain's UTM zone, centred near its epicentre,
and is written in the same layout as a domain prepared from real imagery
(:class:`~landslide.data.layout.DomainFiles`). The physics, step by step:

1. **Terrain**: a fractal DEM by spectral synthesis (white noise shaped by a power-law
   spectrum ``P(k) ~ (k^2 + k0^2)^(-beta / 2)``, ``beta`` the spectral exponent, ``1 / k0``
   the largest landform), widened valley floors (``z^valley_exponent``), an optional north-south
   basin, rescaled to the domain's elevation range. Slope and hillshade come from
   :mod:`landslide.features.terrain`; the hillshade band uses the post-event sun.
2. **Land cover**: water, bare rock, cropland, built-up and grass take their configured
   shares of the scene by elevation, slope and smooth noise (water lowest, rock highest and
   steepest, fields and towns on low flats, meadows high); forest takes the rest. Cropland
   is cut into rectangular parcels with their own brightness and vigour.
3. **Reflectance** (blue, green, red, NIR; surface reflectance in [0, 1]) per date: the land
   cover spectra, vegetation dried towards fallow soil by the date's ``greenness``, fallow
   parcels (a share per date: bare fields that appear or disappear between the dates are
   changes that are not landslides), texture noise shared by both dates, topographic
   illumination with each date's sun (C-correction form), the date's per-band gain and
   offset (season, atmosphere) and sensor noise.
4. **Landslides**: initiation points drawn with probability ``shaking x P(slope) x
   proneness(land cover) x exp(clustering x smooth noise)``, ``shaking = exp(-d / decay)``
   with ``d`` the distance to the rupture (a segment through the epicentre) and
   ``P(slope)`` a logistic curve. Areas follow a truncated inverse-gamma distribution
   (Malamud et al., 2004: a power-law tail of density exponent ``exponent`` and a
   rollover), within the domain's range. Each landslide is an
   ellipse elongated downslope (along the aspect) with a rough boundary, clipped to the
   scene; landslides are added until they cover the configured share. In the post image
   they replace the ground cover with the domain's exposed soil/rock colour, with mixed
   pixels at their edges, so they appear as an NDVI drop on slopes.
5. **Files**: ``stack.tif`` (10 bands, :data:`~landslide.bands.BANDS`), ``mask.tif``,
   ``inventory.gpkg`` (one polygon per landslide, from the same label raster as the mask),
   ``stats.json`` and ``world.json`` (the parameters, for the cache). A domain is written
   into a temporary folder and renamed into place when complete.
"""

import json
import logging
import math
import shutil
import tempfile
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import shapely
from pyproj import Transformer
from rasterio.transform import Affine, from_origin

from landslide.bands import BANDS
from landslide.data.layout import DomainFiles
from landslide.data.normalization import compute_band_stats
from landslide.features.spectral import ndvi
from landslide.features.terrain import hillshade, horn_gradient, slope_degrees, sun_position

logger = logging.getLogger(__name__)

#: Bump when the generator's output changes for the same parameters: cached worlds regenerate.
GENERATOR_VERSION = 1
#: Pixel size of every simulated domain, metres (Sentinel-2's 10 m bands).
RES = 10.0
#: Land-cover classes, in the order of the class raster.
LAND_COVERS: tuple[str, ...] = ("forest", "grass", "cropland", "bare_rock", "water", "built")
#: Extra spectra a world defines besides the land covers.
SURFACES: tuple[str, ...] = ("fallow", "landslide")
#: Band order of every spectrum in a world config.
SPECTRAL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir")
#: Name of the parameter record in each generated domain folder.
RECORD_NAME = "world.json"
# Domain config keys the generator reads (``role`` is not one: it does not change the data).
_DOMAIN_KEYS = ("name", "crs", "epicentre", "pre_date", "post_date")

# How strongly each vegetation class dries towards fallow soil when greenness drops.
_GREENNESS_WEIGHT = {"forest": 0.5, "grass": 1.0, "cropland": 1.0}
# Texture amplitude of each class relative to the world's ``texture``.
_TEXTURE_WEIGHT = {
    "forest": 1.0,
    "grass": 0.8,
    "cropland": 0.6,
    "bare_rock": 1.2,
    "water": 0.3,
    "built": 2.0,
}
# Relative likelihood of a landslide starting on each land cover (at equal slope and shaking).
_PRONENESS = {
    "forest": 1.0,
    "grass": 1.0,
    "cropland": 0.3,
    "bare_rock": 0.6,
    "water": 0.0,
    "built": 0.0,
}
# C-correction constant of topographic illumination: (cos i + C) / (cos z + C).
_ILLUMINATION_C = 0.4
# Roughness of a landslide's boundary: pixels of fine noise, and lobes as a share of its width.
_EDGE_PX = 0.6
_LOBES = 0.15
_BLOCK = 256
# Side (pixels, with the synthesis margin) of the scene whose relief spans the elevation range.
_REFERENCE_PX = 1280


@dataclass(frozen=True)
class DateParams:
    """Acquisition conditions of one image date.

    Attributes:
        gain: per-band multiplicative factor (blue, green, red, NIR): season, atmosphere.
        offset: per-band additive reflectance (path radiance, haze).
        greenness: vegetation vigour in [0, 1]; below 1 vegetation dries towards fallow soil.
        fallow: share of cropland parcels that are bare at this date.
    """

    gain: tuple[float, float, float, float]
    offset: tuple[float, float, float, float]
    greenness: float
    fallow: float


@dataclass(frozen=True)
class WorldParams:
    """Generator parameters of one simulated domain (the ``world`` block of a domain config).

    Attributes:
        elevation_m: (lowest, highest) elevation of the DEM.
        spectral_exponent: exponent ``beta`` of the DEM's power spectrum, ``P(k) ~ k^-beta``;
            lower is rougher at short wavelengths. Fractional Brownian surfaces have
            ``2 < beta < 4`` (``beta = 2H + 2``); real landscapes at 10 m roll off more
            steeply below the hillslope scale, and 4.2-4.8 gives realistic slopes.
        landform_m: wavelength of the largest landforms (the spectrum's low-frequency corner).
        valley_exponent: the normalised DEM is raised to this power; above 1 widens valley
            floors and plains and steepens the uplands.
        basin_depth: depth of a north-south basin through the scene centre, as a share of the
            relief (0: none).
        basin_width_m: half-width (Gaussian sigma) of that basin.
        land_cover: share of the scene of each class in :data:`LAND_COVERS` (sum 1).
        reflectance: spectrum (blue, green, red, NIR) of each land cover and of ``fallow``
            (bare field soil) and ``landslide`` (exposed landslide soil/rock).
        parcel_m: mean side of a cropland parcel.
        texture: relative amplitude of the ground texture noise.
        sensor_noise: standard deviation of per-pixel sensor noise (reflectance).
        landslide_share: share of the scene covered by landslides.
        landslide_area_m2: (smallest, largest) landslide area.
        area_exponent: exponent of the power-law tail of the landslide area density.
        area_rollover_m2: most frequent landslide area (the distribution's mode).
        elongation: (min, max) length-to-width ratio of a landslide.
        slope_deg: slope at which the landslide likelihood is half its maximum.
        slope_spread_deg: width of the logistic slope response.
        clustering: standard deviation of the log of a smooth (about 1 km) susceptibility
            field (lithology, soil depth), which clusters landslides; 0 for none.
        shaking_decay_m: e-folding distance of shaking from the rupture.
        fault_strike_deg: strike of the rupture, clockwise from north.
        fault_half_length_m: half-length of the rupture segment (0: a point source).
        centre_offset_m: (east, north) offset of the scene centre from the epicentre.
        pre: conditions of the pre-event image.
        post: conditions of the post-event image.
    """

    elevation_m: tuple[float, float]
    spectral_exponent: float
    landform_m: float
    valley_exponent: float
    basin_depth: float
    basin_width_m: float
    land_cover: dict[str, float]
    reflectance: dict[str, tuple[float, float, float, float]]
    parcel_m: float
    texture: float
    sensor_noise: float
    landslide_share: float
    landslide_area_m2: tuple[float, float]
    area_exponent: float
    area_rollover_m2: float
    elongation: tuple[float, float]
    slope_deg: float
    slope_spread_deg: float
    clustering: float
    shaking_decay_m: float
    fault_strike_deg: float
    fault_half_length_m: float
    centre_offset_m: tuple[float, float]
    pre: DateParams
    post: DateParams

    @classmethod
    def from_mapping(cls, world: Mapping[str, Any]) -> "WorldParams":
        """Parse and check a ``world`` block (see ``conf/domain/*.yaml``).

        Raises:
            ValueError: if a key is missing or a value is out of range.
        """
        w = _plain(world)
        try:
            terrain, slides, shaking = w["terrain"], w["landslides"], w["shaking"]
            basin = terrain.get("basin", {"depth": 0.0, "width_m": 1.0})
            params = cls(
                elevation_m=_floats(terrain["elevation_m"], 2),
                spectral_exponent=float(terrain["spectral_exponent"]),
                landform_m=float(terrain["landform_m"]),
                valley_exponent=float(terrain["valley_exponent"]),
                basin_depth=float(basin["depth"]),
                basin_width_m=float(basin["width_m"]),
                land_cover={k: float(w["land_cover"][k]) for k in LAND_COVERS},
                reflectance={k: _floats(w["reflectance"][k], 4) for k in LAND_COVERS + SURFACES},
                parcel_m=float(w["parcel_m"]),
                texture=float(w["texture"]),
                sensor_noise=float(w["sensor_noise"]),
                landslide_share=float(slides["share"]),
                landslide_area_m2=_floats(slides["area_m2"], 2),
                area_exponent=float(slides["exponent"]),
                area_rollover_m2=float(slides["rollover_m2"]),
                elongation=_floats(slides["elongation"], 2),
                slope_deg=float(slides["slope_deg"]),
                slope_spread_deg=float(slides["slope_spread_deg"]),
                clustering=float(slides["clustering"]),
                shaking_decay_m=float(shaking["decay_m"]),
                fault_strike_deg=float(shaking["fault_strike_deg"]),
                fault_half_length_m=float(shaking["fault_half_length_m"]),
                centre_offset_m=_floats(w["centre_offset_m"], 2),
                pre=_date_params(w["pre"]),
                post=_date_params(w["post"]),
            )
        except KeyError as err:
            raise ValueError(f"world parameters: missing key {err}") from err
        params._check()
        return params

    def _check(self) -> None:
        problems = []
        if not self.elevation_m[0] < self.elevation_m[1]:
            problems.append("terrain.elevation_m must be (low, high) with low < high")
        if not 2.0 <= self.spectral_exponent <= 6.0:
            problems.append("terrain.spectral_exponent must be in [2, 6]")
        if self.landform_m <= 0 or self.valley_exponent <= 0 or self.parcel_m <= 0:
            problems.append("landform_m, valley_exponent and parcel_m must be positive")
        if not 0.0 <= self.basin_depth < 1.0 or self.basin_width_m <= 0:
            problems.append("terrain.basin: depth in [0, 1), width_m > 0")
        shares = self.land_cover.values()
        if min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-3:
            problems.append(f"land_cover shares must be >= 0 and sum to 1, got {sum(shares)}")
        if not 0.0 <= self.landslide_share < 0.5:
            problems.append("landslides.share must be in [0, 0.5)")
        lo, hi = self.landslide_area_m2
        if not 0 < lo < hi or not lo <= self.area_rollover_m2 <= hi:
            problems.append("landslides: 0 < area_m2[0] <= rollover_m2 <= area_m2[1]")
        if self.area_exponent <= 1.0:
            problems.append("landslides.exponent must exceed 1")
        if not 1.0 <= self.elongation[0] <= self.elongation[1]:
            problems.append("landslides.elongation must be (min, max) with 1 <= min <= max")
        if self.slope_spread_deg <= 0 or self.shaking_decay_m <= 0 or self.clustering < 0:
            problems.append(
                "landslides.slope_spread_deg and shaking.decay_m must be positive, "
                "landslides.clustering non-negative"
            )
        for name, date in (("pre", self.pre), ("post", self.post)):
            if not 0.0 <= date.greenness <= 1.0 or not 0.0 <= date.fallow <= 1.0:
                problems.append(f"{name}: greenness and fallow must be in [0, 1]")
        if problems:
            raise ValueError("world parameters: " + "; ".join(problems))


def domain_seed(seed: int, name: str) -> int:
    """A domain's own seed, derived deterministically from the world seed and its name.

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
        seed: the domain's seed (see :func:`domain_seed`).

    Returns:
        A JSON-compatible dict; two calls agree exactly when the output would be identical.
    """
    record = {
        "generator_version": GENERATOR_VERSION,
        "size": int(size),
        "seed": int(seed),
        "res": RES,
        "domain": {k: _plain(domain[k]) for k in _DOMAIN_KEYS},
        "world": _plain(world),
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
        size: grid side in pixels (10 m each).
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
        scene = _simulate(domain, params, size, seed)
        files = DomainFiles(tmp)
        _write_rasters(files, scene, str(domain["crs"]))
        _write_inventory(files.inventory, scene["labels"], scene["transform"], str(domain["crs"]))
        compute_band_stats(files.stack, BANDS).save(files.stats)
        record = world_record(domain, world, size, seed)
        (tmp / RECORD_NAME).write_text(json.dumps(record, indent=2))
        _move_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "world: generated domain %s (%d px, landslide share %.4f) in %.1f s",
        domain["name"],
        size,
        scene["share"],
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

    A domain is regenerated when its folder lacks a file or its ``world.json`` differs from
    the current parameters, size, seed or :data:`GENERATOR_VERSION`.

    Args:
        root: folder holding one sub-folder per domain.
        domains: domain configs by name (``conf/domain/*.yaml``).
        worlds: generator parameters by domain name (the configs' ``world`` blocks).
        size: grid side in pixels.
        seed: world seed; each domain derives its own with :func:`domain_seed`.

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
        dseed = domain_seed(seed, name)
        if _is_current(files, world_record(domain, worlds[name], size, dseed)):
            logger.debug("world: reusing domain %s", name)
        else:
            generate_domain(domain, worlds[name], files.root, size, dseed)
        out[name] = files
    return out


# --- simulation -------------------------------------------------------------------------


def _simulate(domain: Mapping[str, Any], p: WorldParams, size: int, seed: int) -> dict[str, Any]:
    """All rasters of one domain, in memory (float32 / uint8 / int32, ``size`` x ``size``)."""
    rng_terrain, rng_cover, rng_texture, rng_slides, rng_noise = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    lat, lon = float(domain["epicentre"]["lat"]), float(domain["epicentre"]["lon"])
    to_crs = Transformer.from_crs("EPSG:4326", str(domain["crs"]), always_xy=True)
    ex, ey = to_crs.transform(lon, lat)
    half = size * RES / 2.0
    x0 = RES * round((ex + p.centre_offset_m[0] - half) / RES)
    y0 = RES * round((ey + p.centre_offset_m[1] + half) / RES)
    transform = from_origin(x0, y0, RES, RES)
    xs = (x0 + (np.arange(size) + 0.5) * RES).astype(np.float32)
    ys = (y0 - (np.arange(size) + 0.5) * RES).astype(np.float32)

    dem = _dem(p, size, xs, rng_terrain)
    slope = slope_degrees(dem, RES)
    dz_dx, dz_dy = horn_gradient(dem, RES)
    sun = {date: sun_position(lat, lon, str(domain[f"{date}_date"])) for date in ("pre", "post")}
    shade = {date: hillshade(dem, RES, *sun[date]) for date in sun}

    cover = _land_cover(p, dem, slope, rng_cover)
    parcels = _parcels(p, size, rng_cover)
    bare = {date: rng_cover.random(parcels.count) < getattr(p, date).fallow for date in sun}
    shaking = _shaking(p, xs, ys, ex, ey)
    labels, soil, soil_gain = _landslides(p, size, slope, cover, shaking, dz_dx, dz_dy, rng_slides)
    del dz_dx, dz_dy

    texture = _fractal(rng_texture, (size, size), exponent=2.6, corr_px=40.0)
    soil_texture = _fractal(rng_texture, (size, size), exponent=3.0, corr_px=8.0)
    images = {}
    for date in ("pre", "post"):
        refl = _reflectance(p, date, cover, parcels, bare[date], texture)
        if date == "post":
            _expose_soil(p, refl, soil, soil_gain, soil_texture)
        _illuminate(refl, shade[date], sun[date][1])
        conditions: DateParams = getattr(p, date)
        for b in range(4):
            refl[b] *= conditions.gain[b]
            refl[b] += conditions.offset[b]
        refl += rng_noise.standard_normal(refl.shape, dtype=np.float32) * p.sensor_noise
        np.clip(refl, 0.0, 1.0, out=refl)
        images[date] = refl
    stack = np.empty((len(BANDS), size, size), np.float32)
    layers = {
        "slope": slope,
        "hillshade": shade["post"],
        "pre_ndvi": ndvi(images["pre"][2], images["pre"][3]),
        "post_ndvi": ndvi(images["post"][2], images["post"][3]),
    }
    for date in ("pre", "post"):
        for b, colour in ((2, "red"), (1, "green"), (0, "blue")):
            layers[f"{date}_{colour}"] = images[date][b]
    for i, band in enumerate(BANDS):
        stack[i] = layers[band]
    return {
        "stack": stack,
        "mask": (labels > 0).astype(np.uint8),
        "labels": labels,
        "transform": transform,
        "share": float((labels > 0).mean()),
    }


def _fractal(
    rng: np.random.Generator,
    shape: tuple[int, int],
    exponent: float,
    corr_px: float,
    reference_px: int | None = None,
) -> np.ndarray:
    """Zero-mean fractal noise by spectral synthesis.

    Complex white noise is shaped by the amplitude ``(k^2 + k0^2)^(-exponent / 4)`` (power
    spectrum ``~ k^-exponent``; ``2 + 2H`` for a fractional Brownian surface of Hurst
    exponent ``H``) with ``k0 = 1 / corr_px`` flattening wavelengths beyond ``corr_px``
    pixels, and transformed back with an inverse FFT.

    Args:
        rng: random generator.
        shape: output shape.
        exponent: spectral exponent.
        corr_px: the low-frequency corner, in pixels.
        reference_px: None to scale the sample to unit variance; otherwise the field is
            divided by the expected standard deviation of a ``reference_px`` square field, so
            a smaller grid is a window of the same landscape (it holds less of the long
            wavelengths, so less relief) rather than a shrunken copy.

    Returns:
        float32 field of ``shape``.
    """
    h, w = shape
    amplitude = _amplitude(shape, exponent, corr_px)
    spectrum = rng.standard_normal((h, w // 2 + 1)) + 1j * rng.standard_normal((h, w // 2 + 1))
    field = np.fft.irfft2(spectrum * amplitude, s=shape)
    if reference_px is None:
        field -= field.mean()
        field /= field.std() + 1e-12
    else:
        ref = (reference_px, reference_px)
        # irfft2 scales by 1 / (h w); the expected variance of the unscaled field is
        # 2 sum(A^2) / (h w)^2 over the full spectrum (grid-independent after * sqrt(h w)).
        field *= math.sqrt(h * w) / _expected_std(_amplitude(ref, exponent, corr_px), ref)
    return field.astype(np.float32)


def _amplitude(shape: tuple[int, int], exponent: float, corr_px: float) -> np.ndarray:
    """Spectral amplitude on the ``rfft2`` half-plane of ``shape`` (cycles per pixel)."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    amplitude = (kx * kx + ky * ky + (1.0 / corr_px) ** 2) ** (-exponent / 4.0)
    amplitude[0, 0] = 0.0
    return amplitude


def _expected_std(amplitude: np.ndarray, shape: tuple[int, int]) -> float:
    """Expected std of ``irfft2(noise * amplitude) * sqrt(h w)`` for complex unit noise."""
    h, w = shape
    weight = np.full(amplitude.shape[1], 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    return math.sqrt(2.0 * float((amplitude**2 * weight).sum()) / (h * w))


def _dem(p: WorldParams, size: int, xs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Elevation in metres: fractal relief, widened valleys, optional basin.

    The relief is scaled to the landscape, not to the scene: a field of unit variance over a
    reference scene (:data:`_REFERENCE_PX`) is squashed into the elevation range with
    ``0.5 (1 + tanh(f / 1.5))``, so the default scene spans about the configured range and
    smaller scenes have the same slopes with less total relief.
    """
    margin = size // 4  # synthesise beyond the scene so the periodic FFT field does not wrap
    field = _fractal(
        rng,
        (size + margin, size + margin),
        p.spectral_exponent,
        p.landform_m / RES,
        reference_px=_REFERENCE_PX,
    )
    f = field[margin // 2 : margin // 2 + size, margin // 2 : margin // 2 + size]
    z = (0.5 * (1.0 + np.tanh(f / 1.5))) ** p.valley_exponent
    if p.basin_depth > 0:
        dx = (xs - xs.mean()) / p.basin_width_m
        z = z * (1.0 - p.basin_depth * np.exp(-0.5 * dx * dx))[None, :]
    lo, hi = p.elevation_m
    return (lo + (hi - lo) * z).astype(np.float32)


def _top_share(score: np.ndarray, free: np.ndarray, share: float) -> np.ndarray:
    """The ``share`` of all pixels with the highest score among the free ones."""
    k = int(round(share * score.size))
    if k <= 0:
        return np.zeros_like(free)
    masked = np.where(free, score, -np.inf).ravel()
    k = min(k, int(free.sum()))
    threshold = np.partition(masked, masked.size - k)[masked.size - k]
    return free & (np.where(free, score, -np.inf) >= threshold)


def _land_cover(
    p: WorldParams, dem: np.ndarray, slope: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Class raster (indexes into :data:`LAND_COVERS`) from elevation, slope and noise."""
    shape = dem.shape
    z = (dem - dem.min()) / max(float(dem.max() - dem.min()), 1e-6)
    s = np.clip(slope / max(float(np.percentile(slope, 95)), 1e-6), 0.0, 1.5)
    n1, n2, n3 = (_fractal(rng, shape, exponent=3.0, corr_px=80.0) for _ in range(3))
    scores = {
        "water": -3.0 * z - 2.0 * s + 0.3 * n1,
        "bare_rock": 2.0 * z + 2.0 * s + 0.6 * n2,
        "cropland": -1.5 * z - 3.0 * s + 0.5 * n3,
        "built": -1.5 * z - 3.0 * s + 0.5 * n1,
        "grass": 1.5 * z + 0.7 * n2 - 0.3 * n3,
    }
    cover = np.full(shape, LAND_COVERS.index("forest"), np.uint8)
    free = np.ones(shape, bool)
    for name, score in scores.items():
        chosen = _top_share(score, free, p.land_cover[name])
        cover[chosen] = LAND_COVERS.index(name)
        free &= ~chosen
    return cover


@dataclass(frozen=True)
class _Parcels:
    """Cropland parcels: an id per pixel and each parcel's brightness and NIR vigour."""

    ids: np.ndarray
    brightness: np.ndarray
    vigour: np.ndarray

    @property
    def count(self) -> int:
        return self.brightness.size


def _parcels(p: WorldParams, size: int, rng: np.random.Generator) -> _Parcels:
    """A grid of rectangular parcels of random sides around ``parcel_m``."""
    mean_px = p.parcel_m / RES
    ids = []
    for _ in range(2):
        widths = rng.uniform(0.5, 1.5, int(size / mean_px * 2) + 4) * mean_px
        ids.append(np.searchsorted(np.cumsum(widths), np.arange(size), side="right"))
    rows, cols = ids
    n_cols = int(cols.max()) + 1
    count = (int(rows.max()) + 1) * n_cols
    return _Parcels(
        ids=(rows[:, None] * n_cols + cols[None, :]).astype(np.int32),
        brightness=rng.uniform(0.85, 1.15, count).astype(np.float32),
        vigour=rng.uniform(0.85, 1.15, count).astype(np.float32),
    )


def _shaking(p: WorldParams, xs: np.ndarray, ys: np.ndarray, ex: float, ey: float) -> np.ndarray:
    """``exp(-d / decay)``, ``d`` the distance to the rupture segment through the epicentre."""
    strike = math.radians(p.fault_strike_deg)
    ue, un = math.sin(strike), math.cos(strike)
    dx = (xs - ex)[None, :]
    dy = (ys - ey)[:, None]
    t = np.clip(dx * ue + dy * un, -p.fault_half_length_m, p.fault_half_length_m)
    d = np.hypot(dx - t * ue, dy - t * un)
    return np.exp(-d / p.shaking_decay_m).astype(np.float32)


def _landslide_areas(p: WorldParams, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` areas (m2) from a truncated inverse-gamma distribution (Malamud et al., 2004).

    ``A = a / G``, ``G ~ Gamma(rho)``: density ``~ A^-(rho + 1)`` above the rollover and an
    exponential cut-off below, mode ``a / (rho + 1)``. Here ``rho + 1`` is the configured
    exponent and ``a`` is set so the mode is the configured rollover.
    """
    rho = p.area_exponent - 1.0
    scale = p.area_rollover_m2 * p.area_exponent
    lo, hi = p.landslide_area_m2
    out = np.empty(0)
    while out.size < n:
        a = scale / rng.gamma(rho, size=2 * n + 16)
        out = np.concatenate([out, a[(a >= lo) & (a <= hi)]])
    return out[:n]


def _landslides(
    p: WorldParams,
    size: int,
    slope: np.ndarray,
    cover: np.ndarray,
    shaking: np.ndarray,
    dz_dx: np.ndarray,
    dz_dy: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place landslides until they cover ``landslide_share`` of the scene.

    Returns:
        ``(labels, soil, soil_gain)``: int32 landslide id per pixel (0: none), float32 share
        of exposed soil per pixel (mixed pixels at the edges, including just outside), and
        float32 brightness factor of the soil of the landslide owning each pixel.
    """
    labels = np.zeros((size, size), np.int32)
    soil = np.zeros((size, size), np.float32)
    soil_gain = np.ones((size, size), np.float32)
    target = p.landslide_share * size * size
    if target < 1:
        return labels, soil, soil_gain
    proneness = np.array([_PRONENESS[c] for c in LAND_COVERS], np.float32)[cover]
    logistic = 1.0 / (1.0 + np.exp(-(slope - p.slope_deg) / p.slope_spread_deg))
    geology = np.exp(p.clustering * _fractal(rng, (size, size), exponent=3.0, corr_px=100.0))
    cdf = np.cumsum((shaking * logistic * proneness * geology).ravel(), dtype=np.float64)
    del geology, logistic, proneness
    if cdf[-1] <= 0:
        return labels, soil, soil_gain
    fine = _fractal(rng, (size, size), exponent=3.0, corr_px=4.0)
    lobes = _fractal(rng, (size, size), exponent=3.0, corr_px=16.0)
    placed, next_id, attempts = 0, 1, 0
    max_attempts = 20 * int(target) + 1000
    while placed < target and attempts < max_attempts:
        batch = 256
        seeds = np.searchsorted(cdf, rng.random(batch) * cdf[-1], side="right")
        seeds = np.minimum(seeds, size * size - 1)
        areas = _landslide_areas(p, batch, rng) / (RES * RES)  # in pixels
        ratios = rng.uniform(*p.elongation, batch)
        jitter = rng.random((batch, 2)) - 0.5
        gains = rng.uniform(0.85, 1.15, batch)
        for i in range(batch):
            if placed >= target:
                break
            attempts += 1
            row, col = divmod(int(seeds[i]), size)
            area = min(areas[i], max(target - placed, 1.0))
            new = _draw_landslide(
                labels,
                soil,
                soil_gain,
                (fine, lobes),
                next_id,
                centre=(row + jitter[i, 0], col + jitter[i, 1]),
                downslope=(float(dz_dy[row, col]), float(-dz_dx[row, col])),
                area_px=area,
                ratio=float(ratios[i]),
                gain=float(gains[i]),
            )
            if new:
                placed += new
                next_id += 1
    return labels, soil, soil_gain


def _draw_landslide(
    labels: np.ndarray,
    soil: np.ndarray,
    soil_gain: np.ndarray,
    edge: tuple[np.ndarray, np.ndarray],
    ident: int,
    centre: tuple[float, float],
    downslope: tuple[float, float],
    area_px: float,
    ratio: float,
    gain: float,
) -> int:
    """Rasterise one landslide: a rough ellipse starting at ``centre``, elongated downslope.

    Args:
        labels, soil, soil_gain: the rasters to update in place.
        edge: fine and lobe-scale boundary noise (unit variance).
        ident: the landslide's id in ``labels``.
        centre: (row, col) of the initiation point (the crown).
        downslope: (row, col) direction of steepest descent (need not be unit length).
        area_px: area in pixels.
        ratio: length to width.
        gain: brightness factor of its soil.

    Returns:
        The number of pixels it newly labels (0 if it labels none, and then draws nothing).
    """
    size = labels.shape[0]
    dr, dc = downslope
    norm = math.hypot(dr, dc)
    if norm < 1e-9:
        dr, dc = 1.0, 0.0
    else:
        dr, dc = dr / norm, dc / norm
    b = math.sqrt(area_px / (math.pi * ratio))
    a = ratio * b
    # The crown sits near the upslope end: the ellipse centre is 0.4 a downslope of it.
    cr, cc = centre[0] + 0.4 * a * dr, centre[1] + 0.4 * a * dc
    reach = a + 0.3 * a + 3.0
    r0, r1 = max(int(cr - reach), 0), min(int(cr + reach) + 2, size)
    c0, c1 = max(int(cc - reach), 0), min(int(cc + reach) + 2, size)
    if r0 >= r1 or c0 >= c1:
        return 0
    rr = np.arange(r0, r1, dtype=np.float32)[:, None] - cr
    cc_ = np.arange(c0, c1, dtype=np.float32)[None, :] - cc
    u = rr * dr + cc_ * dc
    v = cc_ * dr - rr * dc
    # Approximate signed distance (pixels) inside the boundary, roughened at two scales.
    depth = (1.0 - np.sqrt((u / a) ** 2 + (v / b) ** 2)) * max(b, 0.5)
    depth += _EDGE_PX * edge[0][r0:r1, c0:c1] + _LOBES * b * edge[1][r0:r1, c0:c1]
    inside = depth >= 0.0
    if not inside.any():
        return 0
    box = labels[r0:r1, c0:c1]
    new = inside & (box == 0)
    box[new] = ident
    # Soil share of a pixel: 0.5 + its signed distance, clipped to [0, 1] (mixed edges).
    share = np.clip(0.5 + depth, 0.0, 1.0)
    soil_box = soil[r0:r1, c0:c1]
    gain_box = soil_gain[r0:r1, c0:c1]
    more = share > soil_box
    soil_box[more] = share[more]
    gain_box[more] = gain
    return int(new.sum())


def _reflectance(
    p: WorldParams,
    date: str,
    cover: np.ndarray,
    parcels: _Parcels,
    bare: np.ndarray,
    texture: np.ndarray,
) -> np.ndarray:
    """Ground reflectance ``[4, H, W]`` (blue, green, red, NIR) of one date, before landslides.

    Args:
        p: the world parameters.
        date: ``pre`` or ``post``.
        cover: land-cover class raster.
        parcels: the cropland parcels.
        bare: per parcel, whether it is a bare (fallow) field at this date.
        texture: ground texture noise, shared by both dates.
    """
    conditions: DateParams = getattr(p, date)
    fallow = np.array(p.reflectance["fallow"], np.float32)
    table = np.empty((len(LAND_COVERS), 4), np.float32)
    for i, name in enumerate(LAND_COVERS):
        dry = _GREENNESS_WEIGHT.get(name, 0.0) * (1.0 - conditions.greenness)
        table[i] = (1.0 - dry) * np.array(p.reflectance[name], np.float32) + dry * fallow
    tex_weight = np.array([_TEXTURE_WEIGHT[c] for c in LAND_COVERS], np.float32)[cover]
    factor = np.maximum(1.0 + p.texture * tex_weight * texture, 0.2)
    refl = np.empty((4, *cover.shape), np.float32)
    for b in range(4):
        refl[b] = table[:, b][cover] * factor

    crop = cover == LAND_COVERS.index("cropland")
    ids = parcels.ids[crop]
    brightness = parcels.brightness[ids] * factor[crop]
    pixel_bare = bare[ids]
    for b in range(4):
        values = table[LAND_COVERS.index("cropland"), b] * brightness
        if b == 3:
            values *= parcels.vigour[ids]
        values[pixel_bare] = fallow[b] * brightness[pixel_bare]
        refl[b][crop] = values
    return refl


def _expose_soil(
    p: WorldParams,
    refl: np.ndarray,
    soil: np.ndarray,
    soil_gain: np.ndarray,
    soil_texture: np.ndarray,
) -> None:
    """Mix the exposed landslide soil/rock into the post-event reflectance, in place."""
    hit = soil > 0
    if not hit.any():
        return
    share = soil[hit]
    colour = soil_gain[hit] * np.maximum(1.0 + 1.2 * p.texture * soil_texture[hit], 0.2)
    for b in range(4):
        values = refl[b][hit]
        refl[b][hit] = (1.0 - share) * values + share * p.reflectance["landslide"][b] * colour


def _illuminate(refl: np.ndarray, shade: np.ndarray, altitude_deg: float) -> None:
    """Topographic illumination, in place: ``(cos i + C) / (cos z + C)`` (C-correction form)."""
    cos_z = math.sin(math.radians(altitude_deg))
    factor = (shade / 255.0 + _ILLUMINATION_C) / (cos_z + _ILLUMINATION_C)
    refl *= factor[None]


# --- files ------------------------------------------------------------------------------


def _write_rasters(files: DomainFiles, scene: Mapping[str, Any], crs: str) -> None:
    stack, mask = scene["stack"], scene["mask"]
    profile = dict(
        driver="GTiff",
        width=stack.shape[2],
        height=stack.shape[1],
        crs=crs,
        transform=scene["transform"],
        tiled=True,
        blockxsize=_BLOCK,
        blockysize=_BLOCK,
    )
    with rasterio.open(files.stack, "w", count=len(BANDS), dtype="float32", **profile) as dst:
        dst.write(stack)
        dst.descriptions = BANDS
    with rasterio.open(
        files.mask, "w", count=1, dtype="uint8", compress="deflate", **profile
    ) as dst:
        dst.write(mask, 1)
        dst.set_band_description(1, "landslide")


def _write_inventory(path: Path, labels: np.ndarray, transform: Affine, crs: str) -> None:
    """One polygon (or multipolygon) per landslide id, traced from the label raster."""
    parts: dict[int, list] = {}
    for geom, value in rasterio.features.shapes(
        labels, mask=labels > 0, connectivity=4, transform=transform
    ):
        parts.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    ids = sorted(parts)
    geoms = [parts[i][0] if len(parts[i]) == 1 else shapely.MultiPolygon(parts[i]) for i in ids]
    frame = gpd.GeoDataFrame(
        {"landslide_id": np.array(ids, np.int32)},
        geometry=gpd.GeoSeries(geoms, crs=crs),
        crs=crs,
    )
    frame["area_m2"] = frame.geometry.area
    frame.to_file(path, driver="GPKG", layer="landslides")


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


def _is_current(files: DomainFiles, record: Mapping[str, Any]) -> bool:
    if files.missing() or not files.inventory.is_file():
        return False
    try:
        stored = json.loads((files.root / RECORD_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return stored == record


# --- parsing ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Mappings and sequences (OmegaConf containers included) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value


def _floats(value: Any, n: int) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != n:
        raise ValueError(f"world parameters: expected a list of {n} numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _date_params(value: Mapping[str, Any]) -> DateParams:
    return DateParams(
        gain=_floats(value["gain"], 4),
        offset=_floats(value["offset"], 4),
        greenness=float(value["greenness"]),
        fallow=float(value["fallow"]),
    )
