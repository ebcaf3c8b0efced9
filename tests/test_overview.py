"""Overview outputs of a landslide map: the decimated preview, overview.png, overview.html."""

import base64
import io
import re
from pathlib import Path

import geopandas as gpd
import matplotlib.image
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import MultiPolygon, box

from landslide.bands import BANDS
from landslide.mapping.overview import Preview, read_preview, render_html, render_png

CRS = "EPSG:32650"
LEFT, TOP, RES = 400_000.0, 3_500_000.0, 10.0
HEIGHT, WIDTH = 200, 300
BOUNDS = (LEFT, TOP - HEIGHT * RES, LEFT + WIDTH * RES, TOP)


def _write(path: Path, data: np.ndarray) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype="float32",
        crs=CRS,
        transform=from_origin(LEFT, TOP, RES, RES),
        nodata=np.nan,
    ) as dst:
        dst.write(data.astype(np.float32))
    return path


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, Path]:
    """A 300x200 px ten-band stack and its probability, NaN in the top-left 40x60 px."""
    rng = np.random.default_rng(0)
    stack = rng.uniform(0.02, 0.3, (len(BANDS), HEIGHT, WIDTH)).astype(np.float32)
    # post_red rises left to right, so the stretch and the band choice are visible
    stack[BANDS.index("post_red")] = np.linspace(0.0, 0.4, WIDTH)[None, :]
    stack[:, :40, :60] = np.nan
    prob = np.zeros((1, HEIGHT, WIDTH), np.float32)
    prob[0, 100:150, 200:260] = 0.9
    prob[:, :40, :60] = np.nan
    return _write(tmp_path / "stack.tif", stack), _write(tmp_path / "probability.tif", prob)


def _polygons(n: int) -> gpd.GeoDataFrame:
    x, y = LEFT, BOUNDS[1]
    pair = [box(x + 500, y + 500, x + 700, y + 800), box(x + 900, y + 500, x + 950, y + 520)]
    geoms = [
        box(x + 2000, y + 500, x + 2600, y + 1000),
        MultiPolygon(pair),
        box(x + 1500, y + 1500, x + 1503, y + 1503),  # far smaller than a preview pixel
    ][:n]
    return gpd.GeoDataFrame(
        {
            "id": list(range(1, n + 1)),
            "area_m2": [g.area for g in geoms],
            "mean_prob": [0.81, 0.64, 0.55][:n],
            "max_prob": [0.97, 0.88, 0.60][:n],
        },
        geometry=geoms,
        crs=CRS,
    )


def test_read_preview_decimates_and_keeps_bounds_and_nodata(scene: tuple[Path, Path]) -> None:
    stack, prob = scene
    preview = read_preview(stack, BANDS, prob, max_side=150)
    assert preview.rgb.shape == (100, 150, 3)
    assert preview.probability.shape == (100, 150)
    assert preview.rgb.dtype == np.float32 and preview.probability.dtype == np.float32
    assert preview.bounds == pytest.approx(BOUNDS)
    assert preview.crs == CRS
    assert preview.rgb_label == "post-event RGB"
    assert preview.pixel_size == pytest.approx(20.0)
    # the 40x60 px NaN corner is 20x30 preview pixels, all NaN in every layer
    assert np.isnan(preview.rgb[:20, :30]).all()
    assert np.isnan(preview.probability[:20, :30]).all()
    assert np.isfinite(preview.rgb[20:]).all() and np.isfinite(preview.probability[20:]).all()
    # stretched to 0..1; the red ramp clips at its 2nd and 98th percentiles
    assert np.nanmin(preview.rgb) == 0.0 and np.nanmax(preview.rgb) == 1.0
    red = preview.rgb[50, :, 0]
    assert red[0] == 0.0 and red[-1] == 1.0 and np.all(np.diff(red) >= 0)
    # the averaged probability: 0.9 inside the block, 0 outside it
    assert preview.probability[60, 110] == pytest.approx(0.9)
    assert preview.probability[10, 140] == 0.0


def test_read_preview_keeps_a_small_scene_whole(scene: tuple[Path, Path]) -> None:
    stack, prob = scene
    preview = read_preview(stack, BANDS, prob)
    assert preview.rgb.shape == (HEIGHT, WIDTH, 3)
    assert np.isnan(preview.probability[:40, :60]).all()
    assert preview.probability[120, 230] == pytest.approx(0.9)


def test_read_preview_falls_back_to_pre_rgb_then_grey(
    scene: tuple[Path, Path], tmp_path: Path
) -> None:
    stack, prob = scene
    with rasterio.open(stack) as src:
        data = src.read()
    pre = ["slope", "pre_red", "pre_green", "pre_blue"]
    pre_stack = _write(tmp_path / "pre.tif", data[[BANDS.index(b) for b in pre]])
    preview = read_preview(pre_stack, pre, prob, max_side=100)
    assert preview.rgb_label == "pre-event RGB"
    assert preview.rgb.shape == (67, 100, 3)
    # the three channels are different bands, not one band in grey
    assert not np.allclose(preview.rgb[40:, :, 0], preview.rgb[40:, :, 1])

    grey_stack = _write(tmp_path / "grey.tif", data[[BANDS.index("post_red")]])
    preview = read_preview(grey_stack, ["post_red"], prob, max_side=100)
    assert preview.rgb_label == "post_red (grey)"
    valid = np.isfinite(preview.rgb[..., 0])
    assert np.array_equal(preview.rgb[..., 0][valid], preview.rgb[..., 2][valid])
    assert preview.rgb[50, 0, 0] == 0.0 and preview.rgb[50, -1, 0] == 1.0


def test_read_preview_rejects_wrong_band_names_and_grids(
    scene: tuple[Path, Path], tmp_path: Path
) -> None:
    stack, prob = scene
    with pytest.raises(ValueError, match="10 bands but 3 band names"):
        read_preview(stack, ["post_red", "post_green", "post_blue"], prob)
    other = _write(tmp_path / "other.tif", np.zeros((1, 50, 50)))
    with pytest.raises(ValueError, match="not on the grid"):
        read_preview(stack, BANDS, other)


def test_render_png_writes_an_image_with_outlines(scene: tuple[Path, Path], tmp_path: Path) -> None:
    stack, prob = scene
    preview = read_preview(stack, BANDS, prob, max_side=150)
    cyan = {}
    for n in (0, 3):
        out = tmp_path / f"out{n}" / "overview.png"
        render_png(out, preview, _polygons(n), "Test scene")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(out)
        height, width = image.shape[:2]
        # an 8 inch wide map at 150 dpi with its labels; the 3:2 scene keeps its shape
        assert 1300 <= width <= 1600 and 0.55 <= height / width <= 0.8
        # pixels in the outline colour (#00e5ff): the legend's line, and the outlines
        cyan[n] = int(
            ((image[..., 0] < 0.1) & (image[..., 1] > 0.85) & (image[..., 2] > 0.95)).sum()
        )
    assert cyan[0] > 100 and cyan[3] > cyan[0] + 1000


def _html(tmp_path: Path, preview: Preview, polygons: gpd.GeoDataFrame) -> str:
    out = tmp_path / "overview.html"
    summary = {"landslides": len(polygons), "total area (m²)": 330_009.0, "model": "m<1>&"}
    render_html(out, preview, polygons, "Scene <palu> & co", summary)
    return out.read_text(encoding="utf-8")


def test_render_html_is_self_contained_with_one_path_per_landslide(
    scene: tuple[Path, Path], tmp_path: Path
) -> None:
    stack, prob = scene
    preview = read_preview(stack, BANDS, prob, max_side=150)
    text = _html(tmp_path, preview, _polygons(3))

    paths = re.findall(r'<path d="([^"]*)"><title>([^<]*)</title></path>', text)
    assert len(paths) == 3
    assert paths[0][1] == (
        "Landslide 1\narea 300,000 m²\nmean probability 0.81\nmax probability 0.97"
    )
    assert paths[1][1].startswith("Landslide 2\narea 61,000 m²\n")
    # scene coordinates snapped to the 20 m preview grid: an absolute start, relative steps;
    # a multipolygon is one path of two rings (950 m rounds to 960 m on the grid)
    assert paths[0][0] == "M402000 3498500l0 500 600 0 0 -500z"
    assert paths[1][0] == "M400500 3498500l0 300 200 0 0 -300zM400900 3498500l0 20 60 0 0 -20z"
    # a landslide smaller than a preview pixel keeps an outline, on a tenth of the grid
    assert paths[2][0] == "M401500 3499500l0 4 4 0 0 -4z"

    assert 'viewBox="400000 -3500000 3000 2000"' in text
    assert text.count("data:image/png;base64,") == 2
    rgb, prob = (
        matplotlib.image.imread(io.BytesIO(base64.b64decode(data)))
        for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    )
    assert rgb.shape == prob.shape == (100, 150, 4)
    # no data is clear in both layers; the probability layer shows 0.9 at 0.85 opacity
    assert (rgb[:20, :30, 3] == 0).all() and (rgb[20:, :, 3] == 1).all()
    assert (prob[:20, :30, 3] == 0).all() and (prob[10, 140, 3] == 0)
    assert prob[60, 110, 3] == pytest.approx(0.85, abs=0.01)
    # CSS-only layer toggles, no scripts, nothing fetched from the network
    for layer in ("rgb", "prob", "outlines"):
        assert f'<input type="checkbox" id="layer-{layer}" checked>' in text
        assert f"#layer-{layer}:not(:checked) ~ .map" in text
    markup = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", text)
    assert "<script" not in markup and "http" not in markup and "//" not in markup
    assert re.findall(r'(?:src|href)="([^"]*)"', markup) == ["data:image/png;base64,"] * 2
    # every text escaped
    assert "<title>Scene &lt;palu&gt; &amp; co</title>" in text
    assert "<td>m&lt;1&gt;&amp;</td>" in text and "<td>330,009</td>" in text
    assert "<th>total area (m²)</th>" in text and "<td>3</td>" in text
    assert "landslide outlines (3)" in text and ">500 m</text></svg>" in text


def test_render_html_works_without_landslides(scene: tuple[Path, Path], tmp_path: Path) -> None:
    stack, prob = scene
    preview = read_preview(stack, BANDS, prob, max_side=150)
    text = _html(tmp_path, preview, _polygons(0))
    assert "<path" not in text
    assert "landslide outlines (0)" in text and "<td>0</td>" in text
    assert text.rstrip().endswith("</html>")


def test_renderers_reproject_polygons_to_the_scene_crs(
    scene: tuple[Path, Path], tmp_path: Path
) -> None:
    stack, prob = scene
    preview = read_preview(stack, BANDS, prob, max_side=150)
    text = _html(tmp_path, preview, _polygons(1).to_crs("EPSG:4326"))
    (d,) = re.findall(r'<path d="([^"]*)">', text)
    x, y = (float(v) for v in re.match(r"M(\S+) (\S+)l", d).groups())
    assert 402000 - 20 <= x <= 402600 + 20 and 3498500 - 20 <= y <= 3499000 + 20
