"""Benchmark patch folders as domains: a Bijie-like PNG folder and a Landslide4Sense-like
HDF5 folder each train in a mix with the default world, are tested on and feed the MMD; bad
``patches:`` blocks and unmapped mask values are refused in one line."""

import re
from pathlib import Path

import h5py
import mlflow
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from landslide.config import compose_config
from landslide.data.patch_source import PatchConfigError, PatchSource
from landslide.data.patches import FilePatch, PatchDomain
from landslide.data.sampling import PoolSpec
from landslide.errors import ConfigError, DataError
from landslide.layout import IGNORED, LANDSLIDE, STABLE
from landslide.schema import validate_train_config
from landslide.shift import mix_to_domain_mmd, training_images
from landslide.training import train

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("precision", "recall", "f1", "mcc", "iou")
WORLD = ("iburi", "jiuzhaigou", "palu", "luding")

#: A tiny run: 20-sample pools, 32 px patches, a small network, two training batches.
TINY = [
    "trainer=quick",
    "data.world.size=512",
    "data.patch_size=32",
    "data.pool_size=20",
    "data.unknown_pool_size=10",
    "model.net.widths=[8,16,32,64]",
]


def write_bijie(root: Path, count: int = 10, seed: int = 0) -> Path:
    """Bijie's layout: ``landslide/{image,mask}/*.png`` (masks 0/255) and
    ``non-landslide/image/*.png`` without masks; RGB patches of 100-140 px, landslides a
    brighter brown block."""
    rng = np.random.default_rng(seed)
    for kind in ("landslide", "non-landslide"):
        for i in range(count):
            height, width = (int(v) for v in rng.integers(100, 141, 2))
            image = rng.normal([60, 110, 50], 12, (height, width, 3))
            name = f"{kind[:2]}{i:03d}.png"
            if kind == "landslide":
                mask = np.zeros((height, width), np.uint8)
                r, c = rng.integers(5, height - 35), rng.integers(5, width - 30)
                mask[r : r + 30, c : c + 25] = 255
                image[mask == 255] = [170, 140, 110]
                (root / kind / "mask").mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(root / kind / "mask" / name)
            (root / kind / "image").mkdir(parents=True, exist_ok=True)
            pixels = np.clip(image, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / kind / "image" / name)
    return root


def write_l4s(root: Path, count: int = 16, seed: int = 0) -> Path:
    """Landslide4Sense's layout: ``img/image_<i>.h5`` (dataset ``img``, 128 x 128 x 14
    float32, values near 1 as the release's mean-divided bands) and ``mask/mask_<i>.h5``
    (dataset ``mask``, 0/1); odd files hold a landslide that doubles band 4 (red)."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True)
    (root / "mask").mkdir(parents=True)
    y, x = np.mgrid[0:128, 0:128]
    for i in range(1, count + 1):
        image = rng.normal(1.0, 0.05, (128, 128, 14)).astype(np.float32)
        image[..., 13] = 1.0 + 0.002 * x + 0.001 * y  # a tilted plane of elevation
        mask = np.zeros((128, 128), np.uint8)
        if i % 2:
            r, c = rng.integers(0, 100, 2)
            mask[r : r + 20, c : c + 20] = 1
            image[mask == 1, 3] *= 2.0
        with h5py.File(root / "img" / f"image_{i}.h5", "w") as f:
            f["img"] = image
        with h5py.File(root / "mask" / f"mask_{i}.h5", "w") as f:
            f["mask"] = mask
    return root


def bijie_block(folder: Path, **changes: object) -> dict:
    """conf/domain/bijie.yaml's block pointed at ``folder``."""
    block = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/domain/bijie.yaml").patches)
    block["images"]["folder"] = block["masks"]["folder"] = str(folder)
    return {**block, **changes}


def compose(tmp_path: Path, world: Path, overrides: list[str]) -> DictConfig:
    return compose_config(
        [*TINY, f"paths.data_dir={world}", *overrides],
        root_dir=tmp_path,
        output_dir=tmp_path / "output",
    )


def bijie_overrides(folder: Path) -> list[str]:
    return [
        "bands=post_rgb",
        "+domain@data.domains.bijie=bijie",
        f"data.domains.bijie.patches.images.folder={folder}",
        f"data.domains.bijie.patches.masks.folder={folder}",
        "domain_mix.counts.iburi=10",
        "domain_mix.counts.jiuzhaigou=0",
        "+domain_mix.counts.bijie=10",
    ]


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def check_run(uri: str, domains: tuple[str, ...], mix: str) -> None:
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("landslide").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"resu_senet-{mix}-seed42"
    for key in [f"test/{d}/{m}" for d in domains for m in METRICS]:
        assert key in run.data.metrics, key
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == {f"figures/test_{d}.png" for d in domains}


def test_bijie_png_folder_trains_in_a_mix_and_is_tested(
    tmp_path: Path, small_world: Path, tracking: str
) -> None:
    folder = write_bijie(tmp_path / "bijie")
    cfg = compose(tmp_path, small_world, bijie_overrides(folder))
    metrics = train(cfg)

    for domain in (*WORLD, "bijie"):
        assert 0.0 <= metrics[f"test/{domain}/f1"] <= 1.0
    check_run(tracking, (*WORLD, "bijie"), "ib10bj10")

    datamodule = instantiate(cfg.data)
    datamodule.setup()
    pool = datamodule.pools["bijie"]
    # 20 files, half positive; 0.3 of each kind (3 + 3) tested, the rest (7 + 7) trainable.
    assert (len(pool.train), len(pool.test)) == (14, 6)
    assert [p.positive for p in pool.train[:4]] == [True, False, True, False]
    assert len({p.file for p in pool.train + pool.test}) == 20  # each file in one part
    assert (len(datamodule.train_patches["bijie"]), len(datamodule.val_patches["bijie"])) == (9, 1)
    test_sets = dict(zip(datamodule.test_domains, datamodule.test_dataloader(), strict=True))
    batch = next(iter(test_sets["bijie"]))
    assert batch["image"].shape[1:] == (3, 32, 32)
    assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
    assert len(test_sets["bijie"].dataset) == 6
    # The MMD's training images come through the DataModule: 10 iburi + 10 bijie samples.
    images = training_images(datamodule, max_patches=300)
    assert images.shape == (20, 3, 32, 32)
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    # Bijie as the MMD's target: its test files stand for the scene.
    distances = mix_to_domain_mmd(datamodule, "bijie", pixels=500)
    assert set(distances) == {"post_red", "post_green", "post_blue"}
    assert all(value >= 0.0 for value in distances.values())


def test_l4s_hdf5_folder_trains_with_terrain_and_ndvi(
    tmp_path: Path, small_world: Path, tracking: str
) -> None:
    folder = write_l4s(tmp_path / "l4s")
    cfg = compose(
        tmp_path,
        small_world,
        [
            "bands=post",
            "+domain@data.domains.landslide4sense=landslide4sense",
            f"data.domains.landslide4sense.patches.images.folder={folder / 'img'}",
            f"data.domains.landslide4sense.patches.masks.folder={folder / 'mask'}",
            "data.pool_size=16",
            "domain_mix.counts.iburi=0",
            "domain_mix.counts.jiuzhaigou=10",
            "+domain_mix.counts.landslide4sense=10",
        ],
    )
    train(cfg)
    check_run(tracking, (*WORLD, "landslide4sense"), "j10l4s10")

    datamodule = instantiate(cfg.data)
    datamodule.setup()
    domain = datamodule.patch_domains["landslide4sense"]
    assert domain.source.provided == (
        "slope",
        "hillshade",
        "post_red",
        "post_green",
        "post_blue",
        "post_ndvi",
    )
    stats = domain.index().stats
    # Band 13 times the release's mean gives degrees; the hillshade of a plane is constant
    # (but for the edge pixels, whose gradient sees a replicated border).
    assert 18.0 < stats.mean[0] < 22.5
    assert stats.std[1] < 0.02 * stats.mean[1]
    # NDVI of the scaled bands: (1941 - 445) / (1941 + 445) on stable ground, which is
    # almost all of it.
    assert stats.mean[5] == pytest.approx((1941.32 - 445.17) / (1941.32 + 445.17), abs=0.01)
    pool = datamodule.pools["landslide4sense"]
    assert (len(pool.train), len(pool.test)) == (12, 4)
    assert training_images(datamodule, max_patches=300).shape == (20, 6, 32, 32)


def test_patch_files_are_cropped_around_landslides_and_padded(tmp_path: Path) -> None:
    folder = write_bijie(tmp_path / "bijie", count=6)
    source = PatchSource.from_config("bijie", bijie_block(folder))
    domain = PatchDomain(source, tmp_path / "cache")
    index = domain.index()
    assert len(index.files) == 12 and sum(f.landslide > 0 for f in index.files) == 6
    assert all(f.landslide == 30 * 25 for f in index.files if f.landslide)
    spec = PoolSpec(patch_size=32, pool_size=12, test_fraction=0.5, seed=3)
    pool = domain.pool(spec)
    assert pool == domain.pool(spec)  # seeded
    crops = domain.dataset(pool.train + pool.test, 32, bands=source.provided)
    for i, patch in enumerate(pool.train + pool.test):
        assert isinstance(patch, FilePatch)
        assert bool((crops[i]["mask"] == LANDSLIDE).any()) == patch.positive
    # Larger than every file (140 px at most): padded with ignored pixels and zeros.
    large = domain.pool(PoolSpec(patch_size=160, pool_size=12, test_fraction=0.5, seed=3))
    assert {(p.row, p.col) for p in large.test} == {(0, 0)}
    padded = domain.dataset(large.test, 160, bands=source.provided)[0]
    f = index.files[large.test[0].file]
    assert padded["mask"].shape == (160, 160)
    assert torch.all(padded["mask"][f.height :, :] == IGNORED)
    assert torch.all(padded["mask"][:, f.width :] == IGNORED)
    assert torch.all(padded["image"][:, f.height :, :] == 0.0)
    assert set(padded["mask"][: f.height, : f.width].unique().tolist()) <= {STABLE, LANDSLIDE}
    # The index is cached and reused; a changed file recomputes it.
    cached = domain.cache.read_text()
    assert PatchDomain(source, tmp_path / "cache").index() == index
    image = Image.open(index.files[0].image)
    image.point(lambda v: 255 - v).save(index.files[0].image)
    assert PatchDomain(source, tmp_path / "cache").index().stats != index.stats
    assert domain.cache.read_text() != cached


def test_a_split_list_holds_the_test_part(tmp_path: Path) -> None:
    folder = write_bijie(tmp_path / "bijie", count=6)
    names = sorted(p.relative_to(folder).as_posix() for p in folder.glob("*/image/*.png"))
    test = [n for n in names if n.endswith(("000.png", "001.png"))]
    block = bijie_block(folder, split={"train": [n for n in names if n not in test], "test": test})
    domain = PatchDomain(PatchSource.from_config("bijie", block), tmp_path / "cache")
    pool = domain.pool(PoolSpec(patch_size=32, pool_size=12, test_fraction=0.34, seed=0))
    tested = {domain.index().files[p.file].image.relative_to(folder).as_posix() for p in pool.test}
    assert tested == set(test)
    assert len(pool.train) == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"bands": {"post_red": 1, "infrared": 4}},
            r"data\.domains\.bijie\.patches\.bands\.infrared: 'infrared' is not a band .*",
        ),
        (
            {"bands": {"post_red": 0}},
            r"data\.domains\.bijie\.patches\.bands\.post_red: must be a 1-based file band .*",
        ),
        (
            {"labels": {0: "stable", 255: "rockfall"}},
            r"data\.domains\.bijie\.patches\.labels\.255: must be one of stable, landslide, .*",
        ),
        ({"split": "blocked"}, r"data\.domains\.bijie\.patches\.split: must be random or .*"),
        ({"bands": {"dem": 4}}, r".*pixel_size_m: is needed to derive slope and hillshade.*"),
    ],
)
def test_a_bad_patches_block_is_one_line(tmp_path: Path, changes: dict, message: str) -> None:
    block = bijie_block(tmp_path, **changes)
    if "dem" in block["bands"]:
        del block["pixel_size_m"]
    with pytest.raises(PatchConfigError) as err:
        PatchSource.from_config("bijie", block)
    assert "\n" not in str(err.value)
    assert re.fullmatch(message, str(err.value)), str(err.value)


def test_a_band_the_domain_cannot_give_is_refused_in_one_line(
    tmp_path: Path, small_world: Path
) -> None:
    """The paper's ten bands from an RGB benchmark: refused before any data is read."""
    overrides = [o for o in bijie_overrides(tmp_path) if o != "bands=post_rgb"]
    cfg = compose(tmp_path, small_world, overrides)
    with pytest.raises(ConfigError) as err:
        validate_train_config(cfg)
    assert str(err.value) == (
        "domain 'bijie': cannot give band slope (its patches give post_red, post_green, "
        "post_blue; patches.bands maps the file bands); use bands=post_rgb or "
        "data.bands=[post_red,post_green,post_blue]"
    )
    infrared = "+data.domains.bijie.patches.bands.infrared=4"
    bad = compose(tmp_path, small_world, [*bijie_overrides(tmp_path), infrared])
    with pytest.raises(ConfigError, match=r"patches\.bands\.infrared: 'infrared' is not a band"):
        validate_train_config(bad)


def test_an_unmapped_mask_value_is_refused_in_one_line(
    tmp_path: Path, small_world: Path, tracking: str
) -> None:
    folder = write_bijie(tmp_path / "bijie", count=4)
    mask_path = next((folder / "landslide" / "mask").glob("*.png"))
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[0, 0] = 128  # an anti-aliased edge, say
    Image.fromarray(mask).save(mask_path)
    cfg = compose(tmp_path, small_world, bijie_overrides(folder))
    with pytest.raises(DataError) as err:
        train(cfg)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"domain 'bijie': mask {mask_path} holds value(s) 128 that ")
    assert message.endswith("e.g. labels: {0: stable, 255: landslide, 128: ignored}")
    client = mlflow.MlflowClient(tracking)
    experiment = client.get_experiment_by_name("landslide")
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []
