"""Shared fixtures: tiny prepared domains written as real GeoTIFFs with a real CRS."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from landslide.band_stats import compute_band_stats
from landslide.bands import BANDS
from landslide.layout import DomainFiles

CRS = "EPSG:32654"


def write_domain(root: Path, name: str, size: int = 160, seed: int = 0) -> DomainFiles:
    """A toy domain: random bands, square 'landslides' that raise band 0 and lower band 9."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(size // 12):
        r, c = rng.integers(0, size - 12, 2)
        mask[r : r + rng.integers(4, 12), c : c + rng.integers(4, 12)] = 1
    stack = rng.normal(0.0, 0.1, (len(BANDS), size, size)).astype(np.float32)
    stack[0] += 2.0 * mask
    stack[9] -= 2.0 * mask
    return write_rasters(root / name, stack, mask)


def write_rasters(
    root: Path, stack: np.ndarray, mask: np.ndarray, nodata: int | None = None
) -> DomainFiles:
    """A domain folder holding ``stack`` (all of :data:`BANDS`, named) and ``mask`` as
    GeoTIFFs on a 10 m UTM grid, and the stack's statistics."""
    files = DomainFiles(root)
    files.root.mkdir(parents=True)
    height, width = mask.shape
    profile = dict(
        driver="GTiff",
        width=width,
        height=height,
        crs=CRS,
        transform=from_origin(500_000.0, 4_700_000.0, 10.0, 10.0),
    )
    with rasterio.open(files.stack, "w", count=len(BANDS), dtype="float32", **profile) as dst:
        dst.write(stack)
        dst.descriptions = BANDS
    with rasterio.open(files.mask, "w", count=1, dtype="uint8", nodata=nodata, **profile) as dst:
        dst.write(mask, 1)
    compute_band_stats(files.stack, BANDS).save(files.stats)
    return files


@pytest.fixture
def toy_domains(tmp_path: Path) -> Path:
    """Two known and one unknown toy domain under tmp_path/domains."""
    root = tmp_path / "domains"
    for i, name in enumerate(("alpha", "beta", "gamma")):
        write_domain(root, name, seed=i)
    return root


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``paths.data_dir`` holding the default world at 512 px (``data.world.size=512``),
    generated once for the session: the training tests share it."""
    from hydra.utils import instantiate

    from landslide.config import compose_config

    root = tmp_path_factory.mktemp("small_world")
    cfg = compose_config(["data.world.size=512", f"paths.data_dir={root}"], root_dir=root)
    instantiate(cfg.data).prepare_data()
    return root


#: A small default world and a small ResU-SENet trained in seconds (``trained_store``).
SMALL_WORLD = ["data.world.size=384", "data.patch_size=32"]
SMALL_TRAINING = ["trainer=quick", "model.net.widths=[8,16,32,64]"]


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A project folder with a small default world and two finished training runs,
    ``resu_senet-ib700-seed42`` and ``resu_senet-j700-seed42``, shared by the map and
    explain tests (which add map runs and explanations, never change the two)."""
    from landslide.config import compose_config
    from landslide.training import train

    root = tmp_path_factory.mktemp("project")
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        for mix in ("ib700", "j700"):
            overrides = [*SMALL_TRAINING, *SMALL_WORLD, f"domain_mix={mix}"]
            train(compose_config(overrides, root_dir=root, output_dir=root / "out" / mix))
    return root, uri
