"""prepare.py on inputs as users have them: tiles, unflagged fills, 8-bit imagery, label maps.

A 120 px scene in UTM 45N (pre-event band files, a post-event GeoTIFF stack, a DEM and a
label raster) is prepared whole and cut into tiles given as a folder, a glob pattern and a
list; the results must be the same. Fills without a nodata tag, 8-bit scales and label
mappings set on the command line are checked on the same scene.
"""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from pyproj import CRS, Transformer
from rasterio.transform import Affine, from_origin

from landslide.bands import BANDS
from landslide.config import CONF_DIR, compose_config
from landslide.layout import IGNORED, LANDSLIDE, STABLE, DomainFiles
from landslide.prepare import PrepareError, prepare
from landslide.prepare.dem import DemSource
from landslide.prepare.grid import Grid

UTM, OTHER_UTM = "EPSG:32645", "EPSG:32644"
X0, Y0, SIZE, RES = 340_000.0, 3_100_000.0, 120, 10.0
FULL = from_origin(X0, Y0, RES, RES)
#: Sentinel-2 band of each colour, as band files (pre) and stack descriptions (post).
COLOURS = {
    "blue": ("B02", "B2"),
    "green": ("B03", "B3"),
    "red": ("B04", "B4"),
    "nir": ("B08", "B8"),
}
#: Four quadrants overlapping by 10 px: (rows, cols) of each tile.
QUADRANTS = [
    (slice(r0, r1), slice(c0, c1))
    for r0, r1 in ((0, 65), (55, 120))
    for c0, c1 in ((0, 65), (55, 120))
]
SAMPLES = ["samples.patch_size=32", "samples.pool_size=20"]
POST_DATE = "2021-05-01"
TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
TO_LONLAT = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def write_raster(
    path: Path, data: np.ndarray, transform: Affine, crs: str = UTM, **options
) -> Path:
    data = data[None] if data.ndim == 2 else data
    profile = dict(driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2])
    with rasterio.open(
        path, "w", **profile, dtype=data.dtype, crs=crs, transform=transform, **options
    ) as dst:
        dst.write(data)
    return path


def write_stack(
    path: Path, dn: np.ndarray, transform: Affine, order: tuple[int, ...] = (0, 1, 2, 3)
) -> Path:
    """A 4-band GeoTIFF named B2, B3, B4, B8 (in ``order``), with no nodata tag."""
    write_raster(path, dn[list(order)], transform)
    with rasterio.open(path, "r+") as dst:
        dst.descriptions = tuple(("B2", "B3", "B4", "B8")[i] for i in order)
    return path


def tile_transform(rows: slice, cols: slice, transform: Affine = FULL) -> Affine:
    return transform @ Affine.translation(cols.start, rows.start)


def scene_dn(seed: int) -> np.ndarray:
    """uint16 digital numbers of blue, green, red, nir: reflectance 0.04-0.35, never 0."""
    rng = np.random.default_rng(seed)
    base = np.array([0.04, 0.07, 0.05, 0.3])[:, None, None]
    return np.round((base + rng.uniform(0, 0.05, (4, SIZE, SIZE))) * 1e4).astype(np.uint16)


def scene_labels() -> np.ndarray:
    """1 stable, 2 landslide (three squares), 0 unlabelled (a strip)."""
    labels = np.ones((SIZE, SIZE), np.uint8)
    for r, c in ((10, 15), (60, 70), (85, 20)):
        labels[r : r + 16, c : c + 16] = 2
    labels[:, -6:] = 0
    return labels


def elevation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth terrain in metres at UTM 45N coordinates."""
    u, v = x - X0, y - Y0
    return 800.0 + 200.0 * np.sin(2 * np.pi * u / 2500) * np.cos(2 * np.pi * v / 3000) + 0.1 * u


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scene whole (``single/``) and in four overlapping tiles (``tiles/``)."""
    root = tmp_path_factory.mktemp("inputs")
    single, tiles = root / "single", root / "tiles"
    for folder in (single / "pre", tiles / "post", tiles / "labels"):
        folder.mkdir(parents=True)
    pre, post, labels = scene_dn(0), scene_dn(1), scene_labels()
    for i, (band, _) in enumerate(COLOURS.values()):
        write_raster(single / "pre" / f"{band}.tif", pre[i], FULL)
        (tiles / "pre" / band).mkdir(parents=True)
    write_stack(single / "post.tif", post, FULL)
    write_raster(single / "labels.tif", labels, FULL)
    for t, (rows, cols) in enumerate(QUADRANTS):
        transform = tile_transform(rows, cols)
        for i, (band, _) in enumerate(COLOURS.values()):
            write_raster(
                tiles / "pre" / band / f"pre_{t}_{band}.tif", pre[i, rows, cols], transform
            )
        # One tile holds its bands in another order: bands are found by name in each tile.
        order = (3, 2, 1, 0) if t == 2 else (0, 1, 2, 3)
        write_stack(tiles / "post" / f"post_{t}.tif", post[:, rows, cols], transform, order)
        write_raster(tiles / "labels" / f"labels_{t}.tif", labels[rows, cols], transform)
    # The DEM at 30 m, 300 m wider than the scene on every side.
    dem_transform = from_origin(X0 - 300, Y0 + 300, 30, 30)
    n = (SIZE * 10 + 600) // 30
    x = X0 - 300 + (np.arange(n) + 0.5) * 30
    y = Y0 + 300 - (np.arange(n) + 0.5) * 30
    write_raster(root / "dem.tif", elevation(*np.meshgrid(x, y)).astype(np.float32), dem_transform)
    return root


def scene_args(raw: Path, tmp: Path, name: str = "tiled") -> list[str]:
    """Overrides preparing the single-file scene under tmp."""
    args = [f"name={name}", f"register_dir={tmp / 'conf' / 'local'}", *SAMPLES]
    args += ["source@post=stack"]
    args += [f"pre.path={raw / 'single' / 'pre'}"]
    args += [f"pre.files.{c}={band}.tif" for c, (band, _) in COLOURS.items()]
    return args + [
        f"post.path={raw / 'single' / 'post.tif'}",
        f"post.date={POST_DATE}",
        f"dem.path={raw / 'dem.tif'}",
        "inventory=raster",
        f"inventory.path={raw / 'single' / 'labels.tif'}",
    ]


def with_args(args: list[str], *extra: str) -> list[str]:
    """``args`` with the settings of ``extra`` replaced."""
    keys = {e.split("=", 1)[0] for e in extra}
    return [a for a in args if a.split("=", 1)[0] not in keys] + list(extra)


def run_prepare(tmp: Path, args: list[str]) -> DomainFiles:
    return prepare(compose_config(args, root_dir=tmp, config_name="prepare"))


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


@pytest.fixture(scope="module")
def reference(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    tmp = tmp_path_factory.mktemp("reference")
    return run_prepare(tmp, scene_args(raw, tmp))


def tiled_args(raw: Path, form: str) -> list[str]:
    """Tile overrides in one of the accepted forms (a folder, a glob pattern, a list)."""
    tiles = raw / "tiles"
    if form == "folder":
        pre = [f"pre.files.{c}={band}" for c, (band, _) in COLOURS.items()]
        post, labels = tiles / "post", tiles / "labels"
    elif form == "glob":
        pre = [f"pre.files.{c}='{band}/*_{band}.tif'" for c, (band, _) in COLOURS.items()]
        post, labels = f"'{tiles / 'post' / 'post_*.tif'}'", tiles / "labels" / "*.tif"
    else:  # a list, in an order of its own: the tiles agree where they overlap
        order = (3, 1, 0, 2)
        pre = [
            f"pre.files.{c}=[{','.join(f'{band}/pre_{t}_{band}.tif' for t in order)}]"
            for c, (band, _) in COLOURS.items()
        ]
        post = "[" + ",".join(str(tiles / "post" / f"post_{t}.tif") for t in order) + "]"
        labels = "[" + ",".join(str(tiles / "labels" / f"labels_{t}.tif") for t in order) + "]"
    return [f"pre.path={tiles / 'pre'}", *pre, f"post.path={post}", f"inventory.path={labels}"]


@pytest.mark.parametrize("form", ["folder", "glob", "list"])
def test_tiles_prepare_like_the_whole_scene(
    raw: Path, reference: DomainFiles, tmp_path: Path, form: str
) -> None:
    files = run_prepare(tmp_path, with_args(scene_args(raw, tmp_path), *tiled_args(raw, form)))
    stack, expected = read(files.stack), read(reference.stack)
    assert stack.shape == (len(BANDS), SIZE, SIZE)
    np.testing.assert_array_equal(stack, expected)  # NaN where NaN, equal elsewhere
    np.testing.assert_array_equal(read(files.mask), read(reference.mask))
    samples = json.loads(files.samples.read_text())
    assert samples == json.loads(reference.samples.read_text()) and samples["train"]


def grid_centres() -> tuple[np.ndarray, np.ndarray]:
    """UTM coordinates of the scene's pixel centres."""
    x = X0 + (np.arange(SIZE) + 0.5) * RES
    y = Y0 - (np.arange(SIZE) + 0.5) * RES
    return np.meshgrid(x, y)


def test_dem_in_two_tiles(raw: Path, tmp_path: Path) -> None:
    """Two overlapping DEM tiles, in one CRS (cut from the whole DEM) or in two (the north
    one in degrees like SRTM, the south one in UTM): no seam, the terrain's elevations."""
    grid = Grid(CRS.from_string(UTM), FULL, SIZE, SIZE)
    whole = DemSource(str(raw / "dem.tif")).elevation(grid)
    truth = elevation(*grid_centres())
    assert np.abs(whole - truth).max() < 0.5
    with rasterio.open(raw / "dem.tif") as src:
        dem, transform = src.read(1), src.transform
    half = dem.shape[0] // 2
    write_raster(tmp_path / "n.tif", dem[: half + 3], transform)
    south = dem[half - 3 :]
    south = write_raster(tmp_path / "s.tif", south, transform @ Affine.translation(0, half - 3))
    cut = DemSource(str(tmp_path / "[ns].tif")).elevation(grid)
    np.testing.assert_allclose(cut, whole, atol=1e-3)
    # The north tile in degrees, sampled from the terrain at its own pixel centres.
    step = 1 / 3600
    west, north = TO_LONLAT.transform(X0 - 300, Y0 + 300)
    east, south_edge = TO_LONLAT.transform(X0 + SIZE * RES + 300, Y0 - 700)
    lons = west + (np.arange(int((east - west) / step) + 1) + 0.5) * step
    lats = north - (np.arange(int((north - south_edge) / step) + 1) + 0.5) * step
    terrain = elevation(*TO_UTM.transform(*np.meshgrid(lons, lats))).astype(np.float32)
    degrees = write_raster(
        tmp_path / "n_4326.tif", terrain, from_origin(west, north, step, step), "EPSG:4326"
    )
    tiled = DemSource([str(degrees), str(south)]).elevation(grid)
    assert np.isfinite(tiled).all()  # no gap at the seam
    assert np.abs(tiled - truth).max() < 0.5


def test_zero_border_without_nodata_tag_is_nodata(
    raw: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A post-event image half a pixel off the grid with a 20 px border of 0 in every band."""
    post = scene_dn(1)
    post[:, :, :20] = 0
    path = write_stack(tmp_path / "post.tif", post, from_origin(X0 + 5, Y0, RES, RES))
    caplog.set_level(logging.WARNING, logger="landslide.prepare")
    files = run_prepare(tmp_path, with_args(scene_args(raw, tmp_path), f"post.path={path}"))
    stack = dict(zip(BANDS, read(files.stack), strict=True))
    red = stack["post_red"]
    # The grid starts at X0 + 10: its column j lies midway between image columns j and j + 1.
    assert red.shape == (SIZE, SIZE - 1)
    share = 19 / (SIZE - 1)
    message = f"post: {share:.1%} of the area is 0 in every band (no nodata value in the file)"
    assert any(r.getMessage().startswith(message) for r in caplog.records), caplog.text
    assert "set post.nodata=" in caplog.text
    assert np.isnan(red[:, :19]).all()
    mask = read(files.mask)[0]
    assert (mask[:, :19] == IGNORED).all() and (mask[:, 19:-6] != IGNORED).all()
    dn = post[2].astype(np.float64) / 1e4
    # Next to the border: the real pixel's value, not blended with the 0 beside it.
    np.testing.assert_allclose(red[:, 19], dn[:, 20], rtol=1e-6)
    np.testing.assert_allclose(red[:, 20:], (dn[:, 20:-1] + dn[:, 21:]) / 2, rtol=1e-5)
    assert np.isfinite(read(files.stack)[:, :, 19:]).all()  # every band, beyond the border


def write_rgb8(tmp: Path) -> Path:
    rgb = (scene_dn(1)[[2, 1, 0]] / 1e4 * 255 / 0.4).astype(np.uint8)
    path = write_raster(tmp / "rgb.tif", rgb, FULL)
    with rasterio.open(path, "r+") as dst:
        dst.descriptions = ("R", "G", "B")
    return path


def rgb8_args(tmp: Path, path: Path) -> list[str]:
    """A post-event 8-bit RGB scene, mapped only (no inventory, no DEM)."""
    return [
        "name=rgb8",
        "bands=post_rgb",
        "inventory=none",
        "source@post=stack",
        f"post.path={path}",
        f"post.date={POST_DATE}",
        "post.bands={red: R, green: G, blue: B}",
    ]


def test_8bit_imagery_at_the_16bit_scale_is_refused(tmp_path: Path) -> None:
    args = rgb8_args(tmp_path, write_rgb8(tmp_path))
    with pytest.raises(PrepareError) as err:
        run_prepare(tmp_path, args)
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        f"{tmp_path / 'rgb.tif'}: 8-bit values (0-255) at post.scale=0.0001 give reflectance up "
        "to 0.0255, which cannot be surface reflectance; set post.scale=0.00392 (1/255) for "
        "8-bit imagery"
    )
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.tif"))
    with pytest.raises(PrepareError, match=r"digital numbers.*set post.scale=0.00392 \(1/255\)"):
        run_prepare(tmp_path, [*args, "post.scale=1"])


def test_8bit_imagery_at_its_scale_prepares(tmp_path: Path) -> None:
    path = write_rgb8(tmp_path)
    files = run_prepare(tmp_path, [*rgb8_args(tmp_path, path), f"post.scale={1 / 255}"])
    red = read(files.stack)[0]
    np.testing.assert_allclose(red, read(path)[0] / 255, rtol=1e-6)


def compose_prepare(*overrides: str) -> dict:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("prepare", overrides=list(overrides))
    return OmegaConf.to_container(cfg.inventory)


def test_label_mapping_replaces_the_default(raw: Path, tmp_path: Path) -> None:
    user = "inventory.classes={0: stable, 255: landslide}"
    inventory = compose_prepare("name=x", "inventory=raster", user)
    assert inventory["classes"] == {0: "stable", 255: "landslide"}  # not merged with a default
    assert compose_prepare("name=x", "inventory=raster")["classes"] is None
    labels = np.where(scene_labels() == 2, 255, 0).astype(np.uint8)
    labels[:5] = 7  # a value of no class, ignored when asked to be
    path = write_raster(tmp_path / "labels255.tif", labels, FULL)
    args = with_args(scene_args(raw, tmp_path), f"inventory.path={path}", user)
    with pytest.raises(PrepareError) as err:
        run_prepare(tmp_path, args)
    assert str(err.value) == (
        f"{path}: values [7] have no class; add them to inventory.classes (landslide, stable or "
        "ignore), which replaces the default, e.g. inventory.classes={0: stable, 7: ignore, "
        "255: landslide}, or set inventory.unmapped=ignore"
    )
    assert not (tmp_path / "conf").exists()
    files = run_prepare(tmp_path, [*args, "inventory.unmapped=ignore"])
    mask = read(files.mask)[0]
    assert (mask[:5] == IGNORED).all()
    assert (mask[5:][labels[5:] == 255] == LANDSLIDE).all()
    assert (mask[5:][labels[5:] == 0] == STABLE).all()


BAD_TILES = {
    "empty folder": (
        lambda raw, tmp: (tmp / "empty").mkdir() or [f"post.path={tmp / 'empty'}"],
        r"^post.path: the folder .*empty holds no raster \(.tif, .tiff, .jp2, .vrt\)",
    ),
    "glob matching nothing": (
        lambda raw, tmp: [f"dem.path='{tmp / 'srtm_*.tif'}'"],
        r"^dem.path: no file matches .*srtm_\*.tif; fix the pattern or the folder in dem.path$",
    ),
    "tile without the band": (
        lambda raw, tmp: [
            "post.path=["
            + str(raw / "tiles" / "post" / "post_0.tif")
            + ","
            + str(write_raster(tmp / "three.tif", scene_dn(1)[:3], FULL))
            + "]"
        ],
        r"three.tif: no red band 'B4' \(bands: -, -, -\); set post.bands.red to a band name",
    ),
    "mixed data types": (
        lambda raw, tmp: [
            "pre.files.red=["
            + str(raw / "tiles" / "pre" / "B04" / "pre_0_B04.tif")
            + ","
            + str(write_raster(tmp / "f.tif", np.ones((9, 9), np.float32), FULL))
            + "]",
        ],
        r"f.tif: 1 bands of float32, unlike .*pre_0_B04.tif \(1 bands of uint16\); the files of "
        "pre.files.red must be tiles of one product",
    ),
}


@pytest.mark.parametrize("case", BAD_TILES)
def test_bad_tiles_fail_with_one_line(raw: Path, tmp_path: Path, case: str) -> None:
    make, message = BAD_TILES[case]
    with pytest.raises(PrepareError, match=message) as err:
        run_prepare(tmp_path, with_args(scene_args(raw, tmp_path), *make(raw, tmp_path)))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.tif"))
    assert not (tmp_path / "conf").exists()
