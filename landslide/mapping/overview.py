"""The visual outputs of a scene-scale landslide map: ``overview.png`` and ``overview.html``.

Both are drawn from a :class:`Preview`, a decimated read of the scene and its probability
raster, so memory stays bounded for scenes of any size. ``overview.html`` is one
self-contained file: embedded PNG layers, landslide outlines as inline SVG and layer
toggles in pure CSS, so it works offline and inside the MLflow UI's artifact viewer.
"""

import base64
import html
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib
import numpy as np
import rasterio
import shapely
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter
from PIL import Image
from pyproj import CRS
from pyproj.exceptions import CRSError
from rasterio.enums import Resampling
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from landslide.bands import POST_RGB, PRE_RGB

#: Colour of the landslide outlines in both outputs.
OUTLINE_COLOUR = "#00e5ff"
#: Colour map of the probability layer; its opacity rises with the probability.
PROBABILITY_CMAP = "inferno"
#: Probability at and above which the probability layer is at full opacity.
PROBABILITY_OPAQUE_AT = 0.5
#: Opacity of the probability layer at full opacity.
PROBABILITY_MAX_ALPHA = 0.85
#: Colour shown where the scene has no data.
NODATA_COLOUR = "#d9d9d9"


@dataclass(frozen=True)
class Preview:
    """A decimated view of a scene and its landslide probability, on one grid.

    Attributes:
        rgb: float32 [h, w, 3] display colours in 0..1, NaN where the scene has no data.
        probability: float32 [h, w] landslide probability in 0..1, NaN where no data.
        bounds: left, bottom, right, top of the scene in its CRS (metres).
        crs: the scene's CRS, e.g. ``"EPSG:32650"``.
        rgb_label: what :attr:`rgb` shows, e.g. ``"post-event RGB"`` or ``"slope (grey)"``.
    """

    rgb: np.ndarray
    probability: np.ndarray
    bounds: tuple[float, float, float, float]
    crs: str
    rgb_label: str = "image"

    @property
    def pixel_size(self) -> float:
        """Ground size of one preview pixel (the finer axis), in CRS units."""
        left, bottom, right, top = self.bounds
        h, w = self.probability.shape
        return min((right - left) / w, (top - bottom) / h)


def read_preview(
    stack: Path, stack_bands: Sequence[str], probability: Path, max_side: int = 1600
) -> Preview:
    """Read a scene and its probability raster decimated to at most ``max_side`` pixels.

    The image is the post-event RGB if the stack has it, else the pre-event RGB, else the
    first band in grey; each channel gets a 2-98 percentile stretch over the valid pixels.
    Bands are averaged down (nodata skipped where the files declare it), so only the
    decimated arrays are ever held in memory.

    Args:
        stack: the scene's multi-band float32 GeoTIFF.
        stack_bands: names of the stack's bands, in file order.
        probability: the single-band landslide probability GeoTIFF on the stack's grid.
        max_side: the longest side of the preview in pixels; smaller scenes are read whole.

    Returns:
        The preview, covering the full extent of the scene.

    Raises:
        ValueError: if ``stack_bands`` does not match the stack's band count, or the
            probability raster is not on the stack's grid.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    stack_bands = list(stack_bands)
    with rasterio.open(stack) as src:
        if len(stack_bands) != src.count:
            raise ValueError(
                f"{stack} has {src.count} bands but {len(stack_bands)} band names were given "
                f"({', '.join(stack_bands)})"
            )
        shape = _decimated_shape(src.height, src.width, max_side)
        indexes, rgb_label = _display_bands(stack_bands)
        bands = _read_decimated(src, indexes, shape)
        grid = (src.width, src.height, src.transform, src.crs)
        left, bottom, right, top = (float(v) for v in src.bounds)
        crs = src.crs.to_string() if src.crs else ""
    with rasterio.open(probability) as src:
        if (src.width, src.height) != grid[:2] or not src.transform.almost_equals(grid[2]):
            raise ValueError(f"{probability} is not on the grid of {stack}")
        if src.crs and grid[3] and src.crs != grid[3]:
            raise ValueError(f"{probability} is in {src.crs}, {stack} in {grid[3]}")
        prob = _read_decimated(src, [1], shape)[0]
    rgb = _stretch(np.moveaxis(bands, 0, -1))
    return Preview(
        rgb=rgb,
        probability=np.clip(prob, 0.0, 1.0),
        bounds=(left, bottom, right, top),
        crs=crs,
        rgb_label=rgb_label,
    )


def render_png(path: Path, preview: Preview, polygons: gpd.GeoDataFrame, title: str) -> None:
    """Write ``overview.png``: the image with landslide outlines, legend and scale bar.

    Axes are in map units (easting and northing); a north arrow marks grid north. The
    figure is drawn on its own Agg canvas, never registered with pyplot.

    Args:
        path: the PNG to write.
        preview: the decimated scene (see :func:`read_preview`).
        polygons: the landslide polygons, in the scene's CRS (or reprojected to it); may be
            empty.
        title: the figure title.
    """
    polygons = _in_scene_crs(polygons, preview)
    left, bottom, right, top = preview.bounds
    width, height = right - left, top - bottom
    map_w = 8.0
    map_h = min(max(map_w * height / width, 2.0), 11.0)
    fig = Figure(figsize=(map_w + 1.6, map_h + 1.4), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_facecolor(NODATA_COLOUR)
    ax.imshow(
        _rgba(preview.rgb),
        extent=(left, right, bottom, top),
        interpolation="nearest",
        origin="upper",
    )
    if len(polygons):
        halo = [patheffects.withStroke(linewidth=1.4, foreground="black", alpha=0.5)]
        polygons.boundary.plot(ax=ax, color=OUTLINE_COLOUR, linewidth=0.6, path_effects=halo)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")

    km = FuncFormatter(lambda v, _: f"{v / 1000:,.3f}".rstrip("0").rstrip("."))
    projected = _is_projected(preview.crs)
    if projected:
        ax.xaxis.set_major_formatter(km)
        ax.yaxis.set_major_formatter(km)
    unit = "km" if projected else "CRS units"
    crs_note = f", {preview.crs}" if preview.crs else ""
    ax.set_xlabel(f"easting ({unit}{crs_note})", fontsize=8)
    ax.set_ylabel(f"northing ({unit})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=11)

    handles = [
        Line2D([], [], color=OUTLINE_COLOUR, lw=1.5, label=f"landslide ({len(polygons):,})"),
        Patch(facecolor="none", edgecolor="none", label=preview.rgb_label),
    ]
    if np.isnan(preview.rgb).any():
        handles.append(Patch(facecolor=NODATA_COLOUR, edgecolor="0.5", label="no data"))
    legend = ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.85)
    legend.get_texts()[1].set_fontstyle("italic")
    if projected:
        _draw_scale_bar(ax, preview.bounds)
    _draw_north_arrow(ax)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", pad_inches=0.15)


def render_html(
    path: Path,
    preview: Preview,
    polygons: gpd.GeoDataFrame,
    title: str,
    summary: Mapping[str, Any],
) -> None:
    """Write ``overview.html``: an interactive map that needs no network and no scripts.

    The image and the probability layer are base64-embedded PNGs; the outlines are SVG
    paths in scene coordinates, simplified and rounded to the preview's pixel size, each
    with a ``<title>`` tooltip (id, area, mean and max probability). Layers are toggled
    with CSS-only checkboxes, so the page also works in a sandboxed iframe.

    Args:
        path: the HTML file to write.
        preview: the decimated scene (see :func:`read_preview`).
        polygons: the landslide polygons (columns ``area_m2``, ``mean_prob``, ``max_prob``
            and optionally ``id``); may be empty.
        title: the page title.
        summary: label to value, shown as a small table (e.g. landslide count, model).
    """
    polygons = _in_scene_crs(polygons, preview)
    left, bottom, right, top = preview.bounds
    width, height = right - left, top - bottom
    grid = preview.pixel_size
    decimals = max(0, math.ceil(-math.log10(grid / 10)) + 1) if grid > 0 else 3
    paths = "\n".join(
        f'<path d="{d}"><title>{html.escape(tip)}</title></path>'
        for d, tip in _svg_outlines(polygons, grid, decimals)
    )
    scale_bar = _svg_scale_bar(preview.bounds) if _is_projected(preview.crs) else ""
    rgb_png = _base64(_rgb_png(preview.rgb))
    prob_png = _base64(_probability_png(preview.probability))
    e = html.escape
    rows = "\n".join(
        f"<tr><th>{e(str(k))}</th><td>{e(_format_value(v))}</td></tr>" for k, v in summary.items()
    )
    page = _HTML.format(
        title=e(title),
        aspect=f"{width:.6g} / {height:.6g}",
        rgb_label=e(preview.rgb_label),
        rgb_png=rgb_png,
        prob_png=prob_png,
        view_box=f"{_num(left, 3)} {_num(-top, 3)} {_num(width, 3)} {_num(height, 3)}",
        paths=paths,
        scale_bar=scale_bar,
        outline=OUTLINE_COLOUR,
        nodata=NODATA_COLOUR,
        n_outlines=f"{len(polygons):,}",
        gradient=_css_gradient(),
        rows=rows,
        crs=e(preview.crs or "unknown CRS"),
        bounds=e(", ".join(f"{v:,.0f}" for v in preview.bounds)),
        pixel=e(f"{grid:,.1f}"),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


# --- reading ---------------------------------------------------------------------------


def _decimated_shape(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The [h, w] of a read whose longest side is at most ``max_side``."""
    scale = max(height, width) / max_side
    if scale <= 1:
        return height, width
    return max(1, round(height / scale)), max(1, round(width / scale))


def _display_bands(bands: Sequence[str]) -> tuple[list[int], str]:
    """1-based stack indexes shown as the image (three, or one for grey) and their label."""
    for rgb, label in ((POST_RGB, "post-event RGB"), (PRE_RGB, "pre-event RGB")):
        if set(rgb) <= set(bands):
            return [bands.index(b) + 1 for b in rgb], label
    return [1], f"{bands[0]} (grey)"


def _read_decimated(
    src: rasterio.io.DatasetReader, indexes: list[int], shape: tuple[int, int]
) -> np.ndarray:
    """Average bands down to ``shape`` as float32 [n, h, w], NaN where no data."""
    data = src.read(
        indexes,
        out_shape=(len(indexes), *shape),
        resampling=Resampling.average,
        masked=True,
        out_dtype="float32",
    )
    data = np.ma.filled(data, np.nan)
    data[~np.isfinite(data)] = np.nan
    return data


def _stretch(image: np.ndarray, low: float = 2, high: float = 98) -> np.ndarray:
    """Per-channel percentile stretch of [h, w, c] to float32 [h, w, 3] in 0..1.

    Percentiles are taken over pixels valid in every channel; other pixels become NaN.
    One channel is repeated as grey.
    """
    valid = np.isfinite(image).all(axis=-1)
    out = np.full((*image.shape[:2], 3), np.nan, np.float32)
    if not valid.any():
        return out
    values = image[valid]  # [n, c]
    lo, hi = np.percentile(values, [low, high], axis=0)
    scaled = np.clip((values - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)
    out[valid] = np.broadcast_to(scaled, (len(scaled), 3)) if scaled.shape[1] == 1 else scaled
    return out


# --- drawing -----------------------------------------------------------------------------


def _rgba(rgb: np.ndarray) -> np.ndarray:
    """uint8 [h, w, 4] from NaN-holed colours in 0..1; no data is transparent."""
    valid = np.isfinite(rgb).all(axis=-1)
    out = np.zeros((*rgb.shape[:2], 4), np.uint8)
    out[..., :3] = np.round(np.nan_to_num(rgb, nan=0.0) * 255)
    out[..., 3] = np.where(valid, 255, 0)
    return out


def _probability_alpha(p: np.ndarray | np.floating) -> np.ndarray | np.floating:
    """Opacity of the probability layer: clear at 0, full from PROBABILITY_OPAQUE_AT."""
    return np.clip(p / PROBABILITY_OPAQUE_AT, 0.0, 1.0) * PROBABILITY_MAX_ALPHA


def _rgb_png(rgb: np.ndarray) -> bytes:
    """The image as a palette PNG, a third of the size of RGBA; no data is clear.

    Colour gets 255 colours of an octree palette, dithered so smooth areas do not band;
    grey gets 255 exact grey levels. Index 255 is the clear one.
    """
    valid = np.isfinite(rgb).all(axis=-1)
    colours = np.round(np.nan_to_num(rgb, nan=0.0) * 255).astype(np.uint8)
    if (colours == colours[..., :1]).all():
        index = np.round(np.nan_to_num(rgb[..., 0], nan=0.0) * 254).astype(np.uint8)
        palette = np.repeat(np.round(np.arange(256) * 255 / 254).clip(0, 255), 3)
    else:
        if valid.any():  # no data in a colour of the image: no dithering error at its edge
            colours[~valid] = np.median(colours[valid], axis=0)
        image = Image.fromarray(colours, "RGB")
        palette_image = image.quantize(255, Image.Quantize.FASTOCTREE)
        palette = np.zeros(768, np.int64)
        used = palette_image.getpalette() or []
        palette[: len(used)] = used[:768]
        palette[765:] = palette[:3]  # 255 repeats 0, so pixels given 255 can move to 0
        palette_image.putpalette(palette.tolist())
        index = np.array(image.quantize(palette=palette_image, dither=Image.Dither.FLOYDSTEINBERG))
        index[index == 255] = 0
    index[~valid] = 255
    out = Image.fromarray(index, "P")
    out.putpalette(palette.astype(np.uint8).tolist())
    buffer = io.BytesIO()
    out.save(buffer, format="PNG", optimize=True, transparency=255)
    return buffer.getvalue()


def _probability_png(probability: np.ndarray) -> bytes:
    """The probability layer as a palette PNG of 101 levels (0.01 apart).

    Colours come from the colour map, opacity rises with probability, and no data is clear.
    """
    levels = np.linspace(0.0, 1.0, 101)
    index = np.round(np.nan_to_num(probability, nan=0.0) * 100).astype(np.uint8)
    colours = matplotlib.colormaps[PROBABILITY_CMAP](levels, bytes=True)
    image = Image.fromarray(index, "P")
    image.putpalette(colours[:, :3].ravel().tolist())
    alpha = np.round(_probability_alpha(levels) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True, transparency=alpha.tobytes())
    return buffer.getvalue()


def _nice_length(target: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``target``."""
    if target <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def _length_label(metres: float) -> str:
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"


def _draw_scale_bar(ax: Axes, bounds: tuple[float, float, float, float]) -> None:
    """A black and white bar of a round length in the lower left of the map."""
    left, bottom, right, top = bounds
    length = _nice_length((right - left) / 4)
    x0 = left + 0.04 * (right - left)
    y0 = bottom + 0.05 * (top - bottom)
    bar_h = 0.012 * max(top - bottom, (right - left) * 0.5)
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for i in range(4):
        ax.add_patch(
            Rectangle(
                (x0 + i * length / 4, y0),
                length / 4,
                bar_h,
                facecolor="black" if i % 2 == 0 else "white",
                edgecolor="black",
                linewidth=0.8,
                zorder=5,
            )
        )
    ax.text(
        x0 + length / 2,
        y0 + bar_h * 2.2,
        _length_label(length),
        ha="center",
        va="bottom",
        fontsize=8,
        zorder=6,
        path_effects=halo,
    )


def _draw_north_arrow(ax: Axes) -> None:
    """An arrow and "N" in the upper right of the map, pointing to grid north."""
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    ax.annotate(
        "N",
        xy=(0.95, 0.96),
        xytext=(0.95, 0.86),
        xycoords="axes fraction",
        ha="center",
        va="top",
        fontsize=10,
        fontweight="bold",
        path_effects=halo,
        arrowprops=dict(facecolor="black", edgecolor="white", width=3, headwidth=9, lw=0.8),
        zorder=6,
    )


def _is_projected(crs: str) -> bool:
    try:
        return bool(crs) and CRS.from_user_input(crs).is_projected
    except CRSError:  # an unreadable CRS string: draw no metric scale
        return False


def _in_scene_crs(polygons: gpd.GeoDataFrame, preview: Preview) -> gpd.GeoDataFrame:
    """The polygons in the preview's CRS, without empty geometries."""
    if polygons.crs is not None and preview.crs and not polygons.crs.equals(preview.crs):
        polygons = polygons.to_crs(preview.crs)
    geometry = polygons.geometry
    return polygons[geometry.notna() & ~geometry.is_empty]


# --- HTML --------------------------------------------------------------------------------


def _num(value: float, decimals: int) -> str:
    """A coordinate in the fewest characters: no trailing zeros, no "-0"."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _polygon_parts(geom: BaseGeometry) -> list[Polygon]:
    return [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]


def _simplified(geom: BaseGeometry, grid: float) -> list[Polygon]:
    """Snap to the preview's pixel grid and drop vertices within half a pixel of the line.

    A landslide smaller than a preview pixel would collapse on the grid; it is snapped to
    a tenth of a pixel instead, so every landslide keeps an outline and a tooltip.
    """
    for step in (grid, grid / 10):
        parts = _polygon_parts(shapely.set_precision(geom, step).simplify(step / 2))
        if parts:
            return parts
    return _polygon_parts(geom)


def _svg_path(polygons: list[Polygon], decimals: int) -> str:
    """SVG path data of polygons (rings as subpaths): an absolute start, relative steps."""
    factor = 10**decimals
    out = []
    for polygon in polygons:
        for ring in (polygon.exterior, *polygon.interiors):
            q = np.round(np.asarray(ring.coords)[:-1, :2] * factor).astype(np.int64)
            steps = " ".join(
                f"{_num(dx / factor, decimals)} {_num(dy / factor, decimals)}"
                for dx, dy in np.diff(q, axis=0)
            )
            start = f"M{_num(q[0, 0] / factor, decimals)} {_num(q[0, 1] / factor, decimals)}"
            out.append(f"{start}l{steps}z" if steps else f"{start}z")
    return "".join(out)


def _svg_outlines(
    polygons: gpd.GeoDataFrame, grid: float, decimals: int
) -> Iterator[tuple[str, str]]:
    """(path data, tooltip) for each landslide."""
    ids = polygons["id"] if "id" in polygons.columns else polygons.index
    for ident, (_, row) in zip(ids, polygons.iterrows(), strict=True):
        geom = row.geometry
        parts = _simplified(geom, grid) if grid > 0 else _polygon_parts(geom)
        if not parts:
            continue
        area = row["area_m2"] if "area_m2" in row else geom.area
        lines = [f"Landslide {ident}", f"area {area:,.0f} m²"]
        for column, label in (("mean_prob", "mean probability"), ("max_prob", "max probability")):
            if column in row:
                lines.append(f"{label} {row[column]:.2f}")
        yield _svg_path(parts, decimals), "\n".join(lines)


def _svg_scale_bar(bounds: tuple[float, float, float, float]) -> str:
    """A scale bar as its own SVG layer, in metres from the map's top left corner.

    Not in scene coordinates: browsers draw no text at coordinates in the millions.
    """
    left, bottom, right, top = bounds
    width, height = right - left, top - bottom
    length = _nice_length(width / 4)
    size = max(height, width * 0.5)
    x0, y0 = 0.04 * width, 0.95 * height  # the bar's lower left corner
    bar_h, font = 0.012 * size, 0.03 * size
    rects = "".join(
        f'<rect x="{x0 + i * length / 4:.1f}" y="{y0 - bar_h:.1f}" width="{length / 4:.1f}" '
        f'height="{bar_h:.1f}" fill="{"#000" if i % 2 == 0 else "#fff"}"/>'
        for i in range(4)
    )
    return (
        f'<svg class="layer scale" viewBox="0 0 {width:.1f} {height:.1f}" '
        f'preserveAspectRatio="none">{rects}'
        f'<text x="{x0 + length / 2:.1f}" y="{y0 - 2.2 * bar_h:.1f}" font-size="{font:.1f}" '
        f'text-anchor="middle">{html.escape(_length_label(length))}</text></svg>'
    )


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _css_gradient() -> str:
    """The probability legend as a CSS gradient of the layer's colours and opacities."""
    cmap = matplotlib.colormaps[PROBABILITY_CMAP]
    stops = []
    for p in np.linspace(0.0, 1.0, 11):
        r, g, b, _ = (round(255 * c) for c in cmap(p))
        alpha = float(_probability_alpha(np.float64(p)))
        stops.append(f"rgba({r},{g},{b},{alpha:.2f}) {p * 100:.0f}%")
    return "linear-gradient(to right, " + ", ".join(stops) + ")"


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(float(value)) >= 1000 else f"{value:.4g}"
    return str(value)


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }}
h1 {{ font-size: 18px; margin: 0 0 10px; }}
.page {{ display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }}
.viewer {{ flex: 0 1 auto; width: min(100%, calc(82vh * {aspect})); min-width: 300px;
  display: flex; flex-wrap: wrap; align-items: center; gap: 6px 4px; }}
.viewer > label {{ margin-right: 14px; cursor: pointer; }}
.map {{ position: relative; flex: 0 0 auto; aspect-ratio: {aspect};
  width: 100%; background: {nodata}; border: 1px solid #999; }}
.layer {{ position: absolute; top: 0; left: 0; width: 100%; height: 100%; }}
#layer-rgb:not(:checked) ~ .map .rgb,
#layer-prob:not(:checked) ~ .map .prob,
#layer-outlines:not(:checked) ~ .map .outlines {{ display: none; }}
.outlines {{ overflow: hidden; }}
.outlines g {{ filter: drop-shadow(0 0 1px rgba(0, 0, 0, 0.8)); }}
.outlines path {{ fill: none; stroke: {outline}; stroke-width: 1px;
  vector-effect: non-scaling-stroke; stroke-linejoin: round; stroke-linecap: round;
  pointer-events: visible; }}
.outlines path:hover {{ stroke: #fff; stroke-width: 3px; fill: rgba(255, 255, 255, 0.25); }}
.scale {{ pointer-events: none; }}
.scale text {{ fill: #000; stroke: #fff; stroke-width: 3px; paint-order: stroke;
  vector-effect: non-scaling-stroke; font-family: system-ui, sans-serif; }}
.scale rect {{ vector-effect: non-scaling-stroke; stroke: #000; stroke-width: 1px; }}
.side {{ flex: 0 1 300px; min-width: 240px; }}
.side h2 {{ font-size: 14px; margin: 12px 0 6px; }}
.ramp {{ height: 14px; border: 1px solid #999; background: {gradient}, #8a8a8a; }}
.ticks {{ display: flex; justify-content: space-between; font-size: 12px; }}
.swatch {{ display: inline-block; width: 22px; height: 0; border-top: 2px solid {outline};
  vertical-align: middle; margin-right: 6px; }}
.nodata {{ display: inline-block; width: 14px; height: 14px; background: {nodata};
  border: 1px solid #999; vertical-align: middle; margin-right: 6px; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ text-align: left; padding: 2px 8px 2px 0; border-bottom: 1px solid #eee;
  vertical-align: top; }}
th {{ font-weight: 600; }}
.note {{ font-size: 12px; color: #666; }}
</style>
</head>
<body>
<h1>{title}</h1>
<div class="page">
<div class="viewer">
<input type="checkbox" id="layer-rgb" checked><label for="layer-rgb">{rgb_label}</label>
<input type="checkbox" id="layer-prob" checked><label for="layer-prob">probability</label>
<input type="checkbox" id="layer-outlines" checked>\
<label for="layer-outlines">landslide outlines ({n_outlines})</label>
<div class="map">
<img class="layer rgb" alt="{rgb_label}" src="data:image/png;base64,{rgb_png}">
<img class="layer prob" alt="landslide probability" src="data:image/png;base64,{prob_png}">
<svg class="layer outlines" viewBox="{view_box}" preserveAspectRatio="none">
<g transform="scale(1 -1)">
{paths}
</g>
</svg>
{scale_bar}
</div>
</div>
<div class="side">
<h2>Legend</h2>
<div><span class="swatch"></span>landslide outline (hover for details)</div>
<div><span class="nodata"></span>no data</div>
<div style="margin-top: 8px">landslide probability</div>
<div class="ramp"></div>
<div class="ticks"><span>0</span><span>0.25</span><span>0.5</span><span>0.75</span>\
<span>1</span></div>
<h2>Summary</h2>
<table>
{rows}
</table>
<p class="note">{crs}; bounds (left, bottom, right, top) {bounds};
preview pixel {pixel} m. North is up.</p>
</div>
</div>
</body>
</html>
"""
