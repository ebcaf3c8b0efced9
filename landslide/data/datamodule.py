"""The multi-domain DataModule: fixed sample pools per domain, mixed at configured counts."""

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import rasterio
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from landslide.band_stats import BandStats
from landslide.bands import BANDS, band_set
from landslide.checksums import file_digest
from landslide.data.augmentation import RandomDihedralFlips
from landslide.data.datasets import CachedSamples, PatchDataset, collate_samples, stack_stats
from landslide.data.patches import PatchDomain, patch_domains
from landslide.data.prepared_samples import resolve_sample_settings
from landslide.data.sampling import (
    Patch,
    PoolError,
    PoolSpec,
    SamplePool,
    Split,
    domain_pool_size,
    domain_seed,
    load_pool,
    mix_problems,
    read_saved_spec,
    sample_pool,
    validation_size,
)
from landslide.data.shards import BatchShardSampler
from landslide.errors import DataError
from landslide.layout import KNOWN, UNKNOWN, DomainFiles

log = logging.getLogger(__name__)


class DomainGenerator(Protocol):
    """Writes domain folders under a root on first use.

    E.g. the simulated world (:class:`landslide.world.SimulatedWorld`): injected from
    config, so that the data layer never imports what generates its data.
    """

    def __call__(self, root: Path, domains: Mapping[str, Mapping[str, Any]]) -> None:
        """Write (or reuse) the folders of ``domains`` under ``root``."""

    def provenance(self) -> dict[str, str]:
        """Flat ``{param: value}`` pairs naming what the generated files depend on."""


class LandslideDataModule(L.LightningDataModule):
    """Training, validation and per-domain test data for the paper's experiments.

    Each domain gets a fixed, seeded pool of balanced patches (``pool_size`` for known
    domains, split ``1 - test_fraction`` : ``test_fraction`` into training and test parts as
    in the paper; ``unknown_pool_size`` test patches for unknown domains). The training set
    takes ``mix[domain]`` patches from each known domain's training part; ``val_fraction`` of
    those are held out for validation (model selection by lowest validation loss), so a
    domain contributes exactly ``mix[domain]`` samples to training and validation together
    and none of them to any test set. Every domain, known or unknown, is a test set.

    A domain folder may hold a saved sample index (``samples.json``, written by
    ``prepare.py``); it is used when it was made with this DataModule's pool parameters,
    and the pool is computed from the mask otherwise (both by
    :func:`~landslide.data.sampling.sample_pool`).

    A domain whose config has a ``patches:`` block is a benchmark's folder of image/mask
    patch files (:mod:`landslide.data.patches`): its pool is ``pool_size`` files, half with
    landslide pixels, each cropped or padded to ``patch_size``; it mixes, validates and tests
    like the others. :meth:`dataset` reads any domain's samples.

    Args:
        root: folder holding one sub-folder per domain (see :class:`DomainFiles`).
        domains: domain configs by name (``conf/domain/*.yaml``): ``role`` is ``known`` or
            ``unknown``; a ``world`` block holds the default world's generator parameters.
        mix: training samples per known domain (``conf/domain_mix/*.yaml``).
        world: a :class:`DomainGenerator` that writes the domains under ``root`` on first
            use (``conf/data/default_world.yaml`` builds the simulated world), or None for
            prepared data that must already exist.
        patch_size: patch side in pixels (the paper's 88). This and the other sample
            settings (``pool_size``, ``test_fraction``, ``seed``, ``min_landslide_fraction``,
            ``split``, ``block_size``, ``max_ignored_fraction``) may be None: as the
            prepared domains were sampled (:mod:`~landslide.data.prepared_samples`).
        pool_size: samples per known domain (the paper's 1000).
        unknown_pool_size: test samples per unknown domain.
        test_fraction: test share of a known domain's pool (the paper's 0.3).
        val_fraction: share of each domain's mixed training samples held out for validation.
        min_landslide_fraction: least landslide share of a positive patch's labelled pixels.
        max_ignored_fraction: largest share of ignored (unlabelled, 255) pixels in a patch;
            0 (the paper's fully labelled scenes) keeps every ignored pixel out of the pools,
            sparse labels need a high share (e.g. 0.99). The loss and metrics skip them.
        batch_size: patches per batch (the paper's 5).
        num_workers: DataLoader worker processes.
        seed: seed of the pools and the validation split, independent of the training seed
            so every model is tested on the same samples.
        bands: the input bands, any subset of :data:`~landslide.bands.BANDS` (read in that
            order); every domain's stack must hold them.
        split: ``random`` (the paper's) or ``blocked`` train/test split of known domains
            (see :mod:`landslide.data.sampling`).
        block_size: block side in pixels of the ``blocked`` split.
    """

    def __init__(
        self,
        root: str | Path,
        domains: Mapping[str, Mapping[str, Any]],
        mix: Mapping[str, int],
        world: DomainGenerator | None = None,
        patch_size: int | None = 88,
        pool_size: int | None = 1000,
        unknown_pool_size: int = 300,
        test_fraction: float | None = 0.3,
        val_fraction: float = 0.1,
        min_landslide_fraction: float | None = 0.005,
        batch_size: int = 5,
        num_workers: int = 0,
        seed: int | None = 0,
        bands: Sequence[str] = BANDS,
        split: Split | None = "random",
        block_size: int | None = 352,
        max_ignored_fraction: float | None = 0.0,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.domains = {name: dict(cfg) for name, cfg in domains.items()}
        self.mix = dict(mix)
        self.world = world
        # None: as the prepared domains were sampled (their samples.json), see
        # landslide.data.prepared_samples.
        sample = resolve_sample_settings(
            self.root,
            self.domains,
            dict(
                patch_size=patch_size,
                pool_size=pool_size,
                test_fraction=test_fraction,
                seed=seed,
                min_landslide_fraction=min_landslide_fraction,
                split=split,
                block_size=block_size,
                max_ignored_fraction=max_ignored_fraction,
            ),
        )
        self.patch_size: int = sample["patch_size"]
        self.pool_size: int = sample["pool_size"]
        self.unknown_pool_size = unknown_pool_size
        self.test_fraction: float = sample["test_fraction"]
        self.val_fraction = val_fraction
        self.min_landslide_fraction: float = sample["min_landslide_fraction"]
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed: int = sample["seed"]
        self.bands = band_set(bands)
        self.split: Split = sample["split"]
        self.block_size: int = sample["block_size"]
        self.max_ignored_fraction: float = sample["max_ignored_fraction"]
        self.augment = RandomDihedralFlips()
        # Benchmarks' patch folders (a ``patches:`` block, see landslide.data.patches).
        self.patch_domains: dict[str, PatchDomain] = patch_domains(self.domains, self.root)
        for patch_domain in self.patch_domains.values():
            patch_domain.source.check_bands(self.bands)
        self._check_config()
        self.pools: dict[str, SamplePool] = {}
        self.train_patches: dict[str, tuple[Patch, ...]] = {}
        self.val_patches: dict[str, tuple[Patch, ...]] = {}
        # Read once, served from memory every later epoch (see CachedSamples).
        self._train_set: CachedSamples | None = None
        self._val_set: CachedSamples | None = None

    @property
    def test_domains(self) -> list[str]:
        """Names of the test sets, in the order of :meth:`test_dataloader`."""
        return list(self.domains)

    def files(self, name: str) -> DomainFiles:
        """The files of domain ``name``."""
        return DomainFiles(self.root / name)

    def data_files(self, name: str) -> list[Path]:
        """The files whose contents make domain ``name``'s samples.

        A raster domain's stack and mask, or a patch domain's file index (which records each
        file's statistics).
        """
        if name in self.patch_domains:
            return [self.patch_domains[name].cache]
        return [self.files(name).stack, self.files(name).mask]

    def source_folder(self, name: str) -> Path:
        """Where domain ``name``'s data lives: its folder, or a patch domain's image folder."""
        if name in self.patch_domains:
            return Path(self.patch_domains[name].source.images)
        return self.files(name).root

    def band_stats(self, name: str) -> BandStats:
        """Domain ``name``'s statistics of the bands read, as its samples are normalised."""
        if name in self.patch_domains:
            return self.patch_domains[name].index().stats.select(self.bands)
        return BandStats.load(self.files(name).stats).select(self.bands)

    def _check_config(self) -> None:
        for name, cfg in self.domains.items():
            if cfg.get("role") not in (KNOWN, UNKNOWN):
                raise ValueError(
                    f"domain '{name}': role must be '{KNOWN}' or '{UNKNOWN}', "
                    f"got {cfg.get('role')!r}; fix conf/domain/{name}.yaml"
                )
        for name, count in self.mix.items():
            if not isinstance(count, int) or count < 0:
                raise ValueError(f"domain_mix count for '{name}' must be an integer >= 0")
        roles = {name: cfg["role"] for name, cfg in self.domains.items()}
        own = {n: int(c["pool_size"]) for n, c in self.domains.items() if c.get("pool_size")}
        problems = mix_problems(self.mix, roles, self.pool_size, self.test_fraction, own)
        if problems:
            raise ValueError(next(iter(problems.values())))
        if sum(self.mix.values()) == 0:
            raise ValueError("domain_mix selects no training samples; give at least one count")
        for name in self.domains:
            self.pool_spec(name)  # checks split and block_size

    def prepare_data(self) -> None:
        """Generate the default world on first use (cached), or check prepared data."""
        rasters = {n: cfg for n, cfg in self.domains.items() if n not in self.patch_domains}
        if self.world is not None:
            self.world(self.root, rasters)
        for patch_domain in self.patch_domains.values():
            patch_domain.index()  # reads and checks every file once; cached under root
        for name in rasters:
            missing = self.files(name).missing()
            if missing:
                raise DataError(
                    f"domain '{name}': missing {', '.join(map(str, missing))}; prepare it "
                    "(python prepare.py) or use data=default_world"
                )

    def provenance(self) -> dict[str, str]:
        """Where the data comes from, as flat params.

        Logged with a run and checked before its data is rebuilt: the generator's record
        (e.g. ``data.world.generator_version``) for generated data, else
        ``data.domains.<name>.sha256``, a digest of each prepared domain's band statistics and
        mask (a patch domain's file index), which changes whenever the domain is prepared
        again from other inputs. Call after :meth:`prepare_data`.
        """
        if self.world is not None:
            return self.world.provenance()
        out = {}
        for name in self.domains:
            if name in self.patch_domains:
                files = [self.patch_domains[name].cache]
            else:
                files = [self.files(name).stats, self.files(name).mask]
            digests = "".join(file_digest(path) for path in files if path.is_file())
            out[f"data.domains.{name}.sha256"] = hashlib.sha256(digests.encode()).hexdigest()
        return out

    def pool_spec(self, name: str) -> PoolSpec:
        """The parameters of domain ``name``'s pool."""
        known = self.domains[name]["role"] == KNOWN
        return PoolSpec(
            patch_size=self.patch_size,
            pool_size=domain_pool_size(self.domains[name], self.pool_size, self.unknown_pool_size),
            test_fraction=self.test_fraction if known else 1.0,
            seed=domain_seed(self.seed, name),
            min_landslide_fraction=self.min_landslide_fraction,
            split=self.split,
            block_size=self.block_size,
            max_ignored_fraction=self.max_ignored_fraction,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the pools and the mixed training/validation sets (cheap, deterministic)."""
        if self.pools:
            return
        for name in self.domains:
            if name in self.patch_domains:
                self.pools[name] = self.patch_domains[name].pool(self.pool_spec(name))
            else:
                stack_stats(self.files(name), self.bands)
                saved = self._saved_pool(name)
                self.pools[name] = saved if saved is not None else self._drawn_pool(name)
        for name, count in self.mix.items():
            chosen = self.pools[name].train[:count]
            n_val = validation_size(count, self.val_fraction)
            # The pool alternates positive and negative patches: both parts stay balanced.
            self.train_patches[name] = chosen[: count - n_val]
            self.val_patches[name] = chosen[count - n_val :]

    def _saved_pool(self, name: str) -> SamplePool | None:
        """Domain ``name``'s saved sample index, if drawn with this pool's settings.

        Returns:
            The saved pool, or None (logging which settings differ from the saved ones).
        """
        files, spec = self.files(name), self.pool_spec(name)
        pool = load_pool(files.samples, spec)
        if pool is not None:
            log.info("domain %s: using the saved sample index %s", name, files.samples)
            return pool
        saved = read_saved_spec(files.samples)
        if saved is not None:
            changed = [
                f"{k} {saved.get(k)} -> {v}" for k, v in asdict(spec).items() if saved.get(k) != v
            ]
            log.warning(
                "domain %s: the saved sample index %s was drawn with other settings (%s); "
                "drawing the pool again from the mask",
                name,
                files.samples,
                ", ".join(changed),
            )
        return None

    def _drawn_pool(self, name: str) -> SamplePool:
        """Domain ``name``'s pool drawn from its mask.

        Raises:
            DataError: naming the mask and the knobs to change when it holds too few windows.
        """
        files = self.files(name)
        with rasterio.open(files.mask) as src:
            mask = src.read(1)
        try:
            return sample_pool(mask, self.pool_spec(name), name=f"domain '{name}'", knobs="data.")
        except PoolError as err:
            raise DataError(f"{files.mask}: {err}") from None
        except ValueError as err:  # a scene smaller than a patch or a blocked split
            raise DataError(
                f"{files.mask}: {err}; use a smaller data.patch_size (and "
                "data.block_size for a blocked split)"
            ) from None

    def dataset(self, name: str, patches: Sequence[Patch]) -> Dataset[dict[str, Tensor]]:
        """The samples of ``patches`` of domain ``name`` (windows of its pool).

        Normalised with the domain's statistics: raster windows, or files of a patch domain.
        """
        index = list(self.domains).index(name)
        if name in self.patch_domains:
            return self.patch_domains[name].dataset(patches, self.patch_size, index, self.bands)
        return PatchDataset(self.files(name), patches, self.patch_size, index, self.bands)

    def _patch_sets(self, patches: Mapping[str, tuple[Patch, ...]]) -> ConcatDataset:
        return ConcatDataset(
            [self.dataset(name, items) for name, items in patches.items() if items]
        )

    def _loader(self, dataset: Dataset[dict[str, Tensor]], shuffle: bool) -> DataLoader:
        sampler = None
        trainer = self.trainer
        if not shuffle and trainer is not None and trainer.world_size > 1:
            # Under DDP each process evaluates its own whole batches, each sample once (see
            # landslide.data.shards); training batches get Lightning's automatic, seeded
            # DistributedSampler.
            sampler = BatchShardSampler(
                dataset, self.batch_size, trainer.world_size, trainer.global_rank
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_samples,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of every known domain's training patches (each read once)."""
        if self._train_set is None:
            self._train_set = CachedSamples(self._patch_sets(self.train_patches))
        return self._loader(self._train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Batches of every known domain's held-out validation patches, in order."""
        if self._val_set is None:
            self._val_set = CachedSamples(self._patch_sets(self.val_patches))
        return self._loader(self._val_set, shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per domain over its pool's test patches, in the order of ``domains``."""
        return [
            self._loader(self.dataset(n, self.pools[n].test), shuffle=False) for n in self.domains
        ]

    def on_after_batch_transfer(
        self, batch: dict[str, Tensor], dataloader_idx: int
    ) -> dict[str, Tensor]:
        """Augment training batches on the device they were moved to (GPU when there is one)."""
        if self.trainer is not None and self.trainer.training:
            batch["image"], batch["mask"] = self.augment(batch["image"], batch["mask"])
        return batch
