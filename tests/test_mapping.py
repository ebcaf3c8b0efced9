"""Scene-scale mapping: grid, seams, nodata, polygons, metrics, refusals and atomic output."""

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
import torch
from conftest import CRS, write_rasters
from rasterio.transform import from_origin
from scipy import ndimage

from landslide.bands import BANDS
from landslide.layout import IGNORED, DomainFiles
from landslide.mapping.errors import MappingError
from landslide.mapping.evaluate import MatchRule, object_metrics
from landslide.mapping.model import TrainedModel, load_model
from landslide.mapping.pipeline import MapSettings, _to_cog, map_scene
from landslide.mapping.predict import DIHEDRAL, predict_batch, probability_strips
from landslide.mapping.scene import open_scene
from landslide.mapping.vectorize import StreamingVectorizer
from landslide.mapping.windows import WindowGrid, taper, window_starts
from landslide.metrics import landslide_metrics
from landslide.task import SegmentationTask

TINY_NET = {
    "_target_": "landslide.models.ResUSENet",
    "in_channels": len(BANDS),
    "num_classes": 1,
    "widths": [8, 16, 32, 64],
}
SETTINGS = dict(window=64, overlap=16, batch_size=4, device="cpu", progress=False)


def write_scene(
    root: Path, height: int = 150, width: int = 211, seed: int = 0, nodata_corner: int = 0
) -> DomainFiles:
    """A labelled scene whose landslides raise band 0 and lower band 9, optionally with a
    NaN corner of ``nodata_corner`` px (ignored in its mask)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(height * width // 900):
        r, c = rng.integers(0, height - 14), rng.integers(0, width - 14)
        mask[r : r + rng.integers(3, 14), c : c + rng.integers(3, 14)] = 1
    stack = rng.normal(0.0, 0.1, (len(BANDS), height, width)).astype(np.float32)
    stack[0] += 2.0 * mask
    stack[9] -= 2.0 * mask
    if nodata_corner:
        stack[:, :nodata_corner, :nodata_corner] = np.nan
        mask[:nodata_corner, :nodata_corner] = IGNORED
    return write_rasters(root, stack, mask, nodata=IGNORED)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A tiny network trained for a few seconds on a toy scene: sharp, spatially varied
    predictions, so seams and metrics are tested on a model that has learnt something."""
    files = write_scene(tmp_path_factory.mktemp("train") / "scene", 160, 160, seed=7)
    scene = open_scene(files.root)
    stats = scene.stats
    with rasterio.open(files.stack) as src:
        image = src.read()
    with rasterio.open(files.mask) as src:
        target = src.read(1).astype(np.float32)
    lo = np.asarray(stats.minimum, np.float32)[:, None, None]
    span = np.asarray(stats.maximum, np.float32)[:, None, None] - lo
    image = torch.from_numpy((image - lo) / span)
    torch.manual_seed(0)
    task = SegmentationTask(TINY_NET, lr=1e-2, bands=list(BANDS))
    optimiser = task.configure_optimizers()
    rng = np.random.default_rng(0)
    task.train()
    for _ in range(60):
        rows, cols = rng.integers(0, 160 - 48, 8), rng.integers(0, 160 - 48, 8)
        x = torch.stack([image[:, r : r + 48, c : c + 48] for r, c in zip(rows, cols, strict=True)])
        y = torch.stack(
            [
                torch.from_numpy(target[r : r + 48, c : c + 48])
                for r, c in zip(rows, cols, strict=True)
            ]
        )
        loss = task.loss(task(x).unsqueeze(1), y.unsqueeze(1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    task.eval()
    return TrainedModel(task, BANDS, "minmax", 0.5, "toy", Path("toy.ckpt"))


def read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), src.profile


def test_windows_cover_the_scene_and_blend_to_one() -> None:
    assert window_starts(211, 64, 16) == [0, 48, 96, 144, 147]
    assert window_starts(50, 64, 16) == [0]
    ramp = taper(64, 16)
    # Where two windows overlap by exactly the ramp, the weights add up to one.
    assert ramp[48:] + ramp[:16] == pytest.approx(np.ones(16))
    assert ramp[16:48] == pytest.approx(np.ones(32)) and ramp.min() > 0
    grid = WindowGrid(150, 211, 64, 16)
    assert grid.rows == [0, 48, 86] and len(grid) == 3 * 5 and grid.weights().shape == (64, 64)
    with pytest.raises(ValueError, match="need 0 <= overlap < window"):
        window_starts(100, 64, 64)


def test_map_is_on_the_scene_grid_and_scores_like_torchmetrics(
    tmp_path: Path, trained: TrainedModel
) -> None:
    files = write_scene(tmp_path / "scene", 150, 211, seed=1, nodata_corner=40)
    scene = open_scene(files.root)
    result = map_scene(trained, scene, tmp_path / "map", MapSettings(**SETTINGS, min_area=300))

    probability, profile = read(result.path("probability.tif"))
    binary, binary_profile = read(result.path("landslides.tif"))
    with rasterio.open(files.stack) as src:
        grid = (src.crs, src.transform, src.shape)
    for p in (profile, binary_profile):
        assert (p["crs"], p["transform"], (p["height"], p["width"])) == grid
    with rasterio.open(result.path("probability.tif")) as src:
        assert src.block_shapes == [(256, 256)] and src.compression.name == "deflate"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    # Nodata stays nodata.
    assert np.isnan(probability[:40, :40]).all() and (binary[:40, :40] == IGNORED).all()
    assert np.isfinite(probability[40:, :]).all() and (binary[40:, :] != IGNORED).all()
    assert binary_profile["nodata"] == IGNORED

    # The binary map is the thresholded probability without specks under 3 px (300 m²).
    expected = np.nan_to_num(probability) > 0.5
    labels, count = ndimage.label(expected, ndimage.generate_binary_structure(2, 1))
    sizes = np.bincount(labels.ravel())
    expected &= sizes[labels] >= 3
    assert ((binary == 1) == expected).all()
    assert expected.sum() > 100  # the model has learnt to map landslides

    # Polygons rasterise back to the binary map; their areas are their pixel counts.
    polygons = gpd.read_file(result.path("landslides.gpkg"))
    assert len(polygons) == len(np.unique(labels[expected]))
    burnt = rasterio.features.rasterize(
        polygons.geometry, out_shape=binary.shape, transform=profile["transform"]
    )
    assert (burnt == (binary == 1)).all()
    assert polygons["area_m2"].to_numpy() == pytest.approx(polygons.geometry.area.to_numpy())
    first = polygons.iloc[0]
    inside = rasterio.features.geometry_mask(
        [first.geometry], binary.shape, profile["transform"], invert=True
    )
    assert first["mean_prob"] == pytest.approx(probability[inside].mean(), rel=1e-5)
    assert first["max_prob"] == pytest.approx(probability[inside].max())
    assert {"mean_slope", "ignored_share", "lon", "lat"} <= set(polygons.columns)

    # Pixel metrics over the whole scene are torchmetrics' on the same arrays.
    reference, _ = read(files.mask)
    scored = reference != IGNORED
    direct = landslide_metrics(0.5)
    direct.update(
        torch.from_numpy(binary[scored].astype(np.float32)),
        torch.from_numpy(reference[scored].astype(np.int64)),
    )
    for name, value in direct.compute().items():
        assert result.metrics[name] == pytest.approx(float(value), abs=1e-6), name
    assert result.metrics["f1"] > 0.5
    assert 0 < result.metrics["object_recall"] <= 1
    summary = result.summary
    assert summary["landslides"]["count"] == len(polygons)
    assert summary["scene"]["width"] == 211 and summary["settings"]["threshold"] == 0.5
    for name in ("overview.png", "overview.html", "summary.json"):
        assert result.path(name).stat().st_size > 0


def test_no_seams_where_windows_meet(tmp_path: Path, trained: TrainedModel) -> None:
    """Near the seam between two windows, the blended map agrees with a forward pass of a
    window centred on the seam; without overlap it does not agree as well."""
    files = write_scene(tmp_path / "scene", 64, 176, seed=2)
    scene = open_scene(files.root)

    def blended(overlap: int) -> np.ndarray:
        return np.concatenate(
            [
                s
                for _, s in probability_strips(
                    trained, scene, 96, overlap, device="cpu", progress=False
                )
            ]
        )

    with rasterio.open(files.stack) as src:
        image = src.read()
    lo = np.asarray(scene.stats.minimum, np.float32)[:, None, None]
    span = np.asarray(scene.stats.maximum, np.float32)[:, None, None] - lo
    # Windows of 96 px with 16 px overlap start at 0 and 80: the seam is at column 88.
    centred = torch.from_numpy((image[:, :, 40:136] - lo) / span)[None]
    reference = predict_batch(trained, centred)[0].numpy()[:, 40:56]  # columns 80-96
    smooth = np.abs(blended(16)[:, 80:96] - reference)
    hard = np.abs(blended(0)[:, 80:96] - reference)
    assert smooth.mean() < 0.02, smooth.mean()
    assert smooth.mean() < hard.mean()


def test_batches_running_across_rows_of_windows_change_nothing(
    tmp_path: Path, trained: TrainedModel
) -> None:
    files = write_scene(tmp_path / "scene", 150, 211, seed=4, nodata_corner=70)
    scene = open_scene(files.root)
    maps = {}
    for batch_size in (1, 3, 7, 40):
        strips = list(probability_strips(trained, scene, 64, 16, batch_size, "cpu", progress=False))
        rows = [row for row, _ in strips]
        heights = [strip.shape[0] for _, strip in strips]
        assert rows == list(np.cumsum([0, *heights[:-1]])) and sum(heights) == 150
        maps[batch_size] = np.concatenate([strip for _, strip in strips])
    for batch_size in (3, 7, 40):
        np.testing.assert_allclose(maps[batch_size], maps[1], atol=1e-5)
    assert np.isnan(maps[1][:70, :70]).all() and np.isfinite(maps[1][70:]).all()


def test_test_time_augmentation_averages_the_dihedral_flips(trained: TrainedModel) -> None:
    torch.manual_seed(3)
    images = torch.rand(2, len(BANDS), 32, 32)
    views = [inverse(predict_batch(trained, forward(images))) for forward, inverse in DIHEDRAL]
    square = torch.arange(9).view(3, 3)
    # Eight different views, each undone by its inverse.
    assert len({tuple(f(square).flatten().tolist()) for f, _ in DIHEDRAL}) == 8
    assert all(torch.equal(inverse(forward(square)), square) for forward, inverse in DIHEDRAL)
    expected = torch.stack(views).mean(0)
    assert torch.allclose(predict_batch(trained, images, tta=True), expected, atol=1e-6)


def test_streamed_polygons_equal_whole_array_tracing() -> None:
    rng = np.random.default_rng(5)
    landslide = ndimage.binary_opening(rng.random((120, 90)) < 0.45)
    probability = rng.random((120, 90)).astype(np.float32)
    transform = from_origin(0, 1200, 10, 10)
    vectorizer = StreamingVectorizer(transform, rasterio.crs.CRS.from_string(CRS), 0)
    row = 0
    for height in (7, 1, 30, 13, 69):  # uneven strips, one of a single row
        vectorizer.add(row, landslide[row : row + height], probability[row : row + height])
        row += height
    polygons = vectorizer.finish()
    labels, count = ndimage.label(landslide, ndimage.generate_binary_structure(2, 1))
    assert len(polygons) == count
    assert polygons.geometry.is_valid.all()
    assert all(g.geom_type == "Polygon" for g in polygons.geometry)
    sizes = np.sort(np.bincount(labels.ravel())[1:] * 100.0)
    assert np.sort(polygons["area_m2"].to_numpy()) == pytest.approx(sizes)
    burnt = rasterio.features.rasterize(
        polygons.geometry, out_shape=landslide.shape, transform=transform
    )
    assert (burnt.astype(bool) == landslide).all()
    maxima = ndimage.maximum(probability, labels, np.arange(1, count + 1))
    assert np.sort(polygons["max_prob"].to_numpy()) == pytest.approx(np.sort(maxima))


def test_object_metrics_count_landslides_by_size() -> None:
    def frame(geometries: list) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(geometry=geometries, crs=CRS)

    reference = frame(
        [shapely.box(0, 0, 20, 20), shapely.box(100, 0, 150, 50), shapely.box(300, 0, 400, 100)]
    )
    predicted = frame(
        [shapely.box(10, 10, 30, 30), shapely.box(100, 0, 150, 20), shapely.box(500, 0, 510, 10)]
    )
    metrics = object_metrics(predicted, reference, MatchRule("any"), size_classes=(1000, 5000))
    assert metrics["object_recall"] == pytest.approx(2 / 3)
    assert metrics["object_precision"] == pytest.approx(2 / 3)
    assert metrics["object_recall/area_0_1000"] == 1.0  # the 400 m² one, touched
    assert metrics["object_recall/area_1000_5000"] == 1.0
    assert metrics["object_recall/area_ge_5000"] == 0.0
    assert metrics["mapped_area_km2"] == pytest.approx((400 + 1000 + 100) / 1e6)
    # Under a 50 % cover rule, the first reference (a quarter covered) is missed.
    strict = object_metrics(predicted, reference, MatchRule("share", 0.5), size_classes=(1000,))
    assert strict["object_recall"] == pytest.approx(0.0)
    assert strict["object_precision"] == pytest.approx(1 / 3)  # the half-box is all real


def test_mismatched_bands_are_refused_naming_both(tmp_path: Path, trained: TrainedModel) -> None:
    files = write_scene(tmp_path / "scene", 80, 80)
    rgb = tmp_path / "rgb.tif"
    with rasterio.open(files.stack) as src:
        profile = src.profile | {"count": 3}
        data = src.read([6, 7, 8])
    with rasterio.open(rgb, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("post_red", "post_green", "post_blue")
    scene = open_scene(rgb)
    assert scene.bands == ("post_red", "post_green", "post_blue") and scene.name == "rgb"
    with pytest.raises(MappingError, match=r"model toy reads bands \[slope, .*holds \[post_red"):
        map_scene(trained, scene, tmp_path / "map", MapSettings(**SETTINGS))
    assert not (tmp_path / "map").exists()


def test_interrupted_run_leaves_no_partial_output(
    tmp_path: Path, trained: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_scene(tmp_path / "scene", 150, 150)
    scene = open_scene(files.root)
    out = tmp_path / "maps" / "scene" / "toy"
    first = map_scene(trained, scene, out, MapSettings(**SETTINGS))
    before = {p.name: p.read_bytes() for p in first.folder.iterdir()}
    calls = []

    def interrupt(self, *args, **kwargs) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(StreamingVectorizer, "add", interrupt)
    with pytest.raises(KeyboardInterrupt):
        map_scene(trained, scene, out, MapSettings(**SETTINGS))
    # The earlier map is untouched and no temporary folder is left behind.
    assert sorted(p.name for p in out.parent.iterdir()) == ["toy"]
    assert {p.name: p.read_bytes() for p in out.iterdir()}.keys() == before.keys()
    assert (out / "summary.json").read_bytes() == before["summary.json"]


def test_scene_and_checkpoint_errors_are_one_line(tmp_path: Path) -> None:
    files = write_scene(tmp_path / "scene", 60, 60)
    with pytest.raises(MappingError, match="no such file or folder"):
        open_scene(tmp_path / "nope")
    with pytest.raises(MappingError, match="no stack.tif in this folder"):
        open_scene(tmp_path)
    geographic = tmp_path / "lonlat.tif"
    unnamed = tmp_path / "unnamed.tif"
    with rasterio.open(files.stack) as src:
        data, profile = src.read([1, 2]), src.profile | {"count": 2}
    with rasterio.open(geographic, "w", **profile | {"crs": "EPSG:4326"}) as dst:
        dst.write(data)
    with rasterio.open(unnamed, "w", **profile) as dst:
        dst.write(data)
    with pytest.raises(MappingError, match="not projected in metres"):
        open_scene(geographic)
    with pytest.raises(MappingError, match="bands are not named .*scene_bands="):
        open_scene(unnamed)
    scene = open_scene(unnamed, bands=["slope", "hillshade"])
    assert scene.stats.bands == ("slope", "hillshade") and scene.reference_mask is None
    with pytest.raises(MappingError, match="has 2 bands but its scene_bands names 1"):
        open_scene(unnamed, bands=["slope"])

    corrupt = tmp_path / "best.ckpt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(MappingError, match="not a readable landslide checkpoint") as err:
        load_model(corrupt)
    assert "\n" not in str(err.value)
    with pytest.raises(MappingError, match="no such checkpoint file"):
        load_model(tmp_path / "missing.ckpt")


def test_checkpoint_records_bands_and_loads_for_mapping(tmp_path: Path) -> None:
    import lightning as L

    task = SegmentationTask(
        {**TINY_NET, "in_channels": 3}, bands=["post_red", "post_green", "post_blue"]
    )
    trainer = L.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(task)
    path = tmp_path / "rgb.ckpt"
    trainer.save_checkpoint(path)
    model = load_model(path)
    assert model.bands == ("post_red", "post_green", "post_blue")
    assert model.threshold == 0.5 and model.total_stride == 8 and not model.task.training
    for a, b in zip(model.task.state_dict().values(), task.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_uint8_probability_is_percent_with_nodata(tmp_path: Path, trained: TrainedModel) -> None:
    files = write_scene(tmp_path / "scene", 100, 100, nodata_corner=20)
    scene = open_scene(files.root)
    as_float = map_scene(trained, scene, tmp_path / "f", MapSettings(**SETTINGS))
    as_uint8 = map_scene(
        trained, scene, tmp_path / "u", MapSettings(**SETTINGS, probability_dtype="uint8")
    )
    probability, _ = read(as_float.path("probability.tif"))
    percent, profile = read(as_uint8.path("probability.tif"))
    assert profile["dtype"] == "uint8" and profile["nodata"] == IGNORED
    assert (percent[:20, :20] == IGNORED).all()
    valid = np.isfinite(probability)
    assert np.abs(percent[valid] - probability[valid] * 100).max() <= 0.5 + 1e-4
    with rasterio.open(as_uint8.path("probability.tif")) as src:
        assert src.scales == (0.01,)
    shutil.rmtree(tmp_path / "f")


def test_cog_overviews_keep_classes_and_probabilities(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    binary = (rng.random((600, 600)) < 0.3).astype(np.uint8)
    binary[:100] = IGNORED
    probability = rng.random((600, 600)).astype(np.float32)
    profile = dict(
        driver="GTiff",
        width=600,
        height=600,
        count=1,
        crs=CRS,
        tiled=True,
        transform=from_origin(0, 6000, 10, 10),
        blockxsize=256,
        blockysize=256,
    )
    outputs = {}
    for name, data, nodata, resampling in (
        ("binary", binary, IGNORED, "mode"),
        ("probability", probability, np.nan, "average"),
    ):
        raw = tmp_path / f"{name}.raw.tif"
        with rasterio.open(raw, "w", dtype=data.dtype, nodata=nodata, **profile) as dst:
            dst.write(data, 1)
        outputs[name] = tmp_path / f"{name}.tif"
        _to_cog(raw, outputs[name], str(data.dtype), name, resampling)
    with rasterio.open(outputs["binary"]) as src:
        assert src.overviews(1) == [2, 4]
        assert src.tags(ns="IMAGE_STRUCTURE")["OVERVIEW_RESAMPLING"] == "MODE"
        assert set(np.unique(src.read(1, out_shape=(300, 300)))) == {0, 1, IGNORED}
        assert (src.read(1) == binary).all()
    with rasterio.open(outputs["probability"]) as src:
        overview = src.read(1, out_shape=(300, 300))
        assert 0 <= overview.min() and overview.max() <= 1
        assert overview[0, 0] == pytest.approx(probability[:2, :2].mean(), abs=1e-6)
