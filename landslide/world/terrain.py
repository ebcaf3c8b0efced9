"""Simulated terrain: a fractal DEM evaluated tile by tile, and the features of each tile.

The DEM is a fractal field (spectral exponent ``beta``, largest landform ``landform_m``),
squashed into the elevation range with ``0.5 (1 + tanh(f / 1.5))``, raised to
``valley_exponent`` (wide valley floors) and optionally cut by a north-south basin. Slope,
the downslope gradient, hillshade and the topographic position index (TPI: elevation
relative to the surrounding ``TPI_RADIUS_PX``) are computed on the tile plus a halo, so tiles
join without seams.
"""

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter

from landslide.features.terrain import hillshade, horn_gradient, slope_degrees
from landslide.world.noise import NoiseField
from landslide.world.params import RES, TerrainParams

#: Radius (pixels) of the neighbourhood of the topographic position index.
TPI_RADIUS_PX = 25
# Halo the terrain features need around a tile.
HALO_PX = TPI_RADIUS_PX + 1


@dataclass(frozen=True)
class Window:
    """A tile of the scene, in pixels: rows ``row .. row + height``, cols likewise."""

    row: int
    col: int
    height: int
    width: int

    def grow(self, by: int) -> "Window":
        """The window with ``by`` pixels added on every side."""
        return Window(self.row - by, self.col - by, self.height + 2 * by, self.width + 2 * by)

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of the window in scene arrays."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


@dataclass(frozen=True)
class TerrainTile:
    """Terrain of one tile.

    Attributes:
        dem: elevation, metres.
        slope: slope, degrees.
        dz_dx: elevation gradient towards east.
        dz_dy: elevation gradient towards north.
        tpi: topographic position index, metres (negative in valleys).
        shade: hillshade under the sun of each date (``pre``, ``post``), 0-255.
    """

    dem: np.ndarray
    slope: np.ndarray
    dz_dx: np.ndarray
    dz_dy: np.ndarray
    tpi: np.ndarray
    shade: dict[str, np.ndarray]


class Terrain:
    """The scene's DEM as a field that any tile can be read from.

    Args:
        params: the terrain parameters.
        seed: seed of the relief field.
        scene_px: (rows, cols) of the scene.
        basin_col: column (pixels, may be fractional) of the basin's axis.
        suns: (azimuth, altitude) of the sun per date, degrees.
    """

    def __init__(
        self,
        params: TerrainParams,
        seed: int,
        scene_px: tuple[int, int],
        basin_col: float,
        suns: dict[str, tuple[float, float]],
    ) -> None:
        self.params = params
        self.basin_col = basin_col
        self.suns = suns
        self._relief = NoiseField(
            seed, params.spectral_exponent, params.landform_m / RES, scene_px, reach_px=HALO_PX
        )

    def dem(self, window: Window) -> np.ndarray:
        """Elevation (metres, float32) on a window."""
        p = self.params
        f = self._relief.window(window.row, window.col, window.height, window.width)
        z = (0.5 * (1.0 + np.tanh(f / 1.5))) ** p.valley_exponent
        if p.basin.depth > 0:
            cols = window.col + np.arange(window.width) + 0.5
            dx = (cols - self.basin_col) * RES / p.basin.width_m
            z = z * (1.0 - p.basin.depth * np.exp(-0.5 * dx * dx))[None, :]
        lo, hi = p.elevation_m
        return (lo + (hi - lo) * z).astype(np.float32)

    def tile(self, window: Window) -> TerrainTile:
        """DEM and its features on a tile (computed with a halo, then cropped)."""
        dem = self.dem(window.grow(HALO_PX))
        inner = (slice(HALO_PX, -HALO_PX), slice(HALO_PX, -HALO_PX))
        dz_dx, dz_dy = horn_gradient(dem, RES)
        size = 2 * TPI_RADIUS_PX + 1
        tpi = dem - uniform_filter(dem.astype(np.float64), size, mode="nearest")
        return TerrainTile(
            dem=dem[inner],
            slope=slope_degrees(dem, RES)[inner],
            dz_dx=dz_dx[inner].astype(np.float32),
            dz_dy=dz_dy[inner].astype(np.float32),
            tpi=tpi[inner].astype(np.float32),
            shade={d: hillshade(dem, RES, *sun)[inner] for d, sun in self.suns.items()},
        )
