"""Discrete ground objects: co-seismic landslides, old scars, building sites, forest clearings.

Objects are drawn once for the whole scene from coarse (``BLOCK`` x ``BLOCK`` pixel) maps of
their likelihood and then rasterised into each tile that they touch, so a landslide that
crosses a tile boundary is drawn the same on both sides.

* **Landslides**: initiation points with probability ``shaking x P(slope) x
  proneness(land cover) x exp(clustering x smooth noise)``, ``shaking = exp(-d / decay)`` with
  ``d`` the distance to the rupture and ``P(slope)`` a logistic curve. Areas follow a
  truncated inverse-gamma distribution (Malamud et al., 2004: a power-law tail and a
  rollover). Each is an ellipse elongated downslope with a rough boundary; landslides are
  added until their areas sum to the configured share. Larger (deeper) landslides are more
  likely to cut to bedrock; some strip only part of the ground cover.
* **Old scars**: the same shapes, triggered by slope alone (older events), partly
  revegetated, present in both images and not in the inventory.
* **Building sites**: rotated rectangles on flat open ground, graded between the images.
* **Forest clearings**: rotated rectangles in forest on workable slopes, clear-cut between
  the images (logging, land clearing): a fresh, straight-edged loss of vegetation on the
  same hillslopes where landslides occur, the confounder that a model trained where nobody
  logs has never seen.
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from landslide.world.params import RES, LandslideParams, ShakingParams
from landslide.world.terrain import Window

#: Side (pixels) of the cells of the coarse likelihood maps objects are drawn from.
BLOCK = 4
# Roughness of a landslide's boundary: pixels of fine noise, and lobes as a share of its width.
_EDGE_PX = 0.6
_LOBES = 0.15


@dataclass(frozen=True)
class Ellipses:
    """Landslide-like objects, one entry per object (crown and downslope axis in pixels).

    Attributes:
        row, col: the crown (initiation point).
        dr, dc: unit downslope direction (rows, cols).
        a, b: semi-major (downslope) and semi-minor axes, pixels.
        gain: brightness factor of the exposed material.
        strength: share of the ground cover it strips (1: fully bare).
        rock: 1 where it exposes bedrock, 0 soil.
    """

    row: np.ndarray
    col: np.ndarray
    dr: np.ndarray
    dc: np.ndarray
    a: np.ndarray
    b: np.ndarray
    gain: np.ndarray
    strength: np.ndarray
    rock: np.ndarray

    def __len__(self) -> int:
        return self.row.size


@dataclass(frozen=True)
class Rectangles:
    """Building sites or clearings, as rotated rectangles.

    Each has a centre and half-sides (pixels), an orientation (radians) and the share of the
    ground it clears (1: all of it).
    """

    row: np.ndarray
    col: np.ndarray
    half_length: np.ndarray
    half_width: np.ndarray
    angle: np.ndarray
    strength: np.ndarray


@dataclass
class Footprint:
    """What the objects leave on one tile.

    Attributes:
        labels: landslide id (1-based, scene-wide) per pixel; 0 none.
        share: share of each pixel stripped to bare ground (mixed pixels at edges).
        gain: brightness factor of the material of the object owning each pixel.
        rock: bedrock share of that material.
    """

    labels: np.ndarray
    share: np.ndarray
    gain: np.ndarray
    rock: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> "Footprint":
        """A tile with no objects."""
        return cls(
            labels=np.zeros(shape, np.int32),
            share=np.zeros(shape, np.float32),
            gain=np.ones(shape, np.float32),
            rock=np.zeros(shape, np.float32),
        )


def shaking(
    params: ShakingParams,
    window: Window,
    origin: tuple[float, float],
    epicentre: tuple[float, float],
) -> np.ndarray:
    """``exp(-d / decay)`` on a tile, ``d`` the distance to the rupture through the epicentre.

    Args:
        params: the shaking parameters.
        window: the tile.
        origin: (x, y) map coordinates of the scene's top-left corner.
        epicentre: (x, y) map coordinates of the epicentre.
    """
    strike = math.radians(params.fault_strike_deg)
    ue, un = math.sin(strike), math.cos(strike)
    xs = origin[0] + (window.col + np.arange(window.width) + 0.5) * RES
    ys = origin[1] - (window.row + np.arange(window.height) + 0.5) * RES
    dx = (xs - epicentre[0])[None, :]
    dy = (ys - epicentre[1])[:, None]
    half = params.fault_half_length_m
    t = np.clip(dx * ue + dy * un, -half, half)
    d = np.hypot(dx - t * ue, dy - t * un)
    return np.exp(-d / params.decay_m).astype(np.float32)


def block_sum(values: np.ndarray) -> np.ndarray:
    """Sum over ``BLOCK`` x ``BLOCK`` cells (a partial edge cell sums what it holds)."""
    h, w = values.shape
    ph, pw = -h % BLOCK, -w % BLOCK
    padded = np.pad(values.astype(np.float64), ((0, ph), (0, pw)))
    return padded.reshape((h + ph) // BLOCK, BLOCK, (w + pw) // BLOCK, BLOCK).sum(axis=(1, 3))


def draw_points(
    weights: np.ndarray, n: int, scene_px: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points with density proportional to a coarse weight map.

    Returns:
        ``(rows, cols, cells)``: fractional pixel coordinates, and the flat index of each
        point's cell in ``weights``.
    """
    cdf = np.cumsum(weights.ravel())
    if n == 0 or cdf[-1] <= 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, int)
    cells = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), cdf.size - 1)
    br, bc = np.divmod(cells, weights.shape[1])
    rows = np.minimum((br + rng.random(n)) * BLOCK, scene_px[0] - 1e-3)
    cols = np.minimum((bc + rng.random(n)) * BLOCK, scene_px[1] - 1e-3)
    return rows, cols, cells


def landslide_areas(
    params: LandslideParams, total_m2: float, rng: np.random.Generator
) -> np.ndarray:
    """Areas (m2) from a truncated inverse-gamma distribution until they sum to ``total_m2``.

    ``A = a / G``, ``G ~ Gamma(rho)``: density ``~ A^-(rho + 1)`` above the rollover and an
    exponential cut-off below, mode ``a / (rho + 1)``. Here ``rho + 1`` is the configured
    exponent and ``a`` is set so the mode is the configured rollover.
    """
    rho = params.exponent - 1.0
    scale = params.rollover_m2 * params.exponent
    lo, hi = params.area_m2
    out: list[np.ndarray] = []
    total = 0.0
    while total < total_m2:
        a = scale / rng.gamma(rho, size=256)
        a = a[(a >= lo) & (a <= hi)]
        keep = np.cumsum(a) + total <= total_m2 + a
        out.append(a[keep])
        total += float(a[keep].sum())
    return np.concatenate(out) if out else np.zeros(0)


def ellipses(
    params: LandslideParams,
    areas_m2: np.ndarray,
    weights: np.ndarray,
    gradient: tuple[np.ndarray, np.ndarray],
    scene_px: tuple[int, int],
    rng: np.random.Generator,
    strength: np.ndarray,
) -> Ellipses:
    """Place one elongated, downslope-pointing object per area.

    Args:
        params: the landslide parameters (shape and depth).
        areas_m2: the objects' areas.
        weights: coarse likelihood of an initiation point.
        gradient: coarse mean ``(dz_dx, dz_dy)`` per cell.
        scene_px: (rows, cols) of the scene.
        rng: random generator.
        strength: per object, the share of the ground cover it strips.
    """
    n = areas_m2.size
    rows, cols, cells = draw_points(weights, n, scene_px, rng)
    n = rows.size
    dr = gradient[1].ravel()[cells]  # downslope: -grad, rows grow southwards
    dc = -gradient[0].ravel()[cells]
    norm = np.hypot(dr, dc)
    flat = norm < 1e-9
    dr = np.where(flat, 1.0, dr / np.where(flat, 1.0, norm))
    dc = np.where(flat, 0.0, dc / np.where(flat, 1.0, norm))
    shortest, longest = params.elongation
    ratio = rng.uniform(shortest, longest, n)
    area_px = areas_m2[:n] / (RES * RES)
    b = np.sqrt(area_px / (np.pi * ratio))
    p_rock = 1.0 / (1.0 + (params.rock_area_m2 / areas_m2[:n]) ** 1.5)
    return Ellipses(
        row=rows,
        col=cols,
        dr=dr,
        dc=dc,
        a=ratio * b,
        b=b,
        gain=rng.uniform(0.85, 1.15, n),
        strength=strength[:n],
        rock=(rng.random(n) < p_rock).astype(np.float32),
    )


def rectangles(
    share: float,
    area_m2: Sequence[float],
    weights: np.ndarray,
    scene_px: tuple[int, int],
    rng: np.random.Generator,
    strength: tuple[float, float] = (1.0, 1.0),
) -> Rectangles:
    """Rotated rectangles placed by a coarse weight map until they cover ``share`` of the scene.

    Args:
        share: share of the scene to cover (0: none).
        area_m2: (smallest, largest) area of one rectangle; areas are uniform in between.
        weights: coarse likelihood of a centre.
        scene_px: (rows, cols) of the scene.
        rng: random generator.
        strength: (min, max) share of the ground a rectangle clears.
    """
    lo, hi = area_m2
    target = share * scene_px[0] * scene_px[1] * RES * RES
    n = int(math.ceil(target / (0.5 * (lo + hi)))) if target > 0 else 0
    areas = rng.uniform(lo, hi, n) / (RES * RES)
    rows, cols, _ = draw_points(weights, n, scene_px, rng)
    n = rows.size
    aspect = rng.uniform(1.0, 2.5, n)
    half_width = 0.5 * np.sqrt(areas[:n] / aspect)
    return Rectangles(
        row=rows,
        col=cols,
        half_length=half_width * aspect,
        half_width=half_width,
        angle=rng.uniform(0.0, np.pi, n),
        strength=rng.uniform(*strength, n),
    )


def rasterise_ellipses(
    objects: Ellipses,
    window: Window,
    edge: tuple[np.ndarray, np.ndarray],
    footprint: Footprint,
    first_id: int | None,
) -> None:
    """Draw the objects that touch a tile into its footprint, in place.

    Each object is a rough ellipse whose crown is at its point and whose centre lies 0.4 ``a``
    downslope; a pixel belongs to it when its centre is inside. Its stripped share is
    ``strength x clip(0.5 + signed distance, 0, 1)`` (mixed pixels at the boundary). Earlier
    objects keep the pixels they hold.

    Args:
        objects: the objects.
        window: the tile.
        edge: fine and lobe-scale boundary noise on the tile (unit variance).
        footprint: the tile's footprint to update.
        first_id: label of the first object (the rest follow); None to leave labels alone.
    """
    cr = objects.row + 0.4 * objects.a * objects.dr - window.row
    cc = objects.col + 0.4 * objects.a * objects.dc - window.col
    for i, (r0, r1, c0, c1), rr, ccol in _boxes(cr, cc, 1.3 * objects.a + 3.0, window):
        u = rr * objects.dr[i] + ccol * objects.dc[i]
        v = ccol * objects.dr[i] - rr * objects.dc[i]
        a, b = objects.a[i], objects.b[i]
        depth = (1.0 - np.sqrt((u / a) ** 2 + (v / b) ** 2)) * max(b, 0.5)
        depth += _EDGE_PX * edge[0][r0:r1, c0:c1] + _LOBES * b * edge[1][r0:r1, c0:c1]
        if first_id is not None:
            box = footprint.labels[r0:r1, c0:c1]
            box[(depth >= 0.0) & (box == 0)] = first_id + i
        share = objects.strength[i] * np.clip(0.5 + depth, 0.0, 1.0)
        _paint(footprint, (slice(r0, r1), slice(c0, c1)), share, objects.gain[i], objects.rock[i])


def rasterise_rectangles(rects: Rectangles, window: Window, footprint: Footprint) -> None:
    """Draw the rectangles that touch a tile into its footprint, in place."""
    cr, cc = rects.row - window.row, rects.col - window.col
    reach = np.hypot(rects.half_length, rects.half_width) + 2.0
    for i, (r0, r1, c0, c1), rr, ccol in _boxes(cr, cc, reach, window):
        ca, sa = math.cos(rects.angle[i]), math.sin(rects.angle[i])
        u, v = rr * ca + ccol * sa, ccol * ca - rr * sa
        depth = np.minimum(rects.half_length[i] - np.abs(u), rects.half_width[i] - np.abs(v))
        share = rects.strength[i] * np.clip(0.5 + depth, 0.0, 1.0)
        _paint(footprint, (slice(r0, r1), slice(c0, c1)), share, 1.0, 0.0)


def _boxes(
    cr: np.ndarray, cc: np.ndarray, reach: np.ndarray, window: Window
) -> Iterator[tuple[int, tuple[int, int, int, int], np.ndarray, np.ndarray]]:
    """The objects centred at tile offsets ``(cr, cc)`` whose ``reach`` touches the tile.

    Yields each one's index, its bounding box ``(r0, r1, c0, c1)`` clipped to the tile, and
    the row (column vector) and column (row vector) offsets of the box's pixel centres from
    the object's centre.
    """
    hits = np.flatnonzero(
        (cr + reach >= 0)
        & (cr - reach < window.height)
        & (cc + reach >= 0)
        & (cc - reach < window.width)
    )
    for i in hits:
        r0, r1 = max(int(cr[i] - reach[i]), 0), min(int(cr[i] + reach[i]) + 2, window.height)
        c0, c1 = max(int(cc[i] - reach[i]), 0), min(int(cc[i] + reach[i]) + 2, window.width)
        if r0 >= r1 or c0 >= c1:
            continue
        rr = np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5 - cr[i]
        ccol = np.arange(c0, c1, dtype=np.float32)[None, :] + 0.5 - cc[i]
        yield int(i), (r0, r1, c0, c1), rr, ccol


def _paint(
    footprint: Footprint, box: tuple[slice, slice], share: np.ndarray, gain: float, rock: float
) -> None:
    """Raise the stripped share of a box where ``share`` is higher, with its material."""
    current = footprint.share[box]
    more = share > current
    current[more] = share[more]
    footprint.gain[box][more] = gain
    footprint.rock[box][more] = rock
