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

Everything is written to a temporary folder beside the domain and moved into place only when
complete, so a failure leaves no output; bad input raises :class:`PrepareError`.
"""

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pyproj import CRS

from landslide.band_stats import compute_band_stats
from landslide.bands import band_set
from landslide.config import CONF_DIR
from landslide.data.sampling import (
    PoolSpec,
    SamplePool,
    domain_seed,
    sample_pool,
    save_pool,
    train_part_size,
)
from landslide.features import sun_position
from landslide.files import replace_dir, write_atomic
from landslide.layout import IGNORED, LANDSLIDE, DomainFiles
from landslide.prepare.dem import DemSource
from landslide.prepare.errors import PrepareError
from landslide.prepare.grid import Grid, build_grid, check_metric, utm_crs
from landslide.prepare.inventory import LabelRaster, PolygonInventory, read_polygons
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

#: First line of every config file prepare.py writes; it only ever replaces such files.
MARKER = "# Written by prepare.py"

#: What a prepared folder is: ``known`` (train and test pools), ``unknown`` (test pool only),
#: ``scene`` (no inventory, so no labels: a post-event scene to map with a trained model).
ROLES: tuple[str, ...] = ("known", "unknown", "scene")

#: Config groups registering a domain, and the roles registered in each.
REGISTERED: dict[str, tuple[str, ...]] = {
    "domain": ("known", "unknown"),
    "domain_mix": ("known",),
}

#: How to prepare without an inventory, appended to a missing inventory setting's error.
NO_INVENTORY = ", or use inventory=none to prepare a scene for mapping only"


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
            domain, ``domain_mix/<name>.yaml``; None for the project's ``conf/``. Files an
            earlier preparation of ``name`` wrote there that the role does not want (all of
            them for a scene) are removed.

    Returns:
        The prepared folder's files (a scene's has no mask, inventory or samples).

    Raises:
        PrepareError: on bad input, with nothing written.
    """
    bands = band_set(bands)
    role = _role(role, labelled=inventory is not None)
    if inventory is not None and samples is None:
        raise ValueError("prepare_domain: a labelled domain needs samples (its PoolSpec)")
    config_files, stale = _config_files(Path(register_dir or CONF_DIR), name, role)
    grid, area = _grid(imagery, colours_needed(bands), dem, aoi, crs, res)
    # A scene draws no patches: a model maps any size, so only labelled domains need one.
    if inventory is not None and min(grid.shape) < samples.patch_size:
        raise PrepareError(
            f"the area is {grid.width}x{grid.height} px at {res:g} m, smaller than one "
            f"{samples.patch_size} px patch; enlarge the area of interest (aoi=...), lower "
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
            raster, _ = source.cloud_raster(date)
            valid &= _check_valid(~clouds, inside, f"{raster.name} (cloud)", max_invalid_share)
    elevation, sun = None, None
    if set(TERRAIN) & set(bands):
        elevation = dem.elevation(grid)
        valid &= _check_valid(np.isfinite(elevation), inside, dem.raster.name, max_invalid_share)
    if "hillshade" in bands:
        sun = _post_sun(grid, post_date)
    labelled = None
    if inventory is not None:
        labelled = _labels(name, inventory, samples, grid, area, valid)
    stack = assemble(bands, reflectance, elevation, grid.res, sun)
    stack[:, ~valid] = np.nan

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir))
    try:
        files = DomainFiles(tmp)
        write_stack(files.stack, stack, bands, grid)
        compute_band_stats(files.stack, bands).save(files.stats)
        if labelled is not None:
            mask, polygons, pool = labelled
            write_mask(files.mask, mask, grid)
            polygons.to_file(files.inventory, driver="GPKG", layer="landslides")
            save_pool(files.samples, pool, samples)
        domain = _domain_record(name, role, grid, bands, imagery, post_date)
        (tmp / "domain.yaml").write_text(OmegaConf.to_yaml(domain))
        replace_dir(tmp, out_dir / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if labelled is not None:
        _register(config_files, domain, train_part_size(samples.pool_size, samples.test_fraction))
    for path in stale:
        path.unlink(missing_ok=True)
        log.warning("%s: removed, since %s is now prepared with role %s", path, name, role)
    share = ""  # a scene has no labels, so no landslide share
    if labelled is not None:
        mask = labelled[0]
        fraction = (mask == LANDSLIDE).sum() / max((mask != IGNORED).sum(), 1)
        share = f", landslide share {fraction:.4f}"
    log.info(
        "prepared %s %s: %dx%d px, bands %s%s, %d valid pixels lost",
        role,
        out_dir / name,
        grid.width,
        grid.height,
        ", ".join(bands),
        share,
        int((inside & ~valid).sum()),
    )
    return DomainFiles(out_dir / name)


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
        inventory = _build(cfg, "inventory", NO_INVENTORY)
        spec = dict(cfg.samples)
        spec["seed"] = domain_seed(int(spec["seed"]), cfg.name)
        try:
            samples = PoolSpec(**spec)
        except ValueError as err:
            raise PrepareError(f"samples: {err}") from err
    imagery = {date: _build(cfg, date) for date in DATES if date in colours_needed(bands)}
    dem = _build(cfg, "dem") if set(TERRAIN) & set(bands) else None
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


def _labels(
    name: str,
    inventory: PolygonInventory | LabelRaster,
    samples: PoolSpec,
    grid: Grid,
    area: shapely.Geometry,
    valid: np.ndarray,
) -> tuple[np.ndarray, gpd.GeoDataFrame, SamplePool]:
    """The mask (ignored wherever an input is invalid), the inventory on the grid, the pool."""
    labels, polygons = inventory.labels(grid, area)
    mask = np.where(valid, labels, IGNORED).astype(np.uint8)
    try:
        pool = sample_pool(mask, samples, name=name, knobs="samples.")
    except ValueError as err:
        raise PrepareError(f"{_path(inventory)}: {err}") from err
    return mask, polygons, pool


def _build(cfg: DictConfig, key: str, hint: str = "") -> Any:
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
        return instantiate(node)
    except InstantiationException as err:
        if isinstance(err.__cause__, PrepareError):
            raise err.__cause__ from None
        raise PrepareError(f"{key}: bad config ({err.__cause__ or err})") from err


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


def _config_files(register_dir: Path, name: str, role: str) -> tuple[dict[str, Path], list[Path]]:
    """The config files registering a domain, checked to be prepare.py's own, and the stale
    ones: written by prepare.py for ``name`` but not for this role (e.g. a domain now
    prepared as a scene), which would point training at a folder without its files.

    Raises:
        PrepareError: if a file to write exists and was written by someone else.
    """
    files, stale = {}, []
    for group, roles in REGISTERED.items():
        path = register_dir / group / f"{name}.yaml"
        ours = not path.exists() or path.read_text().startswith(MARKER)
        if role in roles:
            if not ours:
                raise PrepareError(
                    f"{path}: exists and was not written by prepare.py; choose another name=..."
                )
            files[group] = path
        elif path.exists() and ours:
            stale.append(path)
    return files, stale


def _register(files: Mapping[str, Path], domain: Mapping[str, Any], train_count: int) -> None:
    """Write the domain's config and, for a known domain, a mix of all its training samples."""
    name = domain["name"]
    usage = f"#   python train.py data=prepared +domain@data.domains.{name}={name}"
    if "domain_mix" in files:
        usage += f" domain_mix={name}"
    contents = {
        "domain": (f"the prepared domain {name}", domain),
        "domain_mix": (
            f"every training sample of {name}",
            {"name": name, "counts": {name: train_count}},
        ),
    }
    for group, path in files.items():
        what, body = contents[group]
        text = f"{MARKER}: {what}. Use it with\n{usage}\n" + OmegaConf.to_yaml(body)
        write_atomic(path, text)
