"""A benchmark's folder of image/mask patch files as a domain: readers, index, pool, dataset.

A patch domain (a domain config with a ``patches:`` block, see
:mod:`landslide.data.patch_source`) joins the DataModule like a prepared raster domain: a
fixed, seeded, balanced pool of samples split into training and test parts, samples
normalised with the domain's own min-max statistics, the same sample dicts as
:class:`~landslide.data.datasets.PatchDataset`. The differences are all in here:

* a sample is one file, cropped to the DataModule's patch size at a seeded offset (a file
  with landslide pixels is cropped around one of them, so it stays positive) or padded
  (padding is ignored: mask :data:`~landslide.layout.IGNORED`, image 0);
* a file is positive when it has a landslide pixel; a file without a labelled pixel is
  never drawn; pixels that are not finite in a band are ignored;
* the pool is ``pool_size`` files, half positive; its test part is drawn from the
  ``split.test`` list when one is given, at random otherwise;
* an index of the files (size, labelled and landslide pixels) and the statistics of every
  band the domain gives are computed in one pass over the files and cached as
  ``patches.json`` in the domain's folder under the DataModule's root (written atomically,
  recomputed when the block or any file changes).

Readers: Pillow for PNG/JPEG, rasterio for TIFF, h5py for HDF5, numpy for NPY. A 3-D array
is read channels-first or channels-last, whichever axis is the shortest (Landslide4Sense
stores 128 x 128 x 14). A mask with several channels is read from its first.

torchgeo has a ``Landslide4Sense`` dataset on its main branch, but not in the pinned
release (0.10.1); it also reads one fixed folder layout per split, returns raw file values
(no band mapping, scale or derived bands) and has no other benchmark, so one generic reader
serves every benchmark here instead.
"""

import hashlib
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from landslide.band_stats import BandStats
from landslide.bands import BANDS
from landslide.data.normalization import MinMaxNormalize
from landslide.data.patch_source import CLASSES, PatchConfigError, PatchSource
from landslide.data.sampling import Patch, PoolSpec, SamplePool, interleave, train_part_size
from landslide.errors import DataError
from landslide.features import hillshade, ndvi, slope_degrees
from landslide.files import write_atomic
from landslide.layout import IGNORED, LANDSLIDE, STABLE

log = logging.getLogger(__name__)

#: Version of the cached index; a change recomputes every cache.
INDEX_VERSION = 1


@dataclass(frozen=True)
class FilePatch(Patch):
    """A sample of a patch domain: a window of one file.

    Attributes:
        row: top row of the window in the file (0 for a file smaller than a patch).
        col: left column of the window in the file.
        positive: whether the file holds landslide pixels (then the window does too).
        file: the file's position in the domain's index.
    """

    file: int


@dataclass(frozen=True)
class PatchFile:
    """One image file of a patch domain, with what its mask holds.

    Attributes:
        image: the image file.
        mask: its mask file (None: all stable, ``masks.missing: stable``).
        height: rows.
        width: columns.
        labelled: pixels labelled stable or landslide (with finite values in every band).
        landslide: landslide pixels.
        anchor: a landslide pixel (row, col) that positive crops hold, or None.
    """

    image: Path
    mask: Path | None
    height: int
    width: int
    labelled: int
    landslide: int
    anchor: tuple[int, int] | None


@dataclass(frozen=True)
class PatchIndex:
    """A patch domain's files and the statistics of every band it gives.

    Attributes:
        files: the image files, sorted by path.
        stats: min-max and moments of every band of :attr:`PatchSource.provided`.
    """

    files: tuple[PatchFile, ...]
    stats: BandStats


# --- reading ---------------------------------------------------------------------------------


def read_array(path: Path, fmt: str, key: str | None = None, mask: bool = False) -> np.ndarray:
    """The values of one patch file, [bands, H, W] (a single-band file gives one band).

    Args:
        path: the file.
        fmt: ``image`` (Pillow: PNG, JPEG), ``tiff``, ``hdf5`` or ``npy``.
        key: the HDF5 dataset (None: the file's only one).
        mask: whether the file is a mask (a palette PNG then gives its indexes, not colours).

    Raises:
        DataError: if the file cannot be read or holds no 2-D or 3-D array.
    """
    try:
        array = _READERS[fmt](path, key, mask)
    except DataError:
        raise
    except Exception as err:  # each library raises its own errors for a damaged file
        raise DataError(
            f"{path}: cannot be read as {fmt} ({type(err).__name__}: {err}); replace the file "
            "or set the domain's patches.format"
        ) from None
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3:
        if array.shape[2] < min(array.shape[:2]):
            return np.moveaxis(array, 2, 0)  # channels last (PNG, Landslide4Sense)
        if array.shape[0] < min(array.shape[1:]):
            return array
    raise DataError(
        f"{path}: holds an array of shape {array.shape}, not an image of bands x rows x "
        "columns (or rows x columns x bands); check the patches.images glob"
    )


def _read_image(path: Path, key: str | None, mask: bool) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as opened:
        image: Image.Image = opened
        if opened.mode == "P" and not mask:
            image = opened.convert("RGBA" if "transparency" in opened.info else "RGB")
        return np.asarray(image)


def _read_tiff(path: Path, key: str | None, mask: bool) -> np.ndarray:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read()


def _read_hdf5(path: Path, key: str | None, mask: bool) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as f:
        if key is None:
            names = [n for n in f if isinstance(f[n], h5py.Dataset)]
            if len(names) != 1:
                raise DataError(
                    f"{path}: holds datasets {', '.join(names) or 'none'}; name the one to "
                    "read with the domain's patches.hdf5.image / patches.hdf5.mask"
                )
            key = names[0]
        if key not in f:
            raise DataError(
                f"{path}: has no dataset '{key}' (it holds {', '.join(f)}); fix the domain's "
                "patches.hdf5"
            )
        return f[key][()]


def _read_npy(path: Path, key: str | None, mask: bool) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _dem_pixel_size(source: PatchSource) -> float:
    """The pixel size slope and hillshade are derived with (set whenever a dem band is)."""
    if source.pixel_size_m is None:  # PatchSource.from_config refuses a dem without one
        raise DataError(
            f"data.domains.{source.domain}.patches.pixel_size_m: is needed to derive slope and "
            "hillshade from the dem band; e.g. pixel_size_m: 10"
        )
    return source.pixel_size_m


_READERS = {"image": _read_image, "tiff": _read_tiff, "hdf5": _read_hdf5, "npy": _read_npy}


def read_bands(source: PatchSource, path: Path, bands: Sequence[str]) -> np.ndarray:
    """The ``bands`` of one image file, float32 [len(bands), H, W], derived as needed.

    Colour bands are file bands times their scale; NDVI comes from red and nir, slope and
    hillshade from the dem band (:mod:`landslide.features`) unless the file holds them.

    Raises:
        DataError: if the file cannot be read or lacks a mapped band.
    """
    array = read_array(path, source.format_of(path), source.hdf5_image)
    cache: dict[str, np.ndarray] = {}

    def quantity(name: str) -> np.ndarray:
        if name not in cache:
            band = source.bands[name]
            if band > len(array):
                raise DataError(
                    f"{path}: has {len(array)} band(s), but the domain '{source.domain}' maps "
                    f"{name} to band {band}; fix patches.bands in conf/domain/"
                    f"{source.domain}.yaml"
                )
            cache[name] = array[band - 1].astype(np.float32) * np.float32(source.scale[name])
        return cache[name]

    layers = []
    for band in bands:
        if band in source.bands:
            layers.append(quantity(band))
        elif band == "slope":
            layers.append(slope_degrees(quantity("dem"), _dem_pixel_size(source)))
        elif band == "hillshade":
            layers.append(hillshade(quantity("dem"), _dem_pixel_size(source), *source.sun))
        else:  # <date>_ndvi
            date = band.partition("_")[0]
            layers.append(ndvi(quantity(f"{date}_red"), quantity(f"{date}_nir")))
    return np.stack(layers).astype(np.float32, copy=False)


def read_mask(source: PatchSource, mask: Path | None, shape: tuple[int, int]) -> np.ndarray:
    """A mask file in our values (uint8: stable, landslide, ignored).

    Args:
        source: the domain's ``patches:`` block.
        mask: the mask file; None for an image without one (all stable).
        shape: the image's (rows, columns), the shape of a mask made for None.

    Raises:
        DataError: if the mask holds a value ``patches.labels`` does not map.
    """
    if mask is None:
        return np.full(shape, STABLE, np.uint8)
    values = read_array(mask, source.format_of(mask), source.hdf5_mask, mask=True)[0]
    found = np.unique(values)
    unmapped = [v for v in found.tolist() if v not in source.labels]
    if unmapped:
        mapped = ", ".join(f"{v}: {_class_name(c)}" for v, c in source.labels.items())
        raise DataError(
            f"domain '{source.domain}': mask {mask} holds value(s) "
            f"{', '.join(_show(v) for v in unmapped[:5])} that patches.labels does not map "
            f"(it maps {mapped}); map each to stable, landslide or ignored in "
            f"conf/domain/{source.domain}.yaml, e.g. labels: {{{mapped}, "
            f"{_show(unmapped[0])}: ignored}}"
        )
    out = np.full(values.shape, IGNORED, np.uint8)
    for value, label in source.labels.items():
        out[values == value] = label
    return out


def _class_name(value: int) -> str:
    return next(name for name, v in CLASSES.items() if v == value)


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- the index and its cache -----------------------------------------------------------------


class PatchDomain:
    """A patch domain's files, with their index cached under ``cache_dir``.

    Args:
        source: the checked ``patches:`` block.
        cache_dir: the domain's folder under the DataModule's root (``patches.json``).
    """

    def __init__(self, source: PatchSource, cache_dir: Path) -> None:
        self.source = source
        self.cache_dir = Path(cache_dir)
        self._index: PatchIndex | None = None

    @property
    def cache(self) -> Path:
        """The cached index."""
        return self.cache_dir / "patches.json"

    def pairs(self) -> list[tuple[Path, Path | None]]:
        """The image files and their masks (None: all stable), sorted by image path.

        Raises:
            DataError: if no image matches, or an image has no mask and
                ``masks.missing`` is ``error``.
        """
        src = self.source
        images = sorted(p for p in src.images.glob(src.image_glob) if p.is_file())
        if not images:
            raise DataError(
                f"domain '{src.domain}': no file matches {src.images / src.image_glob}; put the "
                f"patches there or fix patches.images in conf/domain/{src.domain}.yaml"
            )
        pairs: list[tuple[Path, Path | None]] = []
        missing = []
        for image in images:
            mask = src.mask_path(image)
            if mask.is_file():
                pairs.append((image, mask))
            elif src.missing_mask == "stable":
                pairs.append((image, None))
            else:
                missing.append(mask)
        if missing:
            raise DataError(
                f"domain '{src.domain}': {len(missing)} of {len(images)} images have no mask "
                f"(first: {missing[0]}, for {images[0] if len(images) == 1 else 'its image'}); "
                "fix patches.masks (folder, replace, suffix), or set patches.masks.missing: "
                "stable if images without masks are landslide-free"
            )
        return pairs

    def index(self) -> PatchIndex:
        """The index: read from the cache, or computed and cached.

        The cache is used when it matches the block and the files; else the index is
        computed (one pass over every file) and cached.

        Raises:
            DataError: if a file cannot be read, a mask holds an unmapped value, or sizes
                differ.
        """
        if self._index is not None:
            return self._index
        pairs = self.pairs()
        key = self._key(pairs)
        index = self._load(key)
        if index is None:
            log.info(
                "domain %s: indexing %d patch files (cached in %s)",
                self.source.domain,
                len(pairs),
                self.cache,
            )
            index = self._compute(pairs)
            record = {
                "version": INDEX_VERSION,
                "key": key,
                "files": [_file_record(f) for f in index.files],
                "stats": asdict(index.stats),
            }
            write_atomic(self.cache, json.dumps(record))
        self._index = index
        return index

    def _key(self, pairs: Sequence[tuple[Path, Path | None]]) -> str:
        digest = hashlib.sha256(self.source.fingerprint().encode())
        for paths in pairs:
            for path in paths:
                stat = path.stat() if path is not None else None
                digest.update(
                    f"{path}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}".encode()
                )
        return digest.hexdigest()

    def _load(self, key: str) -> PatchIndex | None:
        try:
            record = json.loads(self.cache.read_text())
            if record.get("version") != INDEX_VERSION or record.get("key") != key:
                return None
            files = tuple(
                PatchFile(
                    Path(image),
                    None if mask is None else Path(mask),
                    height,
                    width,
                    labelled,
                    landslide,
                    None if anchor is None else (anchor[0], anchor[1]),
                )
                for image, mask, height, width, labelled, landslide, anchor in record["files"]
            )
            stats = BandStats(**{k: tuple(v) for k, v in record["stats"].items()})
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no cache yet, or a damaged one: computed again
        return PatchIndex(files, stats)

    def _compute(self, pairs: Sequence[tuple[Path, Path | None]]) -> PatchIndex:
        bands = self.source.provided
        n = np.zeros(len(bands))
        total = np.zeros(len(bands))
        total_sq = np.zeros(len(bands))
        lo = np.full(len(bands), np.inf)
        hi = np.full(len(bands), -np.inf)
        files = []
        for image, mask_path in pairs:
            values = read_bands(self.source, image, bands)
            mask = read_mask(self.source, mask_path, values.shape[1:])
            if mask.shape != values.shape[1:]:
                raise DataError(
                    f"domain '{self.source.domain}': mask {mask_path} is {mask.shape[0]} x "
                    f"{mask.shape[1]} px but its image {image} is {values.shape[1]} x "
                    f"{values.shape[2]} px; pair each image with its own mask (patches.masks)"
                )
            finite = np.isfinite(values)
            mask[~finite.all(axis=0)] = IGNORED
            for b in range(len(bands)):
                v = values[b][finite[b]].astype(np.float64)
                if v.size:
                    n[b] += v.size
                    total[b] += v.sum()
                    total_sq[b] += np.square(v).sum()
                    lo[b] = min(lo[b], v.min())
                    hi[b] = max(hi[b], v.max())
            landslide = np.flatnonzero(mask == LANDSLIDE)
            anchor = None
            if landslide.size:
                row, col = np.unravel_index(landslide[landslide.size // 2], mask.shape)
                anchor = (int(row), int(col))
            files.append(
                PatchFile(
                    image=image,
                    mask=mask_path,
                    height=int(mask.shape[0]),
                    width=int(mask.shape[1]),
                    labelled=int((mask != IGNORED).sum()),
                    landslide=int(landslide.size),
                    anchor=anchor,
                )
            )
        if (n == 0).any():
            empty = [bands[b] for b in np.flatnonzero(n == 0)]
            raise DataError(
                f"domain '{self.source.domain}': bands {', '.join(empty)} hold no finite value "
                "in any patch; check patches.bands and the files"
            )
        mean = total / n
        stats = BandStats(
            bands=bands,
            minimum=tuple(float(v) for v in lo),
            maximum=tuple(float(v) for v in hi),
            mean=tuple(float(v) for v in mean),
            std=tuple(float(v) for v in np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))),
        )
        return PatchIndex(tuple(files), stats)

    # --- the pool ----------------------------------------------------------------------------

    def pool(self, spec: PoolSpec) -> SamplePool:
        """The domain's pool: ``spec.pool_size`` files, half with landslide pixels.

        Like :func:`~landslide.data.sampling.sample_pool`: seeded by ``spec.seed``, the test
        part holds ``spec.test_fraction`` of each kind (drawn from ``split.test`` when the
        block lists files), and positives and negatives alternate in both parts.

        Raises:
            DataError: if there are too few files of a kind, or a split list names a file
                that is not among the images.
        """
        index = self.index()
        rng = np.random.default_rng(spec.seed)
        n_pos = spec.pool_size // 2
        n_test = spec.pool_size - train_part_size(spec.pool_size, spec.test_fraction)
        n_test_pos = round(n_pos * spec.test_fraction)
        wanted = {
            "test": (n_test_pos, n_test - n_test_pos),
            "train": (n_pos - n_test_pos, spec.pool_size - n_pos - (n_test - n_test_pos)),
        }
        drawn: dict[str, list[list[FilePatch]]] = {"test": [[], []], "train": [[], []]}
        for parts, candidates in self._candidates(index):
            for k, positive in enumerate((True, False)):
                kind = [i for i in candidates if (index.files[i].landslide > 0) == positive]
                need = sum(wanted[p][k] for p in parts)
                if len(kind) < need:
                    raise DataError(self._too_few(parts, positive, len(kind), need, spec))
                chosen = rng.choice(len(kind), size=need, replace=False).tolist()
                for part in parts:  # the test part first, as sample_pool splits
                    take, chosen = chosen[: wanted[part][k]], chosen[wanted[part][k] :]
                    drawn[part][k] = [
                        self._crop(index, kind[i], spec.patch_size, rng) for i in take
                    ]
        return SamplePool(
            train=tuple(interleave(*drawn["train"])), test=tuple(interleave(*drawn["test"]))
        )

    def _candidates(self, index: PatchIndex) -> list[tuple[tuple[str, ...], list[int]]]:
        """The pool's parts and the labelled files each is drawn from."""
        usable = [i for i, f in enumerate(index.files) if f.labelled > 0]
        src = self.source
        if src.test_list is None:
            return [(("test", "train"), usable)]
        names = {f.image.relative_to(src.images).as_posix(): i for i, f in enumerate(index.files)}
        lists = {"test": src.test_list, "train": src.train_list or ()}
        both = set(lists["train"]) & set(lists["test"])
        if both:
            raise DataError(
                f"domain '{src.domain}': {sorted(both)[0]} is in both patches.split lists; "
                "a file belongs to one part"
            )
        out: list[tuple[tuple[str, ...], list[int]]] = []
        for part, listed in lists.items():
            unknown = [n for n in listed if n not in names]
            if unknown:
                raise DataError(
                    f"domain '{src.domain}': patches.split.{part} names {unknown[0]}, which is "
                    f"not an image under {src.images} matching {src.image_glob}; list paths "
                    "relative to patches.images.folder"
                )
            chosen = {names[n] for n in listed}
            out.append(((part,), [i for i in usable if i in chosen]))
        return out

    def _too_few(
        self, parts: Sequence[str], positive: bool, have: int, wanted: int, spec: PoolSpec
    ) -> str:
        kind = "with landslide pixels" if positive else "without landslide pixels"
        where = f" in patches.split.{parts[0]}" if len(parts) == 1 else ""
        return (
            f"domain '{self.source.domain}': only {have} labelled patch files {kind}{where}, "
            f"{wanted} needed for a pool of {spec.pool_size}; lower "
            f"data.domains.{self.source.domain}.pool_size (the domain's own, else "
            "data.pool_size or, for a test-only domain, data.unknown_pool_size) or add files"
        )

    @staticmethod
    def _crop(index: PatchIndex, i: int, size: int, rng: np.random.Generator) -> FilePatch:
        """A seeded window of file ``i``; a positive file's holds its anchor pixel."""
        f = index.files[i]
        row_col = []
        for axis, extent in enumerate((f.height, f.width)):
            if extent <= size:
                row_col.append(0)
                continue
            lo, hi = 0, extent - size
            if f.anchor is not None:
                lo, hi = max(0, f.anchor[axis] - size + 1), min(f.anchor[axis], extent - size)
            row_col.append(int(rng.integers(lo, hi + 1)))
        return FilePatch(row_col[0], row_col[1], f.landslide > 0, i)

    def dataset(
        self,
        patches: Sequence[Patch],
        size: int,
        domain_index: int = 0,
        bands: Sequence[str] = BANDS,
    ) -> "PatchFileDataset":
        """The samples of ``patches`` (:class:`FilePatch` of this domain's pool)."""
        index = self.index()
        return PatchFileDataset(self.source, index, patches, size, domain_index, bands)


def _file_record(f: PatchFile) -> list:
    return [
        str(f.image),
        None if f.mask is None else str(f.mask),
        f.height,
        f.width,
        f.labelled,
        f.landslide,
        None if f.anchor is None else list(f.anchor),
    ]


# --- the dataset -----------------------------------------------------------------------------


class PatchFileDataset(Dataset[dict[str, Tensor]]):
    """Samples of a patch domain: one window of one file each.

    Given as :class:`~landslide.data.datasets.PatchDataset` gives them.

    Each sample is ``image`` [C, size, size] (normalised with the domain's statistics),
    ``mask`` [size, size] float (0 stable, 1 landslide, 255 ignored, padding included) and
    ``domain`` (the index).

    Args:
        source: the domain's ``patches:`` block.
        index: the domain's index (files and statistics).
        patches: the samples, :class:`FilePatch` windows.
        size: patch side in pixels.
        domain_index: integer stored in each sample under ``"domain"``.
        bands: the bands to read, in :data:`~landslide.bands.BANDS` order.
    """

    def __init__(
        self,
        source: PatchSource,
        index: PatchIndex,
        patches: Sequence[Patch],
        size: int,
        domain_index: int = 0,
        bands: Sequence[str] = BANDS,
    ) -> None:
        try:
            source.check_bands(bands)
        except PatchConfigError as err:
            raise DataError(str(err)) from None
        self.source = source
        self.files = index.files
        self.patches = tuple(patches)
        self.size = size
        self.domain_index = domain_index
        self.bands = tuple(bands)
        self.normalize = MinMaxNormalize(index.stats.select(self.bands))

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        patch = self.patches[index]
        if not isinstance(patch, FilePatch):
            raise TypeError(f"a patch domain's sample is a FilePatch, got {patch!r}")
        f = self.files[patch.file]
        window = np.s_[patch.row : patch.row + self.size, patch.col : patch.col + self.size]
        pixels = read_bands(self.source, f.image, self.bands)[(slice(None), *window)]
        mask = read_mask(self.source, f.mask, (f.height, f.width))[window]
        invalid = ~np.isfinite(pixels).all(axis=0)
        mask[invalid] = IGNORED
        image = self.normalize({"image": torch.from_numpy(pixels)})["image"]
        image[:, torch.from_numpy(invalid)] = 0.0
        height, width = mask.shape
        if height < self.size or width < self.size:
            pad = (0, self.size - width, 0, self.size - height)
            image = torch.nn.functional.pad(image, pad, value=0.0)
            mask = np.pad(
                mask, ((0, self.size - height), (0, self.size - width)), constant_values=IGNORED
            )
        return {
            "image": image,
            "mask": torch.from_numpy(mask).float(),
            "domain": torch.tensor(self.domain_index),
        }


def patch_domains(domains: Mapping[str, Mapping[str, Any]], root: Path) -> dict[str, PatchDomain]:
    """The patch domains among ``domains`` (those with a ``patches:`` block).

    Each keeps its cache under ``root/<name>``.

    Raises:
        PatchConfigError: for the first bad block.
    """
    return {
        name: PatchDomain(PatchSource.from_config(name, cfg["patches"]), Path(root) / name)
        for name, cfg in domains.items()
        if cfg.get("patches") is not None
    }
