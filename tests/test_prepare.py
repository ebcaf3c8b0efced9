"""prepare.py: real-format inputs to a prepared domain or scene, bad inputs, training on it.

The inputs are written here as a user would bring them: Sentinel-2 band files (uint16
digital numbers) in UTM 45N, a DEM in geographic degrees at about 30 m, and a landslide
inventory GeoPackage in EPSG:4326.
"""

import json
import logging
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import torch
from omegaconf import DictConfig, OmegaConf
from pyproj import Transformer
from rasterio.transform import from_origin

import landslide.config
from landslide.band_stats import BandStats
from landslide.bands import BANDS, POST_RGB
from landslide.config import CONF_DIR, compose_config
from landslide.data.datamodule import LandslideDataModule
from landslide.data.sampling import load_pool
from landslide.layout import IGNORED, DomainFiles
from landslide.mapping import MapSettings, TrainedModel, map_scene, open_scene
from landslide.prepare import PrepareError, prepare
from landslide.task import SegmentationTask

UTM = "EPSG:32645"
X0, Y0, SIZE, RES = 340_000.0, 3_100_000.0, 160, 10.0
COLOURS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
#: Small pools and patches, so a prepared 160 px scene holds them.
SAMPLES = ["samples.patch_size=32", "samples.pool_size=40"]
POST_DATE = "2021-05-01"
HAS_JP2 = "JP2OpenJPEG" in rasterio.drivers.raster_driver_extensions().values()
TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
TO_LONLAT = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def elevation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth analytic terrain in metres at UTM coordinates."""
    u, v = x - X0, y - Y0
    return 500.0 + 300.0 * np.sin(2 * np.pi * u / 3000) * np.cos(2 * np.pi * v / 4000) + 0.05 * u


def slope_reference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Slope in degrees of :func:`elevation`, from its analytic gradient."""
    u, v = x - X0, y - Y0
    a, b = 2 * np.pi / 3000, 2 * np.pi / 4000
    dx = 300 * a * np.cos(a * u) * np.cos(b * v) + 0.05
    dy = -300 * b * np.sin(a * u) * np.sin(b * v)
    return np.degrees(np.arctan(np.hypot(dx, dy)))


def write_raster(path: Path, data: np.ndarray, crs: str | None, transform, **options) -> Path:
    data = data[None] if data.ndim == 2 else data
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0])
    profile.update(dtype=data.dtype, crs=crs, transform=transform, **options)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def landslide_polygons() -> list[shapely.Polygon]:
    """Three blobs in UTM metres."""
    centres = [(400, -400), (1100, -500), (700, -1200)]
    return [shapely.Point(X0 + cx, Y0 + cy).buffer(150) for cx, cy in centres]


def reflectance(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = {"blue": 0.04, "green": 0.07, "red": 0.05, "nir": 0.3}
    return {c: (v + rng.uniform(0, 0.05, (SIZE, SIZE))).astype(np.float32) for c, v in base.items()}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real-format inputs: band files per date, a DEM in degrees, an inventory in 4326."""
    root = tmp_path_factory.mktemp("raw")
    transform = from_origin(X0, Y0, RES, RES)
    for seed, date in enumerate(("pre", "post")):
        (root / date).mkdir()
        for colour, values in reflectance(seed).items():
            dn = np.round(values * 10000).astype(np.uint16)
            write_raster(root / date / f"{COLOURS[colour]}.tif", dn, UTM, transform, nodata=0)
    west, south = TO_LONLAT.transform(X0 - 500, Y0 - SIZE * RES - 500)
    east, north = TO_LONLAT.transform(X0 + SIZE * RES + 500, Y0 + 500)
    step = 1 / 3600
    lons = west + (np.arange(math.ceil((east - west) / step)) + 0.5) * step
    lats = north - (np.arange(math.ceil((north - south) / step)) + 0.5) * step
    x, y = TO_UTM.transform(*np.meshgrid(lons, lats))
    dem = elevation(x, y).astype(np.float32)
    write_raster(root / "dem.tif", dem, "EPSG:4326", from_origin(west, north, step, step))
    frame = gpd.GeoDataFrame(geometry=landslide_polygons(), crs=UTM).to_crs("EPSG:4326")
    frame.to_file(root / "inventory.gpkg", driver="GPKG")
    return root


def local_conf(tmp: Path) -> Path:
    """The stand-in for the project's conf/local/ in a test started in tmp."""
    return tmp / "conf" / "local"


def overrides(raw: Path, tmp: Path, name: str = "testland") -> list[str]:
    """prepare.py overrides pointing at the raw inputs, writing under tmp."""
    out = [f"name={name}", f"register_dir={local_conf(tmp)}", *SAMPLES]
    for date in ("pre", "post"):
        out.append(f"{date}.path={raw / date}")
        out += [f"{date}.files.{c}={b}.tif" for c, b in COLOURS.items()]
    return out + [
        f"post.date={POST_DATE}",
        f"dem.path={raw / 'dem.tif'}",
        f"inventory.path={raw / 'inventory.gpkg'}",
    ]


def run_prepare(tmp: Path, args: list[str]) -> DomainFiles:
    cfg = compose_config(args, root_dir=tmp, config_name="prepare")
    return prepare(cfg)


@pytest.fixture(scope="module")
def prepared(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    tmp = tmp_path_factory.mktemp("run")
    return run_prepare(tmp, overrides(raw, tmp))


def read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), src.profile | {"descriptions": src.descriptions}


def test_stack_matches_an_independent_computation(raw: Path, prepared: DomainFiles) -> None:
    stack, profile = read(prepared.stack)
    assert profile["descriptions"] == BANDS
    assert profile["crs"] == UTM and profile["transform"] == from_origin(X0, Y0, RES, RES)
    assert profile["tiled"] and profile["compress"] == "deflate"
    bands = dict(zip(BANDS, stack, strict=True))
    rows, cols = np.meshgrid([5, 40, 80, 120, 150], [7, 33, 90, 151], indexing="ij")
    for date in ("pre", "post"):
        dn = {c: read(raw / date / f"{b}.tif")[0][0].astype(np.float64) for c, b in COLOURS.items()}
        red, nir = dn["red"][rows, cols] / 1e4, dn["nir"][rows, cols] / 1e4
        np.testing.assert_allclose(
            bands[f"{date}_ndvi"][rows, cols], (nir - red) / (nir + red), rtol=1e-6
        )
        np.testing.assert_allclose(bands[f"{date}_red"][rows, cols], red, rtol=1e-6)
    # Slope after reprojecting the degree DEM to 10 m, against the analytic slope.
    inner = np.s_[2:-2, 2:-2]
    x = X0 + (np.arange(SIZE) + 0.5) * RES
    y = Y0 - (np.arange(SIZE) + 0.5) * RES
    reference = slope_reference(*np.meshgrid(x, y))
    error = np.abs(bands["slope"] - reference)[inner]
    assert error.max() < 1.0 and error.mean() < 0.2, (error.max(), error.mean())
    assert 0 < bands["hillshade"].min() and bands["hillshade"].max() <= 255


def test_mask_stats_index_and_registration(prepared: DomainFiles) -> None:
    mask = read(prepared.mask)[0][0]
    x = X0 + (np.arange(SIZE) + 0.5) * RES
    y = Y0 - (np.arange(SIZE) + 0.5) * RES
    centres = shapely.points(*np.meshgrid(x, y))
    inside = shapely.contains(shapely.union_all(landslide_polygons()), centres)
    assert np.mean((mask == 1) == inside) > 0.99
    stack = read(prepared.stack)[0]
    stats = BandStats.load(prepared.stats)
    assert stats.bands == BANDS
    np.testing.assert_allclose(stats.minimum, np.nanmin(stack, axis=(1, 2)), rtol=1e-6)
    assert gpd.read_file(prepared.inventory).crs == UTM
    index = json.loads(prepared.samples.read_text())
    assert (len(index["train"]), len(index["test"])) == (28, 12)
    conf = local_conf(prepared.root.parents[2])
    assert "role: known" in (conf / "domain" / "testland.yaml").read_text()
    assert "testland: 28" in (conf / "domain_mix" / "testland.yaml").read_text()
    assert not list(prepared.root.parent.glob(".*"))  # no temporaries left


def test_datamodule_uses_the_saved_index(prepared: DomainFiles) -> None:
    dm = LandslideDataModule(
        prepared.root.parent,
        {"testland": {"role": "known"}},
        {"testland": 28},
        patch_size=32,
        pool_size=40,
    )
    dm.setup()
    assert dm.pools["testland"] == load_pool(prepared.samples, dm.pool_spec("testland"))
    sample = dm.train_dataloader().dataset[0]
    assert sample["image"].shape == (10, 32, 32) and not sample["image"].isnan().any()


def compose_train(tmp: Path, name: str, extra: list[str]) -> DictConfig:
    """train.py's config for domain ``name`` in a run started in tmp.

    The primary config's own search path (``${local_conf_dir:}``) finds the domain, with the
    test's conf/local in place of the project's.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(landslide.config, "LOCAL_CONF_DIR", local_conf(tmp))
        return compose_config(
            [
                "data=prepared",
                f"+domain@data.domains.{name}={name}",
                f"domain_mix={name}",
                "trainer=quick",
                "data.patch_size=32",
                "data.pool_size=40",
                "model.net.widths=[8,16,32,64]",
                f"logger.tracking_uri=sqlite:///{tmp}/mlruns/mlflow.db",
                *extra,
            ],
            root_dir=tmp,
            output_dir=tmp / "output",
        )


@pytest.mark.parametrize("primary", ["train", "prepare", "select_model", "report", "mapping/map"])
def test_every_entry_point_searches_conf_local(primary: str) -> None:
    """conf/local/ by its absolute path, whatever folder a command is started in."""
    cfg = OmegaConf.load(CONF_DIR / f"{primary}.yaml")
    assert list(cfg.hydra.searchpath) == [f"file://{CONF_DIR / 'local'}"]


def test_train_on_a_prepared_domain(prepared: DomainFiles, tmp_path: Path) -> None:
    from landslide.training import train

    run = prepared.root.parents[2]
    cfg = compose_train(run, "testland", [])
    assert cfg.model.net.in_channels == 10
    metrics = train(cfg)
    assert 0.0 <= metrics["test/testland/f1"] <= 1.0


def test_band_subset_without_dem_or_pre_event_imagery(raw: Path, tmp_path: Path) -> None:
    from landslide.config import instantiate_config

    args = [a for a in overrides(raw, tmp_path, "rgb") if not a.startswith(("pre.", "dem."))]
    files = run_prepare(tmp_path, [*args, "bands=post_rgb"])
    stack, profile = read(files.stack)
    assert profile["descriptions"] == ("post_red", "post_green", "post_blue")
    cfg = compose_train(tmp_path, "rgb", ["bands=post_rgb"])
    assert cfg.model.net.in_channels == 3
    task = instantiate_config(cfg.task, test_domains=["rgb"])
    dm = instantiate_config(cfg.data)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert task(batch["image"]).shape == (5, 32, 32)
    cfg = compose_train(tmp_path, "rgb", ["bands=paper"])
    dm = LandslideDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    with pytest.raises(ValueError, match="has no band slope, hillshade, pre_red"):
        dm.setup()


def test_multiband_geotiff_matches_band_files(
    raw: Path, prepared: DomainFiles, tmp_path: Path
) -> None:
    dn = np.stack([read(raw / "post" / f"{b}.tif")[0][0] for b in COLOURS.values()])
    path = write_raster(tmp_path / "post.tif", dn, UTM, from_origin(X0, Y0, RES, RES), nodata=0)
    with rasterio.open(path, "r+") as dst:
        dst.descriptions = ("B2", "B3", "B4", "B8")
    args = overrides(raw, tmp_path, "ee") + ["source@post=stack", f"post.path={path}"]
    args = [a for a in args if not a.startswith("post.files")]
    files = run_prepare(tmp_path, args)
    np.testing.assert_array_equal(read(files.stack)[0], read(prepared.stack)[0])


@pytest.mark.skipif(not HAS_JP2, reason="the installed GDAL has no JP2OpenJPEG driver")
def test_safe_l2a_product_applies_offset_and_clouds(raw: Path, tmp_path: Path) -> None:
    """A minimal L2A .SAFE (baseline 04.00): DN = 10000 * reflectance + 1000, SCL clouds."""
    safe = tmp_path / "S2B_MSIL2A_20210501T045659_N0400_R119_T45RUL_20210501T074413.SAFE"
    img = safe / "GRANULE" / "L2A_T45RUL_A021714_20210501T050524" / "IMG_DATA"
    (img / "R10m").mkdir(parents=True)
    (img / "R20m").mkdir()
    jp2 = dict(driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES")
    for band in COLOURS.values():
        dn = read(raw / "post" / f"{band}.tif")[0][0] + 1000
        write_raster(
            img / "R10m" / f"T45RUL_20210501T045659_{band}_10m.jp2",
            dn,
            UTM,
            from_origin(X0, Y0, RES, RES),
            **jp2,
        )
    scl = np.full((SIZE // 2, SIZE // 2), 4, np.uint8)
    scl[:8, :8] = 9  # a cloud in the top-left corner: 16x16 px at 10 m
    write_raster(
        img / "R20m" / "T45RUL_20210501T045659_SCL_20m.jp2",
        scl,
        UTM,
        from_origin(X0, Y0, 20, 20),
        **jp2,
    )
    offsets = "".join(f'<BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>' for i in range(13))
    (safe / "MTD_MSIL2A.xml").write_text(
        '<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/'
        'User_Product_Level-2A.xsd"><n1:General_Info><Product_Info>'
        "<PRODUCT_START_TIME>2021-05-01T04:56:59.024Z</PRODUCT_START_TIME>"
        "<PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL><PROCESSING_BASELINE>04.00"
        "</PROCESSING_BASELINE></Product_Info><Product_Image_Characteristics>"
        '<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000'
        "</BOA_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST><BOA_ADD_OFFSET_VALUES_LIST>"
        f"{offsets}</BOA_ADD_OFFSET_VALUES_LIST></Product_Image_Characteristics>"
        "</n1:General_Info></n1:Level-2A_User_Product>"
    )
    args = overrides(raw, tmp_path, "safe") + ["source@post=safe", f"post.path={safe}"]
    args = [a for a in args if not a.startswith(("post.files", "post.date"))]
    files = run_prepare(tmp_path, args)
    stack = dict(zip(BANDS, read(files.stack)[0], strict=True))
    expected = read(raw / "post" / "B04.tif")[0][0] / 1e4
    np.testing.assert_allclose(stack["post_red"][20:, 20:], expected[20:, 20:], rtol=1e-6)
    mask = read(files.mask)[0][0]
    assert (mask[:16, :16] == IGNORED).all() and np.isnan(stack["post_red"][:16, :16]).all()
    assert "post_date: '2021-05-01'" in (files.root / "domain.yaml").read_text()


def test_label_raster_and_blocked_split(raw: Path, tmp_path: Path) -> None:
    labels = np.ones((SIZE, SIZE), np.uint8)
    x = X0 + (np.arange(SIZE) + 0.5) * RES
    y = Y0 - (np.arange(SIZE) + 0.5) * RES
    inside = shapely.contains(
        shapely.union_all(landslide_polygons()), shapely.points(*np.meshgrid(x, y))
    )
    labels[inside] = 2
    labels[:, :10] = 0  # unlabelled strip
    path = write_raster(tmp_path / "labels.tif", labels, UTM, from_origin(X0, Y0, RES, RES))
    args = overrides(raw, tmp_path, "labels") + [
        "inventory=raster",
        f"inventory.path={path}",
        "samples.split=blocked",
        "samples.block_size=64",
        "samples.pool_size=20",
    ]
    files = run_prepare(
        tmp_path, [a for a in args if a != f"inventory.path={raw / 'inventory.gpkg'}"]
    )
    out = read(files.mask)[0][0]
    assert (out[:, :10] == IGNORED).all() and (out[inside & (np.arange(SIZE) >= 10)] == 1).all()
    index = json.loads(files.samples.read_text())
    assert index["spec"]["split"] == "blocked"
    covered = {}
    for part in ("train", "test"):
        covered[part] = np.zeros((SIZE, SIZE), bool)
        for row, col, _ in index[part]:
            covered[part][row : row + 32, col : col + 32] = True
    assert not (covered["train"] & covered["test"]).any()
    assert not covered["train"][:, :10].any() and not covered["test"][:, :10].any()


#: A scene folder's files: no mask, inventory or sample index.
SCENE_FILES = {"domain.yaml", "stack.tif", "stats.json"}


def scene_overrides(raw: Path, tmp: Path, name: str = "testland") -> list[str]:
    """:func:`overrides` for a scene: ``inventory=none`` instead of the inventory file."""
    args = [a for a in overrides(raw, tmp, name) if not a.startswith("inventory.")]
    return [*args, "inventory=none"]


def domain_record(files: DomainFiles) -> dict:
    return OmegaConf.to_container(OmegaConf.load(files.root / "domain.yaml"))


def test_scene_without_inventory_has_the_labelled_stack(
    raw: Path, prepared: DomainFiles, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="landslide.prepare")
    files = run_prepare(tmp_path, scene_overrides(raw, tmp_path))
    assert files.root == tmp_path / "data" / "prepared" / "testland"
    assert {p.name for p in files.root.iterdir()} == SCENE_FILES
    assert files.stack.read_bytes() == prepared.stack.read_bytes()  # same COG, bit for bit
    assert files.stats.read_text() == prepared.stats.read_text()
    domain = domain_record(files)
    assert domain == domain_record(prepared) | {"role": "scene"}
    assert (domain["name"], domain["crs"], domain["bands"]) == ("testland", UTM, list(BANDS))
    assert domain["post_date"] == POST_DATE
    assert not (tmp_path / "conf").exists()  # neither conf/domain nor conf/domain_mix
    assert not list(files.root.parent.glob(".*"))  # no temporaries left
    [summary] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("prepared")]
    bands = ", ".join(BANDS)
    assert summary == f"prepared scene {files.root}: 160x160 px, bands {bands}, 0 valid pixels lost"


def test_small_scene_replaces_a_registered_domain(raw: Path, tmp_path: Path) -> None:
    """A scene smaller than one patch is fine; the earlier domain's registration goes."""
    run_prepare(tmp_path, overrides(raw, tmp_path))
    registered = [local_conf(tmp_path) / g / "testland.yaml" for g in ("domain", "domain_mix")]
    assert all(path.is_file() for path in registered)
    files = run_prepare(tmp_path, scene_overrides(raw, tmp_path) + small_aoi(tmp_path))
    assert {p.name for p in files.root.iterdir()} == SCENE_FILES
    assert not any(path.exists() for path in registered)
    stack, profile = read(files.stack)
    assert stack.shape == (10, 20, 20)
    assert profile["transform"] == from_origin(X0 + 100, Y0 - 100, RES, RES)
    red = dict(zip(BANDS, stack, strict=True))["post_red"]
    np.testing.assert_allclose(red, dn(raw)[10:30, 10:30] / 1e4, rtol=1e-6)


def test_post_rgb_scene_reads_only_post_event_imagery(raw: Path, tmp_path: Path) -> None:
    # No pre.* or dem.* settings: their paths stay unset (???), so reading them would fail.
    args = [a for a in scene_overrides(raw, tmp_path, "rgb") if not a.startswith(("pre.", "dem."))]
    files = run_prepare(tmp_path, [*args, "bands=post_rgb"])
    assert {p.name for p in files.root.iterdir()} == SCENE_FILES
    stack, profile = read(files.stack)
    assert profile["descriptions"] == ("post_red", "post_green", "post_blue")
    for band, colour in zip(stack, ("B04", "B03", "B02"), strict=True):
        expected = read(raw / "post" / f"{colour}.tif")[0][0] / 1e4
        np.testing.assert_allclose(band, expected, rtol=1e-6)
    stats = BandStats.load(files.stats)
    assert stats.bands == ("post_red", "post_green", "post_blue")
    np.testing.assert_allclose(stats.maximum, np.nanmax(stack, axis=(1, 2)), rtol=1e-6)
    domain = domain_record(files)
    assert domain["role"] == "scene" and domain["bands"] == ["post_red", "post_green", "post_blue"]
    assert domain["post_date"] == POST_DATE and "pre_date" not in domain
    assert not (tmp_path / "conf").exists()


def without_inventory(raw: Path, tmp: Path, *extra: str) -> list[str]:
    """:func:`overrides` without the inventory file, plus ``extra``."""
    return [a for a in overrides(raw, tmp) if not a.startswith("inventory.")] + list(extra)


ROLE_ERRORS = {
    "known without inventory": (
        lambda raw, tmp: without_inventory(raw, tmp, "inventory=none", "role=known"),
        r"^role=known needs a landslide inventory to label its samples; give "
        r"inventory.path=\.\.\. \(not inventory=none\), or drop role=known to prepare a scene "
        "for mapping only$",
    ),
    "unknown without inventory": (
        lambda raw, tmp: without_inventory(raw, tmp, "inventory=none", "role=unknown"),
        "^role=unknown needs a landslide inventory",
    ),
    "scene with an inventory": (
        lambda raw, tmp: overrides(raw, tmp) + ["role=scene"],
        "^role=scene prepares no labels, but an inventory is configured; add inventory=none",
    ),
    "no such role": (
        lambda raw, tmp: without_inventory(raw, tmp, "inventory=none", "role=scenes"),
        "^role=scenes: no such role; use known, unknown, scene$",
    ),
    "missing inventory path": (
        lambda raw, tmp: without_inventory(raw, tmp),
        r"^inventory.path is not set; give it, e.g. inventory.path=\.\.\., or use "
        "inventory=none to prepare a scene for mapping only$",
    ),
    "cloudy scene": (
        lambda raw, tmp: without_inventory(raw, tmp, "inventory=none") + cloudy(raw, tmp, 0.6),
        r"scl.tif \(cloud\): 60.0% of the area is nodata, NaN or cloud",
    ),
}


@pytest.mark.parametrize("case", ROLE_ERRORS)
def test_role_and_inventory_mismatch_fails_with_one_line(
    raw: Path, tmp_path: Path, case: str
) -> None:
    make, message = ROLE_ERRORS[case]
    with pytest.raises(PrepareError, match=message) as err:
        run_prepare(tmp_path, make(raw, tmp_path))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.tif"))
    assert not (tmp_path / "conf").exists()


def write_like(raw: Path, tmp: Path, name: str, data: np.ndarray, **options) -> Path:
    """A copy of raw band file ``name`` with other values or profile options."""
    with rasterio.open(raw / name) as src:
        profile = src.profile | options
    path = tmp / Path(name).name
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"])[None] if data.ndim == 2 else data)
    return path


def bad_post_red(raw: Path, tmp: Path, data: np.ndarray, **options) -> list[str]:
    return [f"post.files.red={write_like(raw, tmp, 'post/B04.tif', data, **options)}"]


def dn(raw: Path) -> np.ndarray:
    return read(raw / "post" / "B04.tif")[0][0]


def cloudy(raw: Path, tmp: Path, share: float) -> list[str]:
    clouds = np.zeros((SIZE, SIZE), np.uint8)
    clouds[: round(SIZE * share)] = 9
    path = write_raster(tmp / "scl.tif", clouds, UTM, from_origin(X0, Y0, RES, RES))
    return [f"+post.clouds={{path: {path}, values: [9]}}"]


def polygons_file(tmp: Path, geometries: list, crs: str = "EPSG:4326") -> list[str]:
    path = tmp / "bad.geojson"
    gpd.GeoDataFrame(geometry=geometries, crs=crs).to_file(path, driver="GeoJSON")
    return [f"inventory.path={path}"]


def bowtie() -> shapely.Polygon:
    lon, lat = TO_LONLAT.transform(X0 + 500, Y0 - 500)
    d = 0.002
    return shapely.Polygon([(lon, lat), (lon + d, lat + d), (lon + d, lat), (lon, lat + d)])


def far_dem(raw: Path, tmp: Path) -> list[str]:
    with rasterio.open(raw / "dem.tif") as src:
        t = src.transform
        data = src.read(1)
    moved = from_origin(t.c + 3.0, t.f, t.a, -t.e)
    return [f"dem.path={write_raster(tmp / 'dem.tif', data, 'EPSG:4326', moved)}"]


def small_aoi(tmp: Path) -> list[str]:
    box = shapely.box(X0 + 100, Y0 - 300, X0 + 300, Y0 - 100)
    path = tmp / "aoi.gpkg"
    gpd.GeoDataFrame(geometry=[box], crs=UTM).to_file(path)
    return [f"aoi={path}"]


BAD_INPUTS = {
    "missing CRS": (
        lambda raw, tmp: bad_post_red(raw, tmp, dn(raw), crs=None),
        "B04.tif: has no CRS; set post.crs=EPSG:<code>",
    ),
    "mismatched CRS": (
        lambda raw, tmp: bad_post_red(raw, tmp, dn(raw), crs="EPSG:32644"),
        r"B03.tif: CRS EPSG:32645 differs from .*B04.tif \(EPSG:32644\); the band files of "
        "one date must share a CRS",
    ),
    "no overlap": (far_dem, "dem.tif: does not overlap .*; check its CRS and extent"),
    "missing band": (
        lambda raw, tmp: ["post.files.nir=null"],
        "post: no nir band file.*set post.files.nir=<file>",
    ),
    "all nodata": (
        lambda raw, tmp: bad_post_red(raw, tmp, np.zeros_like(dn(raw))),
        "B04.tif: no valid pixel in the area",
    ),
    "cloud covered": (
        lambda raw, tmp: cloudy(raw, tmp, 0.6),
        r"scl.tif \(cloud\): 60.0% of the area is nodata, NaN or cloud, more than "
        "max_invalid_share=0.5",
    ),
    "unscaled DN": (
        lambda raw, tmp: ["post.scale=1"],
        "B0[2-8].tif: values up to .* look like digital numbers.*set post.scale",
    ),
    "empty inventory": (
        lambda raw, tmp: polygons_file(tmp, []),
        "bad.geojson: holds no geometry",
    ),
    "polygons outside": (
        lambda raw, tmp: polygons_file(tmp, [shapely.box(10, 10, 10.01, 10.01)]),
        "bad.geojson: none of its 1 polygons lies in the imagery's area",
    ),
    "invalid geometry": (
        lambda raw, tmp: polygons_file(tmp, [bowtie()]),
        "bad.geojson: 1 invalid polygons .*set inventory.repair_invalid=true",
    ),
    "degree grid": (lambda raw, tmp: ["grid.crs=EPSG:4326"], "not a projected CRS in metres"),
    "missing DEM path": (
        lambda raw, tmp: ["dem.path=???"],
        r"^dem.path is not set; give it, e.g. dem.path=\.\.\.$",
    ),
    "smaller than a patch": (
        lambda raw, tmp: small_aoi(tmp),
        "the area is 20x20 px at 10 m, smaller than one 32 px patch",
    ),
    "foreign config": (
        lambda raw, tmp: (
            (local_conf(tmp) / "domain").mkdir(parents=True)
            or (local_conf(tmp) / "domain" / "testland.yaml").write_text("name: testland\n")
            and []
        ),
        "testland.yaml: exists and was not written by prepare.py",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_fails_with_one_line_and_no_output(raw: Path, tmp_path: Path, case: str) -> None:
    make, message = BAD_INPUTS[case]
    args = overrides(raw, tmp_path) + make(raw, tmp_path)
    with pytest.raises(PrepareError, match=message) as err:
        run_prepare(tmp_path, args)
    assert "\n" not in str(err.value)
    prepared = tmp_path / "data" / "prepared"
    assert not prepared.exists() or not any(prepared.iterdir())
    assert not (local_conf(tmp_path) / "domain_mix").exists()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("nan", r"B04.tif: 6.2% of the area is nodata, NaN or cloud; those pixels are left out"),
        ("cloud", r"scl.tif \(cloud\): 10.0% of the area is nodata, NaN or cloud"),
        ("feet", "dem.tif: elevations .* are implausible; if the DEM is in feet set dem.units"),
    ],
)
def test_recoverable_input_warns_and_completes(
    raw: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str, message: str
) -> None:
    if case == "nan":
        values = dn(raw).astype(np.float32)
        values[:10] = np.nan
        extra = bad_post_red(raw, tmp_path, values, dtype="float32", nodata=None)
    elif case == "cloud":
        extra = cloudy(raw, tmp_path, 0.1)
    else:
        with rasterio.open(raw / "dem.tif") as src:
            feet = src.read(1) / 0.3048 + 30000
            path = write_raster(tmp_path / "dem.tif", feet, src.crs, src.transform)
        extra = [f"dem.path={path}"]
    files = run_prepare(tmp_path, overrides(raw, tmp_path) + extra)
    assert any(re.search(message, r.getMessage()) for r in caplog.records), caplog.text
    assert not files.missing() and files.samples.is_file()
    mask = read(files.mask)[0][0]
    if case == "nan":
        assert (mask[:10] == IGNORED).all() and (mask[10:] != IGNORED).all()


def test_a_prepared_scene_is_mapped_by_a_model_of_its_bands(raw: Path, tmp_path: Path) -> None:
    """The path of a new event: a post-event RGB scene with no inventory, mapped."""
    args = [a for a in scene_overrides(raw, tmp_path, "rgb") if not a.startswith(("pre.", "dem."))]
    files = run_prepare(tmp_path, [*args, "bands=post_rgb"])
    torch.manual_seed(0)
    net = {"_target_": "landslide.models.ResUNet", "in_channels": 3, "widths": [8, 16, 32, 64]}
    task = SegmentationTask(net, bands=list(POST_RGB)).eval()
    model = TrainedModel(task, POST_RGB, "minmax", 0.5, "rgb-model", tmp_path / "rgb.ckpt")
    scene = open_scene(files.root)
    assert scene.reference_mask is None and scene.bands == POST_RGB
    settings = MapSettings(window=64, overlap=16, device="cpu", progress=False)
    result = map_scene(model, scene, tmp_path / "map", settings)
    probability, profile = read(result.path("probability.tif"))
    stack, stack_profile = read(files.stack)
    assert probability.shape == (1, *stack.shape[1:])
    assert (profile["crs"], profile["transform"]) == (
        stack_profile["crs"],
        stack_profile["transform"],
    )
    assert np.isfinite(probability).all() and result.metrics == {}
    assert result.summary["scene"]["reference"] is None
    assert "ignored_share" not in gpd.read_file(result.path("landslides.gpkg")).columns
