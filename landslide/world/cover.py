"""Land cover: classes placed by terrain and noise at their configured shares, and parcels.

Each class has a score from normalised elevation, slope, topographic position and smooth
noise (water and river bars on the lowest, flattest valley floors, bare rock high and steep,
fields and towns on low flats, meadows high); classes take their share of the scene in turn,
the highest scores among the pixels still free, and forest takes the rest. The thresholds
that give the shares are found once on a sparse sample of the whole scene, so every tile is
classified the same way.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from landslide.world.noise import NoiseField
from landslide.world.params import LAND_COVERS, RES, WorldParams
from landslide.world.terrain import TerrainTile, Window

# Classes in the order they take their share (forest takes what is left).
_ORDER = ("water", "river_bar", "bare_rock", "cropland", "built", "grass")
# Slope (degrees) and TPI (share of the relief) that count as "1" in the scores.
_SLOPE_UNIT = 35.0
_TPI_UNIT = 0.03


class CoverModel:
    """Scores of the land-cover classes on any tile.

    Args:
        params: the world parameters.
        seeds: three seeds of the smooth noise fields.
        scene_px: (rows, cols) of the scene.
    """

    def __init__(
        self, params: WorldParams, seeds: tuple[int, int, int], scene_px: tuple[int, int]
    ) -> None:
        self.params = params
        self._noise = [NoiseField(s, 3.0, 80.0, scene_px) for s in seeds]

    def scores(self, window: Window, terrain: TerrainTile) -> dict[str, np.ndarray]:
        """Score of each class in :data:`_ORDER` on a tile (higher: more likely)."""
        lo, hi = self.params.terrain.elevation_m
        z = (terrain.dem - lo) / (hi - lo)
        s = np.clip(terrain.slope / _SLOPE_UNIT, 0.0, 1.5)
        t = np.clip(terrain.tpi / (_TPI_UNIT * (hi - lo)), -3.0, 3.0)
        n1, n2, n3 = (
            f.window(window.row, window.col, window.height, window.width) for f in self._noise
        )
        channel = -1.0 * z - 3.0 * s - 1.5 * t + 0.3 * n1
        return {
            "water": channel,
            "river_bar": channel,
            "bare_rock": 2.0 * z + 2.0 * s + 0.6 * n2,
            "cropland": -1.5 * z - 3.0 * s + 0.5 * n3,
            "built": -1.5 * z - 3.0 * s + 0.5 * n1,
            "grass": 1.5 * z + 0.7 * n2 - 0.3 * n3,
        }


def cover_thresholds(samples: Mapping[str, np.ndarray], shares: Mapping[str, float]) -> dict:
    """Score thresholds that give each class its share, from a sample of the scene's pixels.

    Args:
        samples: per class, its scores at the same sample of pixels.
        shares: share of the scene of each class.

    Returns:
        Threshold per class in :data:`_ORDER` (``inf`` for a class with no share).
    """
    n = next(iter(samples.values())).size
    free = np.ones(n, bool)
    out = {}
    for name in _ORDER:
        k = int(round(shares[name] * n))
        score = np.where(free, samples[name], -np.inf)
        k = min(k, int(free.sum()))
        if k <= 0:
            out[name] = np.inf
            continue
        out[name] = float(np.partition(score, n - k)[n - k])
        free &= score < out[name]
    return out


def classify(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float]) -> np.ndarray:
    """Class raster (indexes into :data:`LAND_COVERS`) of a tile from its scores."""
    shape = next(iter(scores.values())).shape
    cover = np.full(shape, LAND_COVERS.index("forest"), np.uint8)
    free = np.ones(shape, bool)
    for name in _ORDER:
        chosen = free & (scores[name] >= thresholds[name])
        cover[chosen] = LAND_COVERS.index(name)
        free &= ~chosen
    return cover


@dataclass(frozen=True)
class Parcels:
    """Cropland parcels: a grid of rectangles with their own brightness, vigour and state.

    Attributes:
        row_ids: parcel row of each scene row.
        col_ids: parcel column of each scene column.
        brightness: per parcel, brightness factor.
        vigour: per parcel, NIR vigour factor.
        bare: per date, whether each parcel is a bare (fallow or harvested) field.
    """

    row_ids: np.ndarray
    col_ids: np.ndarray
    brightness: np.ndarray
    vigour: np.ndarray
    bare: dict[str, np.ndarray]

    def ids(self, window: Window) -> np.ndarray:
        """Parcel id of each pixel of a tile."""
        rows, cols = window.slices
        n_cols = int(self.col_ids[-1]) + 1
        return self.row_ids[rows][:, None] * n_cols + self.col_ids[cols][None, :]


def make_parcels(
    params: WorldParams, scene_px: tuple[int, int], rng: np.random.Generator
) -> Parcels:
    """Rectangular parcels of random sides around ``parcel_m``, each bare per date at random.

    A parcel bare at one date and cropped at the other is a change that is not a landslide.
    """
    mean_px = params.parcel_m / RES
    ids = []
    for n in scene_px:
        widths = rng.uniform(0.5, 1.5, int(n / mean_px * 2) + 4) * mean_px
        ids.append(np.searchsorted(np.cumsum(widths), np.arange(n), side="right"))
    count = (int(ids[0][-1]) + 1) * (int(ids[1][-1]) + 1)
    return Parcels(
        row_ids=ids[0].astype(np.int64),
        col_ids=ids[1].astype(np.int64),
        brightness=rng.uniform(0.85, 1.15, count).astype(np.float32),
        vigour=rng.uniform(0.85, 1.15, count).astype(np.float32),
        bare={d: rng.random(count) < getattr(params, d).fallow for d in ("pre", "post")},
    )
