"""The analysis-ready stack: band set arithmetic, assembling the bands, writing COGs.

Slope, hillshade and NDVI come from :mod:`landslide.features`, the same functions the
default world uses, so simulated and real domains share one code path for them.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import rasterio

from landslide.features import hillshade, ndvi, slope_degrees
from landslide.layout import IGNORED
from landslide.prepare.grid import Grid

DATES: tuple[str, str] = ("pre", "post")
TERRAIN: tuple[str, str] = ("slope", "hillshade")


def colours_needed(bands: Sequence[str]) -> dict[str, list[str]]:
    """The Sentinel-2 colours each date must supply for a band set.

    Returns:
        ``{date: colours}`` for the dates the band set uses (``nir`` and ``red`` for NDVI).
    """
    needed: dict[str, list[str]] = {}
    for band in bands:
        if band in TERRAIN:
            continue
        date, kind = band.split("_", 1)
        colours = ["red", "nir"] if kind == "ndvi" else [kind]
        needed.setdefault(date, [])
        needed[date] += [c for c in colours if c not in needed[date]]
    return needed


def assemble(
    bands: Sequence[str],
    reflectance: Mapping[str, Mapping[str, np.ndarray]],
    elevation: np.ndarray | None,
    res: float,
    sun: tuple[float, float] | None,
) -> np.ndarray:
    """Compute every band of the set on the grid.

    Args:
        bands: the band set, in :data:`~landslide.bands.BANDS` order.
        reflectance: ``{date: {colour: reflectance}}``.
        elevation: DEM in metres on the grid, if the set has terrain bands.
        res: pixel size in metres.
        sun: ``(azimuth, altitude)`` of the post-event sun, for the hillshade.

    Returns:
        float32 ``[len(bands), H, W]``.

    Raises:
        ValueError: if a terrain band is asked without ``elevation``, or the hillshade
            without ``sun``.
    """
    layers = []
    for band in bands:
        if band in TERRAIN:
            if elevation is None:
                raise ValueError(f"the {band} band needs the elevation; pass elevation")
            if band == "slope":
                layers.append(slope_degrees(elevation, res))
            elif sun is None:
                raise ValueError("the hillshade band needs the post-event sun; pass sun")
            else:
                layers.append(hillshade(elevation, res, *sun))
        else:
            date, kind = band.split("_", 1)
            if kind == "ndvi":
                layers.append(ndvi(reflectance[date]["red"], reflectance[date]["nir"]))
            else:
                layers.append(reflectance[date][kind])
    return np.stack(layers).astype(np.float32, copy=False)


def _profile(grid: Grid, count: int, dtype: str, nodata: float) -> dict:
    """A Cloud-Optimized GeoTIFF profile: 256 px tiles, deflate, overviews."""
    return dict(
        driver="COG",
        width=grid.width,
        height=grid.height,
        count=count,
        dtype=dtype,
        crs=grid.crs,
        transform=grid.transform,
        nodata=nodata,
        compress="deflate",
        predictor=3 if dtype == "float32" else 2,
        blocksize=256,
    )


def write_stack(path: Path, stack: np.ndarray, bands: Sequence[str], grid: Grid) -> None:
    """Write the stack as a float32 COG (NaN nodata) with band descriptions."""
    with rasterio.open(path, "w", **_profile(grid, len(bands), "float32", np.nan)) as dst:
        dst.write(stack)
        dst.descriptions = tuple(bands)


def write_mask(path: Path, mask: np.ndarray, grid: Grid) -> None:
    """Write the mask as a uint8 COG, ignored pixels as nodata."""
    with rasterio.open(path, "w", **_profile(grid, 1, "uint8", IGNORED)) as dst:
        dst.write(mask, 1)
        dst.set_band_description(1, "landslide")
