"""Sparse labels: windows may hold ignored pixels up to a share, landslide shares count only
labelled pixels, and training reads the sample settings prepare.py used."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from landslide.bands import BANDS
from landslide.config import compose_config
from landslide.data.datamodule import LandslideDataModule
from landslide.data.sampling import (
    PoolError,
    PoolSpec,
    domain_seed,
    load_pool,
    sample_pool,
    save_pool,
)
from landslide.errors import ConfigError, DataError
from landslide.layout import IGNORED, LANDSLIDE, STABLE
from landslide.schema import validate_train_config
from tests.conftest import write_rasters


def scattered_mask(seed: int = 3, size: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(30):
        r, c = rng.integers(0, size - 10, 2)
        mask[r : r + rng.integers(3, 12), c : c + rng.integers(3, 12)] = LANDSLIDE
    return mask


def sparse_mask(size: int = 256, seed: int = 0) -> np.ndarray:
    """Everything unknown but 3 x 3 labelled spots, as point-like labels give: a landslide
    spot and a stable spot in each 32 px cell, in seeded places."""
    rng = np.random.default_rng(seed)
    mask = np.full((size, size), IGNORED, np.uint8)
    for top in range(0, size, 32):
        for left in range(0, size, 32):
            for value in (LANDSLIDE, STABLE) if rng.random() < 0.5 else (STABLE,):
                r, c = rng.integers(0, 29, 2)
                mask[top + r : top + r + 3, left + c : left + c + 3] = value
    return mask


def cells(patches, size: int = 32) -> list[tuple[int, int, bool]]:
    return [(p.row, p.col, p.positive) for p in patches]


def test_fully_labelled_pools_are_the_papers_as_before() -> None:
    """The pool of a fully labelled scene (with an ignored strip kept out) is the one drawn
    before ignored pixels were allowed in windows: these numbers came from that code."""
    mask = scattered_mask()
    mask[:, :20] = IGNORED
    pool = sample_pool(mask, PoolSpec(32, 20, 0.3, 11))
    assert cells(pool.train[:4]) == [
        (88, 144, True),
        (104, 40, False),
        (104, 168, True),
        (80, 32, False),
    ]
    assert cells(pool.test[:2]) == [(0, 152, True), (136, 72, False)]
    assert (len(pool.train), len(pool.test)) == (14, 6)
    assert all(p.col >= 20 for p in pool.train + pool.test)


def test_sparse_labels_give_windows_with_labelled_landslides() -> None:
    mask = sparse_mask()
    spec = dict(patch_size=32, pool_size=40, test_fraction=0.3, seed=1)
    with pytest.raises(PoolError) as err:
        sample_pool(mask, PoolSpec(**spec), name="sparse", knobs="data.")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("sparse: only 0 landslide 32 px windows, 20 needed")
    assert "(scene 256x256 px, " in message and "% ignored, landslides on " in message
    assert "a higher data.max_ignored_fraction (now 0) for sparse labels" in message

    pool = sample_pool(mask, PoolSpec(**spec, max_ignored_fraction=0.999), name="sparse")
    for patch in pool.train + pool.test:
        window = mask[patch.row : patch.row + 32, patch.col : patch.col + 32]
        labelled = window != IGNORED
        assert labelled.any()
        assert (window == LANDSLIDE).any() == patch.positive
    assert sum(p.positive for p in pool.train) == 14 and len(pool.train) == 28


def test_ignored_share_bounds_the_windows() -> None:
    """A window holds at most max_ignored_fraction ignored pixels; positives need the share
    of landslide among labelled pixels, not among all."""
    mask = scattered_mask(seed=5)
    mask[::2, :] = IGNORED  # half of every window unknown
    with pytest.raises(PoolError, match="50.0% ignored"):
        sample_pool(mask, PoolSpec(32, 20, 0.3, 2, max_ignored_fraction=0.49))
    pool = sample_pool(mask, PoolSpec(32, 20, 0.3, 2, max_ignored_fraction=0.5))
    for patch in pool.train:
        window = mask[patch.row : patch.row + 32, patch.col : patch.col + 32]
        assert (window == IGNORED).mean() <= 0.5
        if patch.positive:
            assert (window == LANDSLIDE).sum() / (window != IGNORED).sum() >= 0.005


def sparse_domain(root: Path, name: str, spec: PoolSpec, size: int = 256) -> None:
    """A prepared-like domain folder: random bands, the sparse mask, and its sample index
    with ``spec`` (as prepare.py writes it)."""
    rng = np.random.default_rng(0)
    mask = sparse_mask(size)
    stack = rng.normal(0.0, 0.1, (len(BANDS), size, size)).astype(np.float32)
    stack[0] += 2.0 * (mask == LANDSLIDE)
    # No imagery along the left edge (an export's border): NaN in the stack, ignored in the
    # mask, and inside windows that may hold ignored pixels.
    stack[:, :, :12] = np.nan
    mask[:, :12] = IGNORED
    files = write_rasters(root / name, stack, mask)
    save_pool(files.samples, sample_pool(mask, spec, name=name), spec)


def spec_as_prepared(name: str, **changes: object) -> PoolSpec:
    settings = dict(patch_size=32, pool_size=40, test_fraction=0.3, max_ignored_fraction=0.999)
    return PoolSpec(**{**settings, **changes}, seed=domain_seed(0, name))


def compose_prepared(tmp_path: Path, names: list[str], extra: list[str]) -> DictConfig:
    domains = ",".join(f"{n}: {{role: known}}" for n in names)
    counts = ",".join(f"{n}: 28" for n in names)
    return compose_config(
        [
            "data=prepared",
            f"data.root={tmp_path / 'prepared'}",
            f"++data.domains={{{domains}}}",
            f"data.mix={{{counts}}}",
            "trainer=quick",
            "model.net.widths=[8,16,32,64]",
            f"logger.tracking_uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
            *extra,
        ],
        root_dir=tmp_path,
        output_dir=tmp_path / "output",
    )


def test_a_sparsely_labelled_domain_trains_with_the_settings_it_was_prepared_with(
    tmp_path: Path,
) -> None:
    from landslide.training import train

    sparse_domain(tmp_path / "prepared", "sparse", spec_as_prepared("sparse"))
    cfg = compose_prepared(tmp_path, ["sparse"], [])
    validate_train_config(cfg)
    assert (cfg.data.patch_size, cfg.data.pool_size, cfg.data.max_ignored_fraction) == (
        32,
        40,
        0.999,
    )
    datamodule = LandslideDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    datamodule.setup()
    saved = load_pool(tmp_path / "prepared" / "sparse" / "samples.json", spec_as_prepared("sparse"))
    assert datamodule.pools["sparse"] == saved
    assert any(p.col < 12 for p in saved.train)  # windows over the missing imagery
    batch = next(iter(datamodule.train_dataloader()))
    assert torch.isfinite(batch["image"]).all()  # missing pixels read 0, not NaN
    task = instantiate(cfg.task, test_domains=["sparse"])
    assert torch.isfinite(task._step(batch)[1])
    metrics = train(cfg)
    scores = {k: v for k, v in metrics.items() if k.startswith("test/sparse/")}
    assert len(scores) >= 5 and all(np.isfinite(v) for v in scores.values())
    assert 0.0 <= metrics["test/sparse/f1"] <= 1.0


def test_prepared_settings_disagreeing_or_overridden_give_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "prepared"
    sparse_domain(root, "a", spec_as_prepared("a"))
    sparse_domain(root, "b", spec_as_prepared("b", patch_size=48))
    with pytest.raises(ConfigError) as err:
        validate_train_config(compose_prepared(tmp_path, ["a", "b"], []))
    assert str(err.value) == (
        "data.patch_size: the prepared domains were sampled with different values (a 32, b 48);"
        " set data.patch_size=<value> for this run (their pools are then drawn again), or "
        "prepare them alike (samples.patch_size=...)"
    )
    # An explicit value wins; a pool that cannot be drawn then is one line, not a traceback.
    cfg = compose_prepared(tmp_path, ["a"], ["data.max_ignored_fraction=0"])
    validate_train_config(cfg)
    datamodule = LandslideDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    with pytest.raises(DataError) as err:
        datamodule.setup()
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{root / 'a' / 'mask.tif'}: domain 'a'")
    assert "data.max_ignored_fraction (now 0)" in message and "data.pool_size" in message
    # The saved index was not used, and the log says why.
    assert "drawn with other settings (max_ignored_fraction 0.999 -> 0)" in caplog.text
