"""DataModule: pools, domain mixes, patch reading and augmentation."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from conftest import write_rasters
from torch.utils.data import default_collate

from landslide.band_stats import BandStats
from landslide.data.augmentation import RandomDihedralFlips
from landslide.data.datamodule import LandslideDataModule
from landslide.data.datasets import PatchDataset
from landslide.data.sampling import Patch, balanced_patches, window_landslide_fraction
from landslide.errors import DataError
from landslide.layout import DomainFiles

DOMAINS = {"alpha": {"role": "known"}, "beta": {"role": "known"}, "gamma": {"role": "unknown"}}


def make_datamodule(root: Path, mix: dict[str, int], **kwargs) -> LandslideDataModule:
    options = dict(patch_size=32, pool_size=60, unknown_pool_size=20, val_fraction=0.1)
    options.update(kwargs)
    return LandslideDataModule(root, DOMAINS, mix, **options)


def test_window_fraction_matches_direct_count() -> None:
    rng = np.random.default_rng(1)
    mask = (rng.random((50, 60)) < 0.2).astype(np.uint8)
    fraction = window_landslide_fraction(mask, size=16, stride=4)
    assert fraction.shape == ((50 - 16) // 4 + 1, (60 - 16) // 4 + 1)
    for i, j in [(0, 0), (3, 5), (8, 11)]:
        window = mask[i * 4 : i * 4 + 16, j * 4 : j * 4 + 16]
        assert fraction[i, j] == pytest.approx(window.mean())


def test_balanced_patches_are_balanced_and_labelled_right() -> None:
    mask = np.zeros((200, 200), np.uint8)
    mask[20:60, 20:60] = 1
    pos, neg = balanced_patches(mask, 21, 32, np.random.default_rng(0), stride=4)
    assert (len(pos), len(neg)) == (10, 11)
    for p in pos:
        assert mask[p.row : p.row + 32, p.col : p.col + 32].mean() >= 0.005
    for p in neg:
        assert mask[p.row : p.row + 32, p.col : p.col + 32].sum() == 0


def test_too_few_landslide_windows_is_a_clear_error() -> None:
    mask = np.zeros((64, 64), np.uint8)
    with pytest.raises(ValueError, match="only 0 landslide 32 px windows, 5 needed"):
        balanced_patches(mask, 10, 32, np.random.default_rng(0), name="flat")


def test_mix_gives_exact_counts_and_disjoint_sets(toy_domains: Path) -> None:
    dm = make_datamodule(toy_domains, {"alpha": 30, "beta": 10})
    dm.prepare_data()
    dm.setup("fit")
    for name, count in {"alpha": 30, "beta": 10}.items():
        train, val = set(dm.train_patches[name]), set(dm.val_patches[name])
        test = set(dm.pools[name].test)
        assert len(train) + len(val) == count
        assert len(val) == round(count * 0.1)
        assert not train & test and not val & test and not train & val
        assert len(test) == 18  # 30% of the 60-sample pool
    assert "gamma" not in dm.train_patches
    assert len(dm.pools["gamma"].test) == 20 and not dm.pools["gamma"].train
    assert len(dm.train_dataloader().dataset) == 27 + 9
    assert [len(dl.dataset) for dl in dm.test_dataloader()] == [18, 18, 20]


def test_pools_are_seeded_and_shared_across_mixes(toy_domains: Path) -> None:
    a = make_datamodule(toy_domains, {"alpha": 30})
    b = make_datamodule(toy_domains, {"alpha": 10, "beta": 20})
    other = make_datamodule(toy_domains, {"alpha": 30}, seed=1)
    for dm in (a, b, other):
        dm.setup()
    assert a.pools["alpha"].test == b.pools["alpha"].test
    assert a.pools["alpha"].test != other.pools["alpha"].test
    # A smaller mix takes a prefix of the same training part.
    assert set(b.train_patches["alpha"]) <= set(a.pools["alpha"].train[:10])


def test_training_part_is_balanced(toy_domains: Path) -> None:
    dm = make_datamodule(toy_domains, {"alpha": 40})
    dm.setup()
    positives = sum(p.positive for p in dm.train_patches["alpha"] + dm.val_patches["alpha"])
    assert positives == 20


def test_patch_matches_raster_window(toy_domains: Path) -> None:
    files = DomainFiles(toy_domains / "alpha")
    dm = make_datamodule(toy_domains, {"alpha": 10})
    dm.setup()
    patch = dm.train_patches["alpha"][0]
    sample = PatchDataset(files, [patch], 32)[0]
    window = rasterio.windows.Window(patch.col, patch.row, 32, 32)
    with rasterio.open(files.stack) as src:
        raw = src.read(window=window)
    with rasterio.open(files.mask) as src:
        mask = src.read(1, window=window)
    stats = BandStats.load(files.stats)
    lo = np.array(stats.minimum)[:, None, None]
    hi = np.array(stats.maximum)[:, None, None]
    assert sample["image"].shape == (10, 32, 32)
    np.testing.assert_allclose(sample["image"].numpy(), (raw - lo) / (hi - lo), atol=1e-5)
    np.testing.assert_array_equal(sample["mask"].numpy(), mask)
    assert 0.0 <= sample["image"].min() and sample["image"].max() <= 1.0


def test_window_reads_equal_torchgeo_queries(tmp_path: Path) -> None:
    """The direct windowed read returns exactly what torchgeo's georeferenced query returns,
    NaN pixels and a mask with a nodata value included; a window off the grid's edge falls
    back to the query (padded)."""
    rng = np.random.default_rng(3)
    mask = (rng.random((64, 64)) < 0.2).astype(np.uint8)
    mask[:5, :7] = 255
    stack = rng.normal(0.0, 1.0, (10, 64, 64)).astype(np.float32)
    stack[:, :5, :7] = np.nan
    files = write_rasters(tmp_path / "nan", stack, mask, nodata=255)
    patches = [Patch(0, 0, True), Patch(17, 3, False), Patch(32, 32, True), Patch(50, 50, True)]
    bands = ("slope", "post_red", "post_ndvi")
    dataset = PatchDataset(files, patches, 16, bands=bands)
    for patch in patches[:3]:
        assert dataset.reader.holds(patch, 16)
        direct = dataset.reader.read(patch, 16)
        query = dataset._query(patch)
        torch.testing.assert_close(direct["image"], query["image"], rtol=0, atol=0)
        torch.testing.assert_close(direct["mask"].long(), query["mask"].long(), rtol=0, atol=0)
    assert not dataset.reader.holds(patches[3], 16)
    assert dataset[3]["image"].shape == (3, 16, 16)


def test_training_samples_are_read_once_and_served_the_same(
    toy_domains: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dm = make_datamodule(toy_domains, {"alpha": 20, "beta": 10})
    dm.setup("fit")
    reads: list[int] = []
    read = PatchDataset.__getitem__

    def counted(self: PatchDataset, index: int) -> dict[str, torch.Tensor]:
        reads.append(index)
        return read(self, index)

    monkeypatch.setattr(PatchDataset, "__getitem__", counted)
    loader = dm.train_dataloader()
    first = [batch for batch in loader]
    assert len(reads) == 27  # 18 + 9 training patches, each read once
    again = [batch for batch in dm.train_dataloader()]  # a later epoch, a new loader
    assert len(reads) == 27
    # Served from memory as read: the same samples, only in another shuffled order.
    assert len(again) == len(first)
    served = torch.cat([b["image"] for b in again]).sum()
    torch.testing.assert_close(served, torch.cat([b["image"] for b in first]).sum())
    # Once all are in memory a batch is one gather: exactly the batch stacked from reads.
    fresh = dm.dataset("alpha", dm.train_patches["alpha"])
    gathered = loader.dataset.__getitems__([3, 0, 7])
    stacked = default_collate([fresh[3], fresh[0], fresh[7]])
    assert isinstance(gathered, dict) and gathered.keys() == stacked.keys()
    for key in stacked:
        assert torch.equal(gathered[key], stacked[key]), key


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ({"atlantis": 10}, "domain_mix names domain 'atlantis'.*add conf/domain/atlantis.yaml"),
        ({"alpha": 43}, "asks for 43 'alpha' samples but its training pool holds 42"),
        ({"gamma": 5}, "'gamma', an unknown \\(test-only\\) domain"),
        ({"alpha": 0}, "selects no training samples"),
    ],
)
def test_bad_mix_fails_with_a_clear_message(toy_domains: Path, mix: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_datamodule(toy_domains, mix)


def test_missing_domain_files_are_reported(tmp_path: Path) -> None:
    dm = make_datamodule(tmp_path, {"alpha": 10})
    with pytest.raises(DataError, match="domain 'alpha': missing .*stack.tif"):
        dm.prepare_data()


def test_flips_keep_image_and_mask_aligned() -> None:
    torch.manual_seed(0)
    mask = (torch.rand(64, 16, 16) > 0.7).float()
    # Every band is a deterministic function of the mask, so alignment survives any flip
    # only if image and mask move together.
    image = torch.stack([mask * (b + 1) for b in range(10)], dim=1)
    out_image, out_mask = RandomDihedralFlips(p=0.5)(image, mask)
    for b in range(10):
        assert torch.equal(out_image[:, b], out_mask * (b + 1))
    changed = (out_mask != mask).flatten(1).any(1)
    assert 0.6 < changed.float().mean() < 1.0  # 7/8 of samples change in expectation
    assert torch.equal(RandomDihedralFlips(p=0.0)(image, mask)[1], mask)
    flipped_all = RandomDihedralFlips(p=1.0)(image, mask)[1]
    assert torch.equal(flipped_all, mask.flip(-1).flip(-2).transpose(-1, -2))


def test_blocked_split_keeps_test_pixels_out_of_training(toy_domains: Path) -> None:
    dm = make_datamodule(toy_domains, {"alpha": 20}, pool_size=30, split="blocked", block_size=48)
    dm.setup()
    covered = {}
    for part in ("train", "test"):
        covered[part] = np.zeros((160, 160), bool)
        for p in getattr(dm.pools["alpha"], part):
            covered[part][p.row : p.row + 32, p.col : p.col + 32] = True
    assert covered["test"].any() and not (covered["train"] & covered["test"]).any()
    assert len(dm.pools["gamma"].test) == 20  # test-only domains are not blocked


def test_band_subset_reads_those_bands(toy_domains: Path) -> None:
    dm = make_datamodule(toy_domains, {"alpha": 10}, bands=["post_ndvi", "slope"])
    dm.setup()
    sample = dm.train_dataloader().dataset[0]
    full = make_datamodule(toy_domains, {"alpha": 10})
    full.setup()
    assert dm.bands == ("slope", "post_ndvi") and sample["image"].shape == (2, 32, 32)
    np.testing.assert_allclose(sample["image"], full.train_dataloader().dataset[0]["image"][[0, 9]])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"split": "spatial"}, "split must be one of random, blocked"),
        ({"split": "blocked", "block_size": 16}, "block_size \\(16 px\\) must be at least"),
        ({"bands": ["slope", "dem"]}, "unknown bands \\['dem'\\]"),
    ],
)
def test_bad_split_or_bands_fail_early(toy_domains: Path, option: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_datamodule(toy_domains, {"alpha": 10}, **option)


def test_a_domain_may_set_its_own_pool_size(toy_domains: Path) -> None:
    """A small domain (a benchmark folder of a few hundred files) sets its own pool size;
    the others keep data.pool_size, and a count beyond the small pool names its knob."""
    domains = {**DOMAINS, "beta": {"role": "known", "pool_size": 20}}
    options = dict(patch_size=32, pool_size=40, unknown_pool_size=10)
    dm = LandslideDataModule(toy_domains, domains, {"alpha": 20, "beta": 14}, **options)
    dm.setup()
    assert (len(dm.pools["alpha"].train), len(dm.pools["alpha"].test)) == (28, 12)
    assert (len(dm.pools["beta"].train), len(dm.pools["beta"].test)) == (14, 6)
    with pytest.raises(ValueError, match=r"holds 14 \(data.domains.beta.pool_size=20 x"):
        LandslideDataModule(toy_domains, domains, {"alpha": 20, "beta": 15}, **options)
