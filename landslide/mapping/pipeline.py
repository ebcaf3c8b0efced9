"""From a trained model and a scene to a landslide map on disk, atomically.

:func:`map_scene` is the mapping core that ``map.py``, the tests and the benchmark share:

1. sliding-window inference (:mod:`landslide.mapping.predict`), strip by strip, each strip
   written to a tiled GeoTIFF and traced into polygons (:mod:`landslide.mapping.vectorize`);
2. the binary map rasterised back from the kept polygons (specks and, optionally, flat
   ground removed), block by block, scored against the reference where there is one;
3. both rasters converted to Cloud-Optimized GeoTIFFs, the polygons (GeoPackage in the
   scene's CRS, GeoJSON in longitude/latitude), an overview and a summary written beside
   them.

Everything goes to a hidden temporary folder next to the output folder and is renamed into
place only when complete, so an interrupted run leaves no partial map.
"""

import json
import logging
import math
import resource
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import rasterio.shutil
import shapely
import torch
from affine import Affine
from rasterio.windows import Window

from landslide.files import staged_dir
from landslide.layout import IGNORED, LANDSLIDE, STABLE
from landslide.mapping.evaluate import MatchRule, object_metrics
from landslide.mapping.model import TrainedModel
from landslide.mapping.overview import read_preview, render_html, render_png
from landslide.mapping.predict import probability_strips, resolve_device
from landslide.mapping.scene import Scene
from landslide.mapping.vectorize import StreamingVectorizer
from landslide.metrics import landslide_metrics

log = logging.getLogger(__name__)

#: The files of a map folder.
OUTPUTS = (
    "probability.tif",
    "landslides.tif",
    "landslides.gpkg",
    "landslides.geojson",
    "overview.png",
    "overview.html",
    "summary.json",
)

#: Decimals of the GeoJSON's degrees: 7 is about 1 cm, far below a pixel.
GEOJSON_DECIMALS = 7

#: Rows written at a time in the second pass (a multiple of the 256 px tiles).
BLOCK_ROWS = 512

#: GDAL's block cache while mapping, in MiB: its default (5 % of the machine's memory)
#: would let the cache of written blocks grow with the scene.
GDAL_CACHE_MB = 256


@dataclass(frozen=True)
class MapSettings:
    """How a scene is mapped (``conf/mapping/map.yaml`` documents each).

    Attributes:
        window: window side in pixels.
        overlap: pixels shared by neighbouring windows.
        batch_size: windows per forward pass.
        device: ``auto``, ``cpu``, ``cuda``...
        tta: average the dihedral flips of each window.
        autocast: bfloat16 autocast for the network.
        threshold: landslide probability threshold; None for the model's own.
        min_area: landslides smaller than this (m²) are dropped.
        slope_min: ground flatter than this (degrees) is never a landslide; None: off.
        probability_dtype: ``float32`` (NaN nodata) or ``uint8`` (percent, 255 nodata).
        match: the object-level overlap rule.
        size_classes: upper bounds (m²) of the object-level size classes.
        progress: show a progress bar.
    """

    window: int = 256
    overlap: int = 64
    batch_size: int = 8
    device: str = "auto"
    tta: bool = False
    autocast: bool = False
    threshold: float | None = None
    min_area: float = 200.0
    slope_min: float | None = None
    probability_dtype: str = "float32"
    match: MatchRule = field(default_factory=MatchRule)
    size_classes: tuple[float, ...] = (1_000.0, 10_000.0, 100_000.0)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.probability_dtype not in ("float32", "uint8"):
            raise ValueError(
                f"probability_dtype={self.probability_dtype!r}: choose float32 or uint8"
            )
        if self.window <= 0 or not 0 <= self.overlap < self.window:
            raise ValueError(
                f"window={self.window}, overlap={self.overlap}: need 0 <= overlap < window"
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}: give at least 1")
        if self.threshold is not None and not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold={self.threshold}: give a probability in [0, 1)")
        if self.min_area < 0:
            raise ValueError(f"min_area={self.min_area}: give an area >= 0 (m²)")


@dataclass(frozen=True)
class MapResult:
    """What a mapping run produced.

    Attributes:
        folder: the output folder (complete).
        summary: the contents of ``summary.json``.
        metrics: evaluation metrics against the reference (empty without one).
    """

    folder: Path
    summary: dict[str, Any]
    metrics: dict[str, float]

    def path(self, name: str) -> Path:
        """The file ``name`` in the map's folder."""
        return self.folder / name


def map_scene(
    model: TrainedModel, scene: Scene, out_dir: str | Path, settings: MapSettings
) -> MapResult:
    """Map landslides in ``scene`` with ``model`` into the folder ``out_dir``.

    An existing map in ``out_dir`` is replaced only once the new one is complete.

    Raises:
        MappingError: if the scene lacks the model's bands.
    """
    scene.check_bands(model.bands, model.name)
    out_dir = Path(out_dir)
    with staged_dir(out_dir) as tmp, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        summary, metrics = _map_into(model, scene, tmp, settings)
    return MapResult(out_dir, summary, metrics)


def _map_into(
    model: TrainedModel, scene: Scene, folder: Path, settings: MapSettings
) -> tuple[dict[str, Any], dict[str, float]]:
    threshold = model.threshold if settings.threshold is None else settings.threshold
    device = resolve_device(settings.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    raw_probability = folder / "probability.raw.tif"
    polygons, dropped = _predict_and_trace(model, scene, raw_probability, settings, threshold)
    predict_seconds = time.perf_counter() - start
    raw_binary = folder / "landslides.raw.tif"
    pixel_metrics = _rasterise(polygons, raw_probability, raw_binary, scene)
    _to_cog(
        raw_probability,
        folder / "probability.tif",
        settings.probability_dtype,
        "landslide probability",
        "average",
    )
    # Overviews hold the most common class of the binary map, and the mean probability
    # (GDAL's default, cubic, would leave [0, 1]).
    _to_cog(raw_binary, folder / "landslides.tif", "uint8", "landslide (1), stable (0)", "mode")
    raw_probability.unlink()
    raw_binary.unlink()
    polygons.to_file(folder / "landslides.gpkg", driver="GPKG", layer="landslides")
    write_geojson(polygons, folder / "landslides.geojson")
    seconds = time.perf_counter() - start

    metrics: dict[str, float] = {}
    if pixel_metrics is not None:
        metrics.update(pixel_metrics)
        reference = _reference_polygons(scene)
        metrics.update(object_metrics(polygons, reference, settings.match, settings.size_classes))
    area = float(polygons["area_m2"].sum()) if len(polygons) else 0.0
    summary = {
        "model": {
            "name": model.name,
            "run_id": model.run_id,
            "checkpoint": str(model.checkpoint),
            "bands": list(model.bands),
            "normalization": model.normalization,
            "total_stride": model.total_stride,
        },
        "scene": {
            "name": scene.name,
            "stack": str(scene.stack),
            "crs": scene.crs.to_string(),
            "width": scene.width,
            "height": scene.height,
            "transform": list(scene.transform)[:6],
            "area_km2": scene.area_km2,
            "reference": str(scene.reference_mask) if scene.reference_mask else None,
        },
        "settings": {**asdict(settings), "threshold": threshold, "device": str(device)},
        "landslides": {
            "count": len(polygons),
            "dropped_specks": dropped,
            "total_area_m2": area,
            "total_area_km2": area / 1e6,
        },
        "throughput": {
            "seconds": seconds,
            "predict_seconds": predict_seconds,
            "pixels_per_second": scene.width * scene.height / seconds,
            "km2_per_second": scene.area_km2 / seconds,
        },
        "memory": _peak_memory(device),
        "metrics": metrics,
    }
    title = f"{scene.name}: {len(polygons)} landslides, {area / 1e6:.3f} km² ({model.name})"
    preview = read_preview(scene.stack, scene.bands, folder / "probability.tif")
    render_png(folder / "overview.png", preview, polygons, title)
    render_html(folder / "overview.html", preview, polygons, title, _html_summary(summary))
    (folder / "summary.json").write_text(
        json.dumps(_strict_json(summary), indent=2, allow_nan=False)
    )
    log.info(
        "mapped %s (%.1f km²) in %.1f s: %d landslides, %.3f km²",
        scene.name,
        scene.area_km2,
        seconds,
        len(polygons),
        area / 1e6,
    )
    return summary, metrics


def write_geojson(polygons: gpd.GeoDataFrame, path: Path) -> None:
    """Write the polygons as RFC 7946 GeoJSON: longitude, latitude (EPSG:4326), 7 decimals.

    The MLflow UI previews GeoJSON artifacts on a map; an empty map is an empty
    FeatureCollection.
    """
    polygons.to_crs("EPSG:4326").to_file(
        path,
        driver="GeoJSON",
        layer="landslides",
        RFC7946="YES",
        COORDINATE_PRECISION=GEOJSON_DECIMALS,
    )


def _predict_and_trace(
    model: TrainedModel,
    scene: Scene,
    raw_probability: Path,
    settings: MapSettings,
    threshold: float,
) -> tuple[gpd.GeoDataFrame, int]:
    """Predict the scene strip by strip and trace its landslides.

    Each strip's probability is written to ``raw_probability`` (a tiled GeoTIFF).

    Returns:
        The landslide polygons and the number of specks dropped.
    """
    vectorizer = StreamingVectorizer(scene.transform, scene.crs, settings.min_area)
    slope_index = scene.band_index("slope") if "slope" in scene.bands else None
    with (
        rasterio.open(raw_probability, "w", **_tiled_profile(scene, "float32", np.nan)) as dst,
        rasterio.open(scene.stack) as stack,
        _open_optional(scene.reference_mask) as reference,
    ):
        for row, probability in probability_strips(
            model,
            scene,
            settings.window,
            settings.overlap,
            settings.batch_size,
            settings.device,
            settings.tta,
            settings.autocast,
            settings.progress,
        ):
            window = Window(0, row, scene.width, probability.shape[0])
            dst.write(probability, 1, window=window)
            slope = stack.read(slope_index, window=window) if slope_index else None
            landslide = np.nan_to_num(probability, nan=0.0) > threshold
            if slope is not None and settings.slope_min is not None:
                landslide &= slope >= settings.slope_min
            ignored = reference.read(1, window=window) == IGNORED if reference else None
            vectorizer.add(row, landslide, probability, slope, ignored)
    polygons = vectorizer.finish()
    if scene.reference_mask is None:
        polygons = polygons.drop(columns="ignored_share")
    return polygons, vectorizer.dropped


def _rasterise(
    polygons: gpd.GeoDataFrame, probability: Path, out: Path, scene: Scene
) -> dict[str, float] | None:
    """Write the binary map from the kept polygons, block by block.

    The map holds 1 for landslide, 0 for stable and 255 for nodata.

    Returns:
        The map's scores against the scene's reference mask, or None without one.
    """
    metrics = landslide_metrics(threshold=0.5) if scene.reference_mask else None
    index = polygons.sindex
    with (
        rasterio.open(probability) as src,
        rasterio.open(out, "w", **_tiled_profile(scene, "uint8", IGNORED)) as dst,
        _open_optional(scene.reference_mask) as reference,
    ):
        for row in range(0, scene.height, BLOCK_ROWS):
            window = Window(0, row, scene.width, min(BLOCK_ROWS, scene.height - row))
            valid = np.isfinite(src.read(1, window=window))
            shape = valid.shape
            transform = scene.transform @ Affine.translation(0, row)
            box = shapely.box(*rasterio.windows.bounds(window, scene.transform))
            hits = polygons.geometry.values[index.query(box, predicate="intersects")]
            binary = np.zeros(shape, np.uint8)
            if len(hits):
                binary = rasterio.features.rasterize(
                    ((g, LANDSLIDE) for g in hits),
                    out_shape=shape,
                    transform=transform,
                    fill=STABLE,
                    dtype="uint8",
                )
            binary[~valid] = IGNORED
            dst.write(binary, 1, window=window)
            if metrics is not None:
                target = reference.read(1, window=window)
                scored = valid & (target != IGNORED)
                metrics.update(
                    torch.from_numpy(binary[scored].astype(np.float32)),
                    torch.from_numpy(target[scored].astype(np.int64)),
                )
    if metrics is None:
        return None
    return {name: float(value) for name, value in metrics.compute().items()}


def _reference_polygons(scene: Scene) -> gpd.GeoDataFrame:
    """The scene's reference landslides: its inventory, else traced from its mask."""
    if scene.reference_polygons is not None:
        return gpd.read_file(scene.reference_polygons)
    traced = StreamingVectorizer(scene.transform, scene.crs)
    with rasterio.open(scene.reference_mask) as src:
        for row in range(0, scene.height, BLOCK_ROWS):
            window = Window(0, row, scene.width, min(BLOCK_ROWS, scene.height - row))
            landslide = src.read(1, window=window) == LANDSLIDE
            traced.add(row, landslide, landslide.astype(np.float32))
    return traced.finish()


def _tiled_profile(scene: Scene, dtype: str, nodata: float) -> dict[str, Any]:
    """An uncompressed tiled GeoTIFF on the scene's grid, written strip by strip."""
    return dict(
        driver="GTiff",
        width=scene.width,
        height=scene.height,
        count=1,
        dtype=dtype,
        crs=scene.crs,
        transform=scene.transform,
        nodata=nodata,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )


def _to_cog(raw: Path, out: Path, dtype: str, description: str, overview_resampling: str) -> None:
    """Convert a tiled GeoTIFF to a deflate-compressed Cloud-Optimized GeoTIFF with overviews.

    GDAL's COG driver streams block by block. ``uint8`` of a float probability stores
    percent (0-100, scale 0.01) with 255 as nodata.
    """
    with rasterio.open(raw, "r+") as src:
        if src.dtypes[0] != dtype:
            # A tiled temporary file keeps memory bounded, block by block.
            source = raw.with_name(raw.stem + f".{dtype}.tif")
            profile = src.profile | {"dtype": dtype, "nodata": IGNORED}
            with rasterio.open(source, "w", **profile) as dst:
                for _, window in src.block_windows(1):
                    block = src.read(1, window=window)
                    percent = np.where(np.isfinite(block), np.rint(block * 100), IGNORED)
                    dst.write(percent.astype(np.uint8), 1, window=window)
                dst.scales = (0.01,)
                dst.set_band_description(1, f"{description} (percent)")
        else:
            source = raw
            src.set_band_description(1, description)
    rasterio.shutil.copy(
        source,
        out,
        driver="COG",
        compress="deflate",
        predictor=3 if dtype == "float32" else 2,
        blocksize=256,
        overview_resampling=overview_resampling,
        num_threads="all_cpus",
    )
    if source != raw:
        source.unlink()


def _open_optional(path: Path | None) -> AbstractContextManager:
    """``rasterio.open(path)``, or a context giving None when there is no path."""
    return rasterio.open(path) if path is not None else nullcontext()


def _peak_memory(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process (MiB) and, on a GPU, peak allocated memory."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mib = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
    memory = {"peak_rss_mib": rss_mib}
    if device.type == "cuda":
        memory["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return memory


def _html_summary(summary: dict[str, Any]) -> dict[str, Any]:
    rows = {
        "model": summary["model"]["name"],
        "scene": summary["scene"]["name"],
        "area (km²)": f"{summary['scene']['area_km2']:.1f}",
        "landslides": summary["landslides"]["count"],
        "landslide area (km²)": f"{summary['landslides']['total_area_km2']:.3f}",
        "threshold": summary["settings"]["threshold"],
        "seconds": f"{summary['throughput']['seconds']:.1f}",
    }
    for name in ("f1", "iou", "object_recall", "object_precision"):
        if name in summary["metrics"]:
            rows[name] = f"{summary['metrics'][name]:.3f}"
    return rows


def _strict_json(value: Any) -> Any:
    """``value`` with NaN and infinities as null (strict JSON, readable everywhere)."""
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
