"""The embedded default world (seeded synthetic study areas) and the terrain/spectral features."""

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from omegaconf import OmegaConf
from pyproj import Transformer

from landslide.band_stats import BandStats
from landslide.bands import BANDS
from landslide.features import hillshade, ndvi, slope_degrees, sun_position
from landslide.layout import DomainFiles
from landslide.world import WorldParams, ensure_world, generate_domain, simulation_seed
from landslide.world import generator as world_generator
from landslide.world import scene as world_scene
from landslide.world.noise import NoiseField

CONF = Path(__file__).resolve().parents[1] / "conf" / "domain"
NAMES = ("iburi", "jiuzhaigou", "palu", "luding")
SIZE = 256


def load_domains() -> dict:
    return {name: OmegaConf.load(CONF / f"{name}.yaml") for name in NAMES}


def read(files: DomainFiles) -> tuple[dict[str, np.ndarray], np.ndarray]:
    with rasterio.open(files.stack) as src:
        stack = src.read()
    with rasterio.open(files.mask) as src:
        mask = src.read(1)
    return dict(zip(BANDS, stack, strict=True)), mask


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DomainFiles]:
    domains = load_domains()
    root = tmp_path_factory.mktemp("world")
    return ensure_world(root, domains, {n: d.world for n, d in domains.items()}, SIZE, seed=0)


# --- terrain and spectral features --------------------------------------------------------


@pytest.mark.parametrize("a", [0.0, 0.5, 3.0, 25.0])
def test_slope_of_a_plane_is_exact_in_the_interior(a: float) -> None:
    res = 10.0
    cols = np.arange(40, dtype=np.float64)
    east = a * np.tile(cols, (30, 1))  # z = a * x (x in pixels)
    north = a * np.tile(cols[:30, None], (1, 40))  # rising southwards
    expected = math.degrees(math.atan(a / res))
    for dem in (east, north):
        slope = slope_degrees(dem, res)
        assert slope.shape == dem.shape and slope.dtype == np.float32
        np.testing.assert_allclose(slope[1:-1, 1:-1], expected, rtol=1e-6, atol=1e-5)


def test_hillshade_of_flat_ground_is_255_sin_altitude() -> None:
    flat = np.full((20, 20), 321.0)
    for altitude in (15.0, 45.0, 61.3, 90.0):
        shade = hillshade(flat, 10.0, azimuth_deg=137.0, altitude_deg=altitude)
        np.testing.assert_allclose(shade, 255.0 * math.sin(math.radians(altitude)), atol=1e-3)


def test_hillshade_orientation_follows_the_sun() -> None:
    res = 10.0
    x = np.tile(np.arange(20, dtype=np.float64), (20, 1)) * res
    east_facing = -x  # 45 degree slope descending eastwards
    inner = (slice(1, -1), slice(1, -1))
    # Sun in the east at 45 degrees: the surface normal points at the sun.
    np.testing.assert_allclose(hillshade(east_facing, res, 90.0, 45.0)[inner], 255.0, atol=1e-3)
    # Sun in the west at 45 degrees: grazing light, zero.
    np.testing.assert_allclose(hillshade(east_facing, res, 270.0, 45.0)[inner], 0.0, atol=1e-3)
    # A north-facing slope (rising southwards) is lit by a northern sun.
    rows = np.tile(np.arange(20, dtype=np.float64)[:, None], (1, 20)) * res
    north_lit = hillshade(rows, res, 0.0, 45.0)[inner]
    south_lit = hillshade(rows, res, 180.0, 45.0)[inner]
    assert north_lit.min() > 250.0 and south_lit.max() < 1.0


def test_sun_position_matches_known_geometry() -> None:
    # Solar noon at the June solstice, 40 N: altitude 90 - 40 + 23.44, sun due south.
    azimuth, altitude = sun_position(40.0, -105.0, "2024-06-21", solar_hour=12.0)
    assert altitude == pytest.approx(73.44, abs=0.3)
    assert azimuth == pytest.approx(180.0, abs=1.0)
    # The same via the UTC clock (solar noon at 105 W is about 19:02 UTC).
    azimuth, altitude = sun_position(40.0, -105.0, "2024-06-21", utc_hour=19.03)
    assert altitude == pytest.approx(73.44, abs=0.3)
    # Equator at the March equinox, noon: nearly overhead.
    assert sun_position(0.0, 0.0, "2024-03-20", solar_hour=12.0)[1] > 88.5
    # Sentinel-2's 10:30 overpass: morning sun, south-east in the north, north-east in the south.
    az_n, alt_n = sun_position(42.72, 142.0, "2019-05-23")
    az_s, alt_s = sun_position(-30.0, 120.0, "2019-05-23")
    assert 90.0 < az_n < 180.0 and 50.0 < alt_n < 70.0
    assert 0.0 < az_s < 90.0 and 20.0 < alt_s < 45.0


def test_ndvi_matches_a_hand_computation() -> None:
    red = np.array([[0.1, 0.2], [0.0, 0.3]])
    nir = np.array([[0.5, 0.2], [0.0, 0.1]])
    expected = np.array([[0.4 / 0.6, 0.0], [0.0, -0.2 / 0.4]], np.float32)
    out = ndvi(red, nir)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_noise_field_has_unit_variance_and_no_seams() -> None:
    field = NoiseField(3, exponent=3.0, corr_px=20.0, scene_px=(256, 256))
    whole = field.window(0, 0, 256, 256)
    assert whole.std() == pytest.approx(1.0, abs=0.15) and abs(whole.mean()) < 0.2
    tiles = np.block([[field.window(r, c, 128, 128) for c in (0, 128)] for r in (0, 128)])
    np.testing.assert_allclose(tiles, whole, atol=1e-5)
    # Neighbouring pixels are correlated, distant ones are not.
    assert np.corrcoef(whole[:, :-1].ravel(), whole[:, 1:].ravel())[0, 1] > 0.7
    assert abs(np.corrcoef(whole[:, :-128].ravel(), whole[:, 128:].ravel())[0, 1]) < 0.3


def test_full_size_matches_table_i() -> None:
    sides = {n: WorldParams.from_mapping(d.world).full_size_px() for n, d in load_domains().items()}
    assert sides["iburi"] ** 2 * 1e-4 == pytest.approx(683.86, rel=2e-3)
    assert sides["jiuzhaigou"] ** 2 * 1e-4 == pytest.approx(919.804, rel=2e-3)
    assert sides["palu"] ** 2 * 1e-4 == pytest.approx(2488.39, rel=2e-3)


# --- generated domains ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_domain_files_and_grid(world: dict[str, DomainFiles], name: str) -> None:
    files = world[name]
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    assert not files.missing() and files.inventory.is_file()
    with rasterio.open(files.stack) as src:
        assert src.crs.to_string() == cfg.crs
        assert src.res == (10.0, 10.0)
        assert (src.width, src.height, src.count) == (SIZE, SIZE, len(BANDS))
        assert src.dtypes == ("float32",) * len(BANDS)
        assert src.descriptions == BANDS
        # 256 x 256 tiles (rasterio's profile calls a single-tile file untiled).
        assert set(src.block_shapes) == {(256, 256)}
        bounds, transform = src.bounds, src.transform
    with rasterio.open(files.mask) as src:
        assert src.crs.to_string() == cfg.crs and src.transform == transform
        assert src.dtypes == ("uint8",)
        assert set(np.unique(src.read(1))) <= {0, 1}
    # The scene lies near the epicentre (within the configured offset and a half scene).
    to_utm = Transformer.from_crs("EPSG:4326", cfg.crs, always_xy=True)
    ex, ey = to_utm.transform(cfg.epicentre.lon, cfg.epicentre.lat)
    cx, cy = (bounds.left + bounds.right) / 2, (bounds.bottom + bounds.top) / 2
    off_e, off_n = cfg.world.centre_offset_m
    assert abs(cx - ex - off_e) <= 10.0 and abs(cy - ey - off_n) <= 10.0
    assert BandStats.load(files.stats).bands == BANDS


@pytest.mark.parametrize("name", NAMES)
def test_landslides_are_steep_changes_at_the_configured_share(
    world: dict[str, DomainFiles], name: str
) -> None:
    bands, mask = read(world[name])
    on = mask == 1
    share = on.mean()
    target = OmegaConf.load(CONF / f"{name}.yaml").world.landslides.share
    assert target / 1.5 <= share <= target * 1.5
    drop = bands["pre_ndvi"] - bands["post_ndvi"]
    assert drop[on].mean() > drop[~on].mean() + 0.2
    assert bands["slope"][on].mean() > np.median(bands["slope"])
    # Not every landslide pixel is trivially bare: partly stripped slides and mixed edges.
    assert 0.01 < (drop[on] < 0.2).mean() < 0.6
    assert np.isfinite(np.stack(list(bands.values()))).all()
    for band in ("pre_red", "post_red", "pre_blue", "post_green"):
        assert 0.0 <= bands[band].min() and bands[band].max() <= 1.0
    assert 0.0 <= bands["hillshade"].min() and bands["hillshade"].max() <= 255.0


@pytest.mark.parametrize("name", NAMES)
def test_inventory_matches_the_mask(world: dict[str, DomainFiles], name: str) -> None:
    files = world[name]
    _, mask = read(files)
    inventory = gpd.read_file(files.inventory)
    assert len(inventory) > 0
    assert inventory.crs.to_string() == OmegaConf.load(CONF / f"{name}.yaml").crs
    assert inventory["landslide_id"].is_unique
    mask_area = mask.sum() * 100.0
    assert inventory.union_all().area == pytest.approx(mask_area, rel=1e-6)
    assert inventory["area_m2"].sum() == pytest.approx(mask_area, rel=1e-6)
    lo, hi = OmegaConf.load(CONF / f"{name}.yaml").world.landslides.area_m2
    assert inventory["area_m2"].max() <= 1.5 * hi
    # A power-law tail: many small landslides, a few large ones.
    areas = inventory["area_m2"]
    assert areas.median() < areas.mean() and areas.max() > 4 * areas.median()


def test_domains_differ(world: dict[str, DomainFiles]) -> None:
    stats = {name: read(files) for name, files in world.items()}
    slope = {n: b["slope"].mean() for n, (b, _) in stats.items()}
    share = {n: m.mean() for n, (_, m) in stats.items()}
    assert slope["jiuzhaigou"] > slope["iburi"] + 5 and slope["luding"] > slope["iburi"] + 5
    assert share["iburi"] > 2 * share["jiuzhaigou"]
    reds = [b["pre_red"].mean() for b, _ in stats.values()]
    assert len({round(float(r), 4) for r in reds}) == len(reds)


def test_same_seed_is_identical_and_another_differs(tmp_path: Path) -> None:
    cfg = OmegaConf.load(CONF / "palu.yaml")
    runs = {
        key: read(generate_domain(cfg, cfg.world, tmp_path / key, 96, seed))
        for key, seed in (("a", 5), ("b", 5), ("c", 6))
    }
    (bands_a, mask_a), (bands_b, mask_b), (bands_c, mask_c) = runs.values()
    for band in BANDS:
        assert bands_a[band].tobytes() == bands_b[band].tobytes()
    assert mask_a.tobytes() == mask_b.tobytes()
    # Every file, the GeoPackage inventory included (GDAL would stamp it with the time).
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
    assert bands_a["slope"].tobytes() != bands_c["slope"].tobytes()
    assert mask_a.tobytes() != mask_c.tobytes()


def test_domain_seed_is_stable_and_distinct() -> None:
    assert simulation_seed(0, "iburi") == 3920597764130046905  # same in every process
    seeds = {simulation_seed(s, n) for s in (0, 1) for n in NAMES}
    assert len(seeds) == 2 * len(NAMES)


def test_cache_reuses_and_regenerates_on_change(tmp_path: Path) -> None:
    domains = {n: OmegaConf.load(CONF / f"{n}.yaml") for n in ("iburi", "palu")}
    worlds = {n: d.world for n, d in domains.items()}
    files = ensure_world(tmp_path, domains, worlds, 64, seed=1)
    mtimes = {n: f.stack.stat().st_mtime_ns for n, f in files.items()}
    again = ensure_world(tmp_path, domains, worlds, 64, seed=1)
    assert {n: f.stack.stat().st_mtime_ns for n, f in again.items()} == mtimes

    changed = dict(worlds)
    changed["palu"] = OmegaConf.merge(worlds["palu"], {"landslides": {"share": 0.03}})
    ensure_world(tmp_path, domains, changed, 64, seed=1)
    record = json.loads((files["palu"].root / "world.json").read_text())
    assert record["world"]["landslides"]["share"] == 0.03
    assert files["palu"].stack.stat().st_mtime_ns != mtimes["palu"]
    assert files["iburi"].stack.stat().st_mtime_ns == mtimes["iburi"]

    ensure_world(tmp_path, domains, changed, 64, seed=2)  # a new seed regenerates all
    assert files["iburi"].stack.stat().st_mtime_ns != mtimes["iburi"]
    assert not list(tmp_path.glob(".*"))  # no temporary folders left


def test_interrupted_generation_leaves_the_old_domain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = OmegaConf.load(CONF / "iburi.yaml")
    files = generate_domain(cfg, cfg.world, tmp_path / "iburi", 64, seed=3)
    before = files.stack.read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(world_generator, "compute_band_stats", fail)
    with pytest.raises(KeyboardInterrupt):
        generate_domain(cfg, cfg.world, tmp_path / "iburi", 64, seed=4)
    assert files.stack.read_bytes() == before
    with pytest.raises(KeyboardInterrupt):
        generate_domain(cfg, cfg.world, tmp_path / "fresh", 64, seed=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iburi"]


def test_invalid_parameters_are_reported(tmp_path: Path) -> None:
    cfg = OmegaConf.load(CONF / "iburi.yaml")
    bad = OmegaConf.merge(cfg.world, {"land_cover": {"forest": 0.9}})
    with pytest.raises(ValueError, match="world.land_cover must be shares >= 0 that sum to 1"):
        generate_domain(cfg, bad, tmp_path / "x", 64, seed=0)
    cloud = OmegaConf.merge(cfg.world, {"pre": {"cloud": {"cover": 1.5}}})
    message = (
        r"^domain 'iburi': world.pre.cloud.cover must be in \[0, 1\), got 1.5; "
        r"fix conf/domain/iburi.yaml$"
    )
    with pytest.raises(ValueError, match=message):
        generate_domain(cfg, cloud, tmp_path / "x", 64, seed=0)
    missing = OmegaConf.masked_copy(cfg.world, ["terrain", "land_cover"])
    with pytest.raises(ValueError, match="world.area_km2 is missing"):
        generate_domain(cfg, missing, tmp_path / "y", 64, seed=0)
    assert not list(tmp_path.iterdir())
    # Unknown keys and wrong types, named by their full key, on one line.
    for change, problem in (
        ({"landslides": {"shares": 0.1}}, "world.landslides.shares is not a known key"),
        ({"confounders": {"roads": {"share": "most"}}}, "world.confounders.roads.share has"),
        ({"post": {"gain": [1.0, 1.0, 1.0]}}, "world.post.gain must be a list of 4 numbers"),
    ):
        with pytest.raises(ValueError, match=problem) as info:
            WorldParams.from_mapping(OmegaConf.merge(cfg.world, change), domain="iburi")
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_confounders_look_like_landslides_off_the_inventory(
    world: dict[str, DomainFiles], name: str
) -> None:
    bands, mask = read(world[name])
    off = mask == 0
    typical = np.median(bands["post_ndvi"][mask == 1])
    # Bare fields, river bars, rock, roads and sites: landslide-like NDVI off the inventory.
    assert (bands["post_ndvi"][off] <= typical).mean() > 0.01
    # Changes that are not landslides: harvests, scoured bars, new sites, browning, cloud.
    drop = bands["pre_ndvi"] - bands["post_ndvi"]
    assert (drop[off] > 0.2).mean() > 0.003


def test_clouds_only_where_configured(tmp_path: Path) -> None:
    cfg = OmegaConf.load(CONF / "iburi.yaml")  # two cloud-free images (Section II-A)
    cloudy = OmegaConf.merge(cfg.world, {"post": {"cloud": {"cover": 0.3, "opacity": 0.6}}})
    clear, clouded = (
        read(generate_domain(cfg, w, tmp_path / k, 128, seed=2))[0]
        for k, w in (("clear", cfg.world), ("cloudy", cloudy))
    )
    for band in ("slope", "pre_red", "pre_blue", "pre_ndvi"):
        assert clear[band].tobytes() == clouded[band].tobytes()
    brighter = clouded["post_blue"] - clear["post_blue"]
    assert 0.1 < (brighter > 0.05).mean() < 0.5  # thin cloud over about its cover
    assert (brighter < -0.005).mean() > 0.02  # and its shadow elsewhere


def test_old_scars_are_in_both_images_but_not_in_the_inventory(tmp_path: Path) -> None:
    cfg = OmegaConf.load(CONF / "jiuzhaigou.yaml")
    none = OmegaConf.merge(cfg.world, {"scars": {"share": 0.0}})
    (with_scars, mask_a), (without, mask_b) = (
        read(generate_domain(cfg, w, tmp_path / k, 128, seed=2))
        for k, w in (("a", cfg.world), ("b", none))
    )
    assert mask_a.tobytes() == mask_b.tobytes()
    for date in ("pre", "post"):
        lower = with_scars[f"{date}_ndvi"] < without[f"{date}_ndvi"] - 0.1
        assert lower.mean() > 0.005 and not (lower & (mask_a == 1)).all()


def test_tiles_join_without_seams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = OmegaConf.load(CONF / "iburi.yaml")
    whole = generate_domain(cfg, cfg.world, tmp_path / "whole", 160, seed=1)
    monkeypatch.setattr(world_scene, "TILE_PX", 64)
    tiled = generate_domain(cfg, cfg.world, tmp_path / "tiled", 160, seed=1)
    (bands_a, mask_a), (bands_b, mask_b) = read(whole), read(tiled)
    assert mask_a.tobytes() == mask_b.tobytes()
    for band in BANDS:
        np.testing.assert_allclose(bands_a[band], bands_b[band], rtol=1e-4, atol=1e-4)
    inventory = gpd.read_file(tiled.inventory)
    assert inventory.union_all().area == pytest.approx(mask_b.sum() * 100.0, rel=1e-6)
    assert len(inventory) == len(gpd.read_file(whole.inventory))


def test_clearings_are_new_gentle_forest_cuts_outside_the_inventory(tmp_path: Path) -> None:
    cfg = OmegaConf.load(CONF / "iburi.yaml")
    share, max_slope = 0.05, 12.0  # a low slope limit, so that it shows in gentle Iburi
    worlds = {
        key: OmegaConf.merge(
            cfg.world, {"confounders": {"clearings": {"share": s, "max_slope_deg": max_slope}}}
        )
        for key, s in (("none", 0.0), ("cut", share))
    }
    (without, mask_a), (cut, mask_b) = (
        read(generate_domain(cfg, w, tmp_path / k, SIZE, seed=2)) for k, w in worlds.items()
    )
    assert mask_a.tobytes() == mask_b.tobytes()  # not landslides: not in the inventory
    for band in BANDS:
        if not band.startswith("post"):  # cut between the images
            assert without[band].tobytes() == cut[band].tobytes(), band
    cleared = cut["post_ndvi"] < without["post_ndvi"] - 0.1
    assert 0.6 * share < cleared.mean() < 1.4 * share
    # On workable slopes (placed by 40 m cells, so a rectangle may reach steeper ground) ...
    steep = cut["slope"] >= max_slope
    assert steep[cleared].mean() < 0.5 * steep.mean()
    # ... and in forest, greener than the scene before the cut.
    assert without["pre_ndvi"][cleared].mean() > without["pre_ndvi"].mean() + 0.05
