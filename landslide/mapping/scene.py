"""A scene to map: a prepared scene folder or a bare stack GeoTIFF, checked before any work."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rasterio
from affine import Affine
from pyproj import CRS

from landslide.band_stats import BandStats, compute_band_stats
from landslide.bands import band_set
from landslide.layout import DomainFiles
from landslide.mapping.errors import MappingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scene:
    """A multi-band stack on a projected grid, its band names, statistics and references.

    Attributes:
        name: the scene's name (output folder, MLflow metric prefix).
        stack: the GeoTIFF of bands.
        bands: names of the stack's bands, in file order.
        stats: per-band statistics of the stack (the paper's min-max normalisation).
        crs: the stack's CRS, projected in metres.
        transform: the stack's north-up affine transform.
        width: columns.
        height: rows.
        reference_mask: a label raster on the same grid (1 landslide, 0 stable, 255
            ignored), for evaluation only; None for an unlabelled scene.
        reference_polygons: the reference landslide polygons, for object-level evaluation.
    """

    name: str
    stack: Path
    bands: tuple[str, ...]
    stats: BandStats
    crs: CRS
    transform: Affine
    width: int
    height: int
    reference_mask: Path | None = None
    reference_polygons: Path | None = None

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in square metres."""
        return abs(self.transform.a * self.transform.e)

    @property
    def area_km2(self) -> float:
        """The scene's area in square kilometres."""
        return self.width * self.height * self.pixel_area / 1e6

    def band_index(self, band: str) -> int:
        """1-based index of ``band`` in the stack (rasterio's convention)."""
        return self.bands.index(band) + 1

    def check_bands(self, bands: Sequence[str], model: str) -> None:
        """Check that the stack holds every band a model reads, with statistics.

        Raises:
            MappingError: naming the model's and the scene's band sets.
        """
        missing = [b for b in bands if b not in self.bands]
        if missing:
            raise MappingError(
                f"model {model} reads bands [{', '.join(bands)}] but scene {self.stack} holds "
                f"[{', '.join(self.bands)}] (missing {', '.join(missing)}); prepare the scene "
                "with the model's band set (prepare.py bands=...) or choose a model trained "
                "on the scene's bands"
            )

    def domain_files(self, workdir: Path) -> DomainFiles:
        """The scene as a domain folder (``stack.tif`` + ``stats.json``), for MMD ranking.

        A prepared scene folder is returned as it is; a bare stack is linked into
        ``workdir`` with its statistics beside it, leaving the user's folder untouched.
        """
        files = DomainFiles(self.stack.parent)
        if self.stack.name == "stack.tif" and files.stats.is_file():
            if BandStats.load(files.stats).bands == self.bands:
                return files
        files = DomainFiles(Path(workdir))
        files.root.mkdir(parents=True, exist_ok=True)
        files.stack.symlink_to(self.stack.resolve())
        self.stats.save(files.stats)
        return files


def open_scene(
    path: str | Path, name: str | None = None, bands: Sequence[str] | None = None
) -> Scene:
    """Open and check a scene.

    A scene is a prepared folder (``stack.tif``, ``stats.json``, optionally ``mask.tif`` and
    ``inventory.gpkg``) or a stack GeoTIFF.

    Band names come from ``bands``, else the folder's ``stats.json``, else the GeoTIFF's
    band descriptions (``prepare.py`` writes them). A bare stack's statistics are read from
    a ``stats.json`` beside it when it names the same bands, else computed block by block.

    Args:
        path: the scene folder or GeoTIFF.
        name: the scene's name; defaults to the folder's (or file's) name.
        bands: the stack's band names in file order, overriding what the files say.

    Raises:
        MappingError: one line naming the input and the fix.
    """
    path = Path(path)
    if path.is_dir():
        files = DomainFiles(path)
        stack = files.stack
        if not stack.is_file():
            raise MappingError(
                f"{path}: no stack.tif in this folder; give a scene prepared with prepare.py "
                "(inventory=none for an unlabelled scene) or the path of a stack GeoTIFF"
            )
        default_name = path.name
    elif path.is_file():
        files = DomainFiles(path.parent)
        stack = path
        default_name = path.parent.name if path.name == "stack.tif" else path.stem
    else:
        raise MappingError(f"scene={path}: no such file or folder; give a scene folder or GeoTIFF")
    try:
        with rasterio.open(stack) as src:
            crs, transform = src.crs, src.transform
            width, height, count = src.width, src.height, src.count
            descriptions = src.descriptions
    except rasterio.errors.RasterioIOError as err:
        raise MappingError(f"{stack}: not a readable GeoTIFF ({err}); check the file") from err
    if crs is None:
        raise MappingError(
            f"{stack}: has no CRS; prepare the scene with prepare.py, which puts it on a "
            "projected 10 m grid"
        )
    crs = CRS.from_user_input(crs)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise MappingError(
            f"{stack}: CRS {crs.to_string()} is not projected in metres, so areas cannot be "
            "measured; prepare the scene with prepare.py (UTM at 10 m)"
        )
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise MappingError(
            f"{stack}: the grid is rotated or not north-up; warp it to a north-up grid "
            "(prepare.py does)"
        )
    stats_file = files.stats if files.stats.is_file() and stack.name == "stack.tif" else None
    stats = BandStats.load(stats_file) if stats_file else None
    names = _band_names(stack, count, bands, stats, descriptions)
    if stats is None or stats.bands != names:
        log.info("%s: computing band statistics (block by block)", stack)
        try:
            stats = compute_band_stats(stack, names)
        except ValueError as err:
            raise MappingError(str(err)) from err
    mask = files.mask if files.mask.is_file() and stack.name == "stack.tif" else None
    polygons = files.inventory if files.inventory.is_file() and mask is not None else None
    if mask is not None:
        with rasterio.open(mask) as src:
            if (src.width, src.height) != (width, height) or src.transform != transform:
                raise MappingError(
                    f"{mask}: not on the grid of {stack}; prepare the scene again so both match"
                )
    return Scene(
        name=name or default_name,
        stack=stack,
        bands=names,
        stats=stats,
        crs=crs,
        transform=transform,
        width=width,
        height=height,
        reference_mask=mask,
        reference_polygons=polygons,
    )


def _band_names(
    stack: Path,
    count: int,
    bands: Sequence[str] | None,
    stats: BandStats | None,
    descriptions: Sequence[str | None],
) -> tuple[str, ...]:
    if bands is not None:
        source, names = "scene_bands", list(bands)
    elif stats is not None:
        source, names = "stats.json", list(stats.bands)
    elif all(descriptions):
        source, names = "band descriptions", [d for d in descriptions if d is not None]
    else:
        raise MappingError(
            f"{stack}: its bands are not named (no stats.json beside it, no band "
            "descriptions); name them in file order with scene_bands=[post_red,...]"
        )
    if len(names) != count:
        raise MappingError(
            f"{stack}: has {count} bands but its {source} names {len(names)} "
            f"({', '.join(names)}); fix scene_bands=[...] to name each band in file order"
        )
    try:
        ordered = band_set(names)
    except ValueError as err:
        raise MappingError(f"{stack}: {source}: {err}") from err
    if len(ordered) != len(names):
        raise MappingError(f"{stack}: {source} names a band twice ({', '.join(names)})")
    return tuple(names)
