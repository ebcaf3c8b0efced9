"""From raw Sentinel-2 imagery, a DEM and an inventory to a prepared domain, atomically.

The steps of the paper's ArcGIS toolbox (Table II) on the user's own files:

1. *Batch clipping*: one 10 m grid over the overlap of every input and the area of
   interest (:mod:`landslide.prepare.grid`); every layer is reprojected onto it, bilinear.
2. *Stacking*: the band set in :data:`~landslide.bands.BANDS` order, slope and hillshade
   from the DEM, NDVI from red and near-infrared (:mod:`landslide.prepare.stack`).
3. *Sample production*: the inventory rasterised on the grid and a seeded pool of balanced
   patch windows (:func:`~landslide.data.sampling.sample_pool`, the DataModule's code).
4. *Dataset split*: the pool's 7:3 train/test split, random (the paper's) or blocked.

Without an inventory (``inventory=none``) the result is a *scene*: steps 1 and 2 only, a
stack and its statistics for a trained model to map, neither labelled nor registered.

:func:`prepare_domain` does it in four steps: :func:`read_layers` reads every input onto one
grid, :func:`assemble_domain` draws the sample pool and stacks the bands, :func:`write_domain`
writes the folder to a temporary one beside it and moves it into place only when complete (a
failure leaves no output), and :func:`~landslide.prepare.registration.register_domain` writes
its config files. Bad input raises :class:`PrepareError`.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from pyproj import CRS

from landslide.band_stats import compute_band_stats
from landslide.bands import band_set
from landslide.config import LOCAL_CONF_DIR, instantiate_config
from landslide.data.sampling import (
    PoolSpec,
    SamplePool,
    domain_seed,
    sample_pool,
    save_pool,
    train_part_size,
)
from landslide.features import sun_position
from landslide.files import staged_dir
from landslide.layout import IGNORED, LANDSLIDE, DomainFiles
from landslide.prepare.dem import DemSource
from landslide.prepare.errors import PrepareError
from landslide.prepare.grid import Grid, build_grid, check_metric, utm_crs
from landslide.prepare.inventory import LabelRaster, PolygonInventory, read_polygons
from landslide.prepare.registration import plan_registration, register_domain
from landslide.prepare.sources import ImagerySource
from landslide.prepare.stack import (
    DATES,
    TERRAIN,
    assemble,
    colours_needed,
    write_mask,
    write_stack,
)

log = logging.getLogger(__name__)

#: What a prepared folder is: ``known`` (train and test pools), ``unknown`` (test pool only),
#: ``scene`` (no inventory, so no labels: a post-event scene to map with a trained model).
ROLES: tuple[str, ...] = ("known", "unknown", "scene")

#: How to prepare without an inventory, appended to a missing inventory setting's error.
NO_INVENTORY = ", or use inventory=none to prepare a scene for mapping only"


@dataclass(frozen=True)
class Layers:
    """Every input read onto the target grid.

    Attributes:
        grid: the target grid.
        inside: pixels in the area of interest.
        valid: pixels of the area valid in every input (not nodata, NaN or cloud).
        reflectance: surface reflectance by date and colour.
        elevation: the DEM on the grid, if the band set has terrain bands.
        sun: the post-event sun (azimuth, altitude), if the band set has hillshade.
        mask: uint8 labels, ignored wherever an input is invalid; None for a scene.
        polygons: the inventory in the grid's CRS, clipped to the area; None for a scene.
        inventory: the inventory's name in errors; None for a scene.
    """

    grid: Grid
    inside: np.ndarray
    valid: np.ndarray
    reflectance: dict[str, dict[str, np.ndarray]]
    elevation: np.ndarray | None
    sun: tuple[float, float] | None
    mask: np.ndarray | None
    polygons: gpd.GeoDataFrame | None
    inventory: Path | str | None


@dataclass(frozen=True)
class Labels:
    """A labelled domain's labels on the grid and its sample pool.

    Attributes:
        mask: uint8 labels, ignored wherever an input is invalid.
        polygons: the inventory in the grid's CRS, clipped to the area.
        pool: the sample pool drawn from ``mask``.
        spec: the pool's parameters.
    """

    mask: np.ndarray
    polygons: gpd.GeoDataFrame
    pool: SamplePool
    spec: PoolSpec


@dataclass(frozen=True)
class PreparedDomain:
    """A prepared domain in memory: what :func:`write_domain` writes.

    Attributes:
        record: the domain's config (``domain.yaml``).
        grid: its grid.
        bands: the band set, in stack order.
        stack: the band stack, NaN wherever an input is invalid.
        labels: labels and sample pool; None for a scene.
    """

    record: dict[str, Any]
    grid: Grid
    bands: tuple[str, ...]
    stack: np.ndarray
    labels: Labels | None

    @property
    def train_count(self) -> int:
        """Training samples in the pool; 0 for a scene."""
        if self.labels is None:
            return 0
        return train_part_size(self.labels.spec.pool_size, self.labels.spec.test_fraction)


def prepare_domain(
    name: str,
    out_dir: str | Path,
    bands: Sequence[str],
    imagery: Mapping[str, ImagerySource],
    dem: DemSource | None,
    inventory: PolygonInventory | LabelRaster | None,
    samples: PoolSpec | None,
    *,
    post_date: str | None = None,
    aoi: str | None = None,
    crs: str | None = None,
    res: float = 10.0,
    max_invalid_share: float = 0.5,
    role: str | None = None,
    register_dir: str | Path | None = None,
) -> DomainFiles:
    """Prepare one domain under ``out_dir/name`` and register it for training.

    Without an inventory it prepares a scene for mapping: ``stack.tif``, ``stats.json`` and
    ``domain.yaml`` only, registered nowhere.

    Args:
        name: the domain's name (folder and config file name).
        out_dir: folder of prepared domains.
        bands: the band set.
        imagery: imagery by date (``pre``, ``post``), for the dates the band set uses.
        dem: the DEM, if the band set has slope or hillshade.
        inventory: landslide polygons or a label raster; None for a scene.
        samples: the sample pool's parameters, with the domain's seed; None for a scene.
        post_date: post-event date ``YYYY-MM-DD``, placing the hillshade's sun.
        aoi: optional polygon file of the area of interest.
        crs: target CRS, projected in metres; None for the UTM zone of the area's centre.
        res: pixel size in metres (the paper's 10).
        max_invalid_share: largest share of the area an input may lose to nodata, NaN or
            cloud before preparation fails.
        role: ``known`` (train and test), ``unknown`` (test only) or ``scene`` (no
            inventory); None for ``known`` with an inventory and ``scene`` without.
        register_dir: config folder receiving ``domain/<name>.yaml`` and, for a known
            domain, ``domain_mix/<name>.yaml``; None for ``conf/local/`` (git-ignored,
            searched by every entry point). Files an earlier preparation of ``name`` wrote
            there that the role does not want (all of them for a scene) are removed.

    Returns:
        The prepared folder's files (a scene's has no mask, inventory or samples).

    Raises:
        PrepareError: on bad input, with nothing written.
    """
    bands = band_set(bands)
    role = _role(role, labelled=inventory is not None)
    if inventory is not None and samples is None:
        raise ValueError("prepare_domain: a labelled domain needs samples (its PoolSpec)")
    registration = plan_registration(Path(register_dir or LOCAL_CONF_DIR), name, role)
    layers = read_layers(
        bands,
        imagery,
        dem,
        inventory,
        post_date=post_date,
        aoi=aoi,
        crs=crs,
        res=res,
        max_invalid_share=max_invalid_share,
        # A scene draws no patches: a model maps any size, so only labelled domains need one.
        patch_size=None if inventory is None or samples is None else samples.patch_size,
    )
    domain = assemble_domain(name, role, bands, layers, imagery, samples, post_date)
    files = write_domain(domain, Path(out_dir))
    register_domain(registration, domain.record, domain.train_count)
    _log_prepared(domain, layers, files)
    return files


def read_layers(
    bands: Sequence[str],
    imagery: Mapping[str, ImagerySource],
    dem: DemSource | None,
    inventory: PolygonInventory | LabelRaster | None,
    *,
    post_date: str | None,
    aoi: str | None,
    crs: str | None,
    res: float,
    max_invalid_share: float,
    patch_size: int | None,
) -> Layers:
    """Read every input the band set needs onto one grid over their overlap.

    Args:
        bands: the band set.
        imagery: imagery by date.
        dem: the DEM, if the band set has slope or hillshade.
        inventory: the inventory; None for a scene.
        post_date: the post-event date, placing the hillshade's sun.
        aoi: optional polygon file of the area of interest.
        crs: target CRS; None for the UTM zone of the area's centre.
        res: pixel size in metres.
        max_invalid_share: largest share of the area an input may lose.
        patch_size: the smallest side the grid may have (a labelled domain's patch); None
            for a scene.

    Raises:
        PrepareError: on bad input.
    """
    grid, area = _grid(imagery, colours_needed(bands), dem, aoi, crs, res)
    if patch_size is not None and min(grid.shape) < patch_size:
        raise PrepareError(
            f"the area is {grid.width}x{grid.height} px at {res:g} m, smaller than one "
            f"{patch_size} px patch; enlarge the area of interest (aoi=...), lower "
            f"samples.patch_size or use finer pixels (grid.res, now {res:g})"
        )
    inside = rasterio.features.geometry_mask(
        [area], out_shape=grid.shape, transform=grid.transform, invert=True
    )
    valid = inside.copy()
    reflectance: dict[str, dict[str, np.ndarray]] = {}
    for date, source in imagery.items():
        colours = colours_needed(bands)[date]
        reflectance[date], clouds = source.reflectance(grid, colours, date)
        # One check per input: the bands of one multi-band file are reported once.
        finite: dict[str, np.ndarray] = {}
        for colour, raster in source.rasters(colours, date).items():
            here = np.isfinite(reflectance[date][colour])
            finite[raster.name] = finite[raster.name] & here if raster.name in finite else here
        for input_name, here in finite.items():
            valid &= _check_valid(here, inside, input_name, max_invalid_share)
        if clouds is not None:
            cloud = source.cloud_raster(date)
            assert cloud is not None, "a cloud mask is read from the source's cloud raster"
            raster, _ = cloud
            valid &= _check_valid(~clouds, inside, f"{raster.name} (cloud)", max_invalid_share)
    elevation, sun = None, None
    if set(TERRAIN) & set(bands):
        if dem is None:
            raise PrepareError("dem: not configured, but the band set needs it; set dem")
        elevation = dem.elevation(grid)
        valid &= _check_valid(np.isfinite(elevation), inside, dem.raster.name, max_invalid_share)
    if "hillshade" in bands:
        sun = _post_sun(grid, post_date)
    mask, polygons, name = None, None, None
    if inventory is not None:
        values, polygons = inventory.labels(grid, area)
        mask = np.where(valid, values, IGNORED).astype(np.uint8)
        name = _path(inventory)
    return Layers(grid, inside, valid, reflectance, elevation, sun, mask, polygons, name)


def assemble_domain(
    name: str,
    role: str,
    bands: Sequence[str],
    layers: Layers,
    imagery: Mapping[str, ImagerySource],
    samples: PoolSpec | None,
    post_date: str | None,
) -> PreparedDomain:
    """Draw the sample pool (a labelled domain), stack the bands and write the record.

    Raises:
        PrepareError: if the labels hold too few samples for the pool.
    """
    labels = None
    if layers.mask is not None:
        if samples is None:
            raise ValueError("assemble_domain: a labelled domain needs samples (its PoolSpec)")
        try:
            pool = sample_pool(layers.mask, samples, name=name, knobs="samples.")
        except ValueError as err:
            raise PrepareError(f"{layers.inventory}: {err}") from err
        labels = Labels(layers.mask, layers.polygons, pool, samples)
    stack = assemble(bands, layers.reflectance, layers.elevation, layers.grid.res, layers.sun)
    stack[:, ~layers.valid] = np.nan
    record = _domain_record(name, role, layers.grid, bands, imagery, post_date)
    return PreparedDomain(record, layers.grid, tuple(bands), stack, labels)


def write_domain(domain: PreparedDomain, out_dir: Path) -> DomainFiles:
    """Write the domain's folder ``out_dir/<name>`` whole, replacing an older one.

    Its files are written to a temporary folder beside it, moved into place only when
    complete: a failure leaves no output.
    """
    target = out_dir / domain.record["name"]
    with staged_dir(target) as tmp:
        files = DomainFiles(tmp)
        write_stack(files.stack, domain.stack, domain.bands, domain.grid)
        compute_band_stats(files.stack, domain.bands).save(files.stats)
        if domain.labels is not None:
            labels = domain.labels
            write_mask(files.mask, labels.mask, domain.grid)
            labels.polygons.to_file(files.inventory, driver="GPKG", layer="landslides")
            save_pool(files.samples, labels.pool, labels.spec)
        (tmp / "domain.yaml").write_text(OmegaConf.to_yaml(domain.record))
    return DomainFiles(target)


def _log_prepared(domain: PreparedDomain, layers: Layers, files: DomainFiles) -> None:
    """Log what was prepared: role, folder, size, bands, landslide share, pixels lost."""
    share = ""  # a scene has no labels, so no landslide share
    if domain.labels is not None:
        mask = domain.labels.mask
        fraction = (mask == LANDSLIDE).sum() / max((mask != IGNORED).sum(), 1)
        share = f", landslide share {fraction:.4f}"
    log.info(
        "prepared %s %s: %dx%d px, bands %s%s, %d valid pixels lost",
        domain.record["role"],
        files.root,
        domain.grid.width,
        domain.grid.height,
        ", ".join(domain.bands),
        share,
        int((layers.inside & ~layers.valid).sum()),
    )


def prepare(cfg: DictConfig) -> DomainFiles:
    """Run :func:`prepare_domain` from a composed ``conf/prepare.yaml``.

    Only the inputs the band set needs are read (no DEM for ``bands=no_dem``, no pre-event
    imagery for ``bands=post_rgb``).

    Raises:
        PrepareError: on bad input or a missing config value.
    """
    try:
        bands = band_set(cfg.bands.names)
    except ValueError as err:
        raise PrepareError(f"bands: {err}") from err
    # inventory=none leaves no inventory node: a scene, checked before any input is read.
    labelled = cfg.get("inventory") is not None
    role = _role(cfg.role, labelled)
    inventory, samples = None, None
    if labelled:
        inventory = _instantiate_input(cfg, "inventory", NO_INVENTORY)
        spec = dict(cfg.samples)
        spec["seed"] = domain_seed(int(spec["seed"]), cfg.name)
        try:
            samples = PoolSpec(**spec)
        except ValueError as err:
            raise PrepareError(f"samples: {err}") from err
    dates = [date for date in DATES if date in colours_needed(bands)]
    imagery = {date: _instantiate_input(cfg, date) for date in dates}
    dem = _instantiate_input(cfg, "dem") if set(TERRAIN) & set(bands) else None
    post_date = imagery["post"].date if "post" in imagery else (cfg.post or {}).get("date")
    return prepare_domain(
        cfg.name,
        cfg.out_dir,
        bands,
        imagery,
        dem,
        inventory,
        samples,
        post_date=post_date,
        aoi=cfg.aoi,
        crs=cfg.grid.crs,
        res=float(cfg.grid.res),
        max_invalid_share=float(cfg.max_invalid_share),
        role=role,
        register_dir=cfg.register_dir,
    )


def _role(role: str | None, labelled: bool) -> str:
    """The role of a preparation with (``labelled``) or without an inventory.

    Raises:
        PrepareError: for an unknown role, a labelled role without an inventory, or a scene
            with one.
    """
    if role is None:
        return "known" if labelled else "scene"
    if role not in ROLES:
        raise PrepareError(f"role={role}: no such role; use {', '.join(ROLES)}")
    if role != "scene" and not labelled:
        raise PrepareError(
            f"role={role} needs a landslide inventory to label its samples; give "
            f"inventory.path=... (not inventory=none), or drop role={role} to prepare a scene "
            "for mapping only"
        )
    if role == "scene" and labelled:
        raise PrepareError(
            "role=scene prepares no labels, but an inventory is configured; add "
            "inventory=none, or use role=known or role=unknown"
        )
    return role


def _instantiate_input(cfg: DictConfig, key: str, hint: str = "") -> Any:
    """Instantiate one input of the config, turning config mistakes into one-line errors.

    ``hint`` ends the error for a missing setting, e.g. an alternative to giving it.
    """
    node = cfg.get(key)
    if node is None:
        raise PrepareError(f"{key}: not configured, but the band set needs it; set {key}")
    # missing_keys names a child node's keys from the root (``dem.path``), a root's without.
    missing = sorted(
        k if k.startswith(f"{key}.") else f"{key}.{k}" for k in OmegaConf.missing_keys(node)
    )
    if missing:
        raise PrepareError(f"{missing[0]} is not set; give it, e.g. {missing[0]}=...{hint}")
    try:
        return instantiate_config(node)
    except PrepareError:
        raise
    except (InstantiationException, ValueError, FileNotFoundError) as err:
        # Any other failure of a constructor, or of Hydra, is a bad setting under ``key``.
        cause = err.__cause__ if isinstance(err, InstantiationException) else err
        raise PrepareError(f"{key}: bad config ({cause or err})") from err


def _grid(
    imagery: Mapping[str, ImagerySource],
    colours: Mapping[str, Sequence[str]],
    dem: DemSource | None,
    aoi: str | None,
    crs: str | None,
    res: float,
) -> tuple[Grid, shapely.Geometry]:
    """The target grid over every input's overlap, and the area of interest on it."""
    rasters = [
        raster
        for date in reversed(DATES)
        if date in imagery
        for raster in imagery[date].rasters(colours[date], date).values()
    ]
    if dem is not None:
        rasters.append(dem.raster)
    if not rasters:
        raise PrepareError("bands: the band set reads no input; choose bands")
    if crs is None:
        lon, lat = rasters[0].footprint(CRS.from_epsg(4326)).centroid.coords[0]
        target = utm_crs(lon, lat)
    else:
        target = check_metric(CRS.from_user_input(crs))
    footprints = [(r.name, r.footprint(target)) for r in rasters]
    if aoi is not None:
        polygons = read_polygons(aoi, "aoi", target)
        footprints.append((str(aoi), shapely.union_all(polygons.geometry.values)))
    grid = build_grid(footprints, target, res)
    area = shapely.box(*grid.bounds)
    if aoi is not None:
        area = shapely.intersection(area, footprints[-1][1])
    return grid, area


def _check_valid(
    valid: np.ndarray, inside: np.ndarray, name: object, max_share: float
) -> np.ndarray:
    """Report the share of the area an input loses; fail when it is too much."""
    share = float((inside & ~valid).sum() / inside.sum())
    if share >= 1.0:
        raise PrepareError(
            f"{name}: no valid pixel in the area (all nodata, NaN or cloud); give a file that "
            "covers the area, or check its nodata value"
        )
    if share > max_share:
        raise PrepareError(
            f"{name}: {share:.1%} of the area is nodata, NaN or cloud, more than "
            f"max_invalid_share={max_share}; choose a clearer scene or raise max_invalid_share"
        )
    if share > 0:
        log.warning(
            "%s: %.1f%% of the area is nodata, NaN or cloud; those pixels are left out (NaN in "
            "the stack, in no sample)",
            name,
            100 * share,
        )
    return valid


def _post_sun(grid: Grid, post_date: str | None) -> tuple[float, float]:
    if post_date is None:
        raise PrepareError(
            "hillshade is lit by the post-event sun: set post.date=YYYY-MM-DD (the post-event "
            "acquisition date)"
        )
    lon, lat = grid.centre_lonlat()
    try:
        return sun_position(lat, lon, str(post_date))
    except ValueError as err:
        raise PrepareError(f"post.date: {err}") from err


def _path(inventory: PolygonInventory | LabelRaster) -> Path | str:
    return inventory.path if isinstance(inventory, PolygonInventory) else inventory.raster.name


def _domain_record(
    name: str,
    role: str,
    grid: Grid,
    bands: Sequence[str],
    imagery: Mapping[str, ImagerySource],
    post_date: str | None,
) -> dict[str, Any]:
    """The domain's config, as ``conf/domain/*.yaml`` holds it for the default world."""
    lon, lat = grid.centre_lonlat()
    dates = {f"{d}_date": imagery[d].date for d in DATES if d in imagery}
    if post_date is not None:
        dates["post_date"] = str(post_date)
    return {
        "name": name,
        "role": role,
        "crs": grid.crs.to_string(),
        "centre": {"lat": round(lat, 5), "lon": round(lon, 5)},
        **dates,
        "bands": list(bands),
    }
