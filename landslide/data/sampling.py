"""Balanced patch locations, the paper's sample pools and their saved index.

The paper's "Data Sample Production" tool cuts patches around the landslide inventory and
keeps positive (landslide) and negative (no landslide) patches in balance; "Dataset Split"
divides a domain's 1000 samples 7:3 into training and testing. Here both happen on the mask
raster, seeded, so every run of every model sees the same pools.

Two splits are offered:

* ``random`` (the default, the paper's): patches are drawn anywhere and split at random.
  Patches may overlap, as in the paper, so overlapping training and test patches share
  pixels and test scores are optimistic.
* ``blocked``: the scene is cut into square blocks of ``block_size`` pixels, a seeded
  ``test_fraction`` of the blocks holds the test part and the rest the training part, and
  windows straddling both sides are never drawn. No test pixel is ever seen in training, at
  the price of fewer candidate windows and a split that depends on where landslides lie.

Pixels marked :data:`~landslide.layout.IGNORED` in the mask (no imagery, outside the
area of interest, or simply unlabelled) are neither landslide nor stable: the loss and the
metrics skip them (:mod:`landslide.task`). A window may hold up to ``max_ignored_fraction`` of
them; landslide shares are shares of a window's *labelled* pixels, so a sparsely labelled
scene (a few labelled pixels per tile, the rest unknown) still gives positive windows. With
``max_ignored_fraction=0`` (the default, the paper's fully labelled scenes) no window holds an
ignored pixel, as before.
"""

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np

from landslide.files import write_atomic
from landslide.layout import IGNORED, KNOWN, LANDSLIDE

Split = Literal["random", "blocked"]
SPLITS: tuple[str, ...] = ("random", "blocked")
SPLIT_PARTS: tuple[str, str] = ("train", "test")


@dataclass(frozen=True)
class Patch:
    """A square window of a domain's grid, in pixels.

    Attributes:
        row: top row of the window.
        col: left column of the window.
        positive: whether the window holds landslide pixels.
    """

    row: int
    col: int
    positive: bool


@dataclass(frozen=True)
class SamplePool:
    """A domain's fixed pool of samples, split into training and testing parts.

    Attributes:
        train: training part, ordered so that every prefix is balanced (positive and
            negative patches alternate).
        test: testing part, balanced.
    """

    train: tuple[Patch, ...]
    test: tuple[Patch, ...]


@dataclass(frozen=True)
class PoolSpec:
    """Everything that determines a domain's pool (with its mask).

    Attributes:
        patch_size: patch side in pixels (the paper's 88).
        pool_size: patches in the pool (the paper's 1000).
        test_fraction: test share of the pool (the paper's 0.3; 1.0 for test-only domains).
        seed: the domain's seed (see :func:`domain_seed`).
        min_landslide_fraction: least landslide share of a positive patch.
        split: ``random`` or ``blocked`` (see the module docstring).
        block_size: block side in pixels of the ``blocked`` split.
        max_ignored_fraction: largest share of ignored pixels in a window, in [0, 1).
    """

    patch_size: int
    pool_size: int
    test_fraction: float
    seed: int
    min_landslide_fraction: float = 0.005
    split: Split = "random"
    block_size: int = 352
    max_ignored_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.split == "blocked" and self.block_size < self.patch_size:
            raise ValueError(
                f"block_size ({self.block_size} px) must be at least the patch size "
                f"({self.patch_size} px), or no window fits in a block"
            )
        if not 0.0 <= self.test_fraction <= 1.0:
            raise ValueError(f"test_fraction must be in [0, 1], got {self.test_fraction}")
        if not 0.0 <= self.max_ignored_fraction < 1.0:
            raise ValueError(
                f"max_ignored_fraction must be in [0, 1), got {self.max_ignored_fraction}"
            )


#: The paper's sample settings (Section IV-A: 1000 samples of 88 x 88 px per domain, split
#: 7:3): ``conf/pool/paper.yaml`` (a test keeps them equal), used where a prepared domain
#: has no saved index.
PAPER_SAMPLES: dict[str, object] = {
    "patch_size": 88,
    "pool_size": 1000,
    "test_fraction": 0.3,
    "seed": 0,
    "min_landslide_fraction": 0.005,
    "split": "random",
    "block_size": 352,
    "max_ignored_fraction": 0.0,
}


#: Spreads base seeds apart in :func:`domain_seed`.
_SEED_STRIDE = 1_000_003


def domain_seed(seed: int, name: str) -> int:
    """A stable per-domain pool seed (Python's ``hash()`` is randomised per process)."""
    return seed * _SEED_STRIDE + zlib.crc32(name.encode())


def base_seed(pool_seed: int, name: str) -> int | None:
    """The seed :func:`domain_seed` made ``pool_seed`` from for domain ``name``.

    Returns:
        The seed, or None if ``pool_seed`` was not made so.
    """
    seed, rest = divmod(int(pool_seed) - zlib.crc32(name.encode()), _SEED_STRIDE)
    return seed if rest == 0 and seed >= 0 else None


def window_fraction(values: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Share of true pixels of a boolean raster in every ``size`` window on a ``stride`` grid.

    Uses a summed-area table, so the cost does not depend on the window size.

    Returns:
        Array [n_rows, n_cols]; entry (i, j) is the window with top-left
        (i * stride, j * stride).

    Raises:
        ValueError: if the raster is smaller than one window.
    """
    height, width = values.shape
    if height < size or width < size:
        raise ValueError(f"scene of {height}x{width} px is smaller than one {size} px patch")
    table = np.zeros((height + 1, width + 1), dtype=np.int64)
    table[1:, 1:] = np.cumsum(np.cumsum(values, axis=0, dtype=np.int64), axis=1)
    rows = np.arange(0, height - size + 1, stride)
    cols = np.arange(0, width - size + 1, stride)
    r0, c0 = np.meshgrid(rows, cols, indexing="ij")
    counts = (
        table[r0 + size, c0 + size] - table[r0, c0 + size] - table[r0 + size, c0] + table[r0, c0]
    )
    return counts / float(size * size)


class PoolError(ValueError):
    """A scene holds too few windows of a kind for its pool."""


@dataclass(frozen=True)
class WindowCounts:
    """Labelled and landslide pixels of every candidate window (see :func:`window_fraction`).

    Attributes:
        labelled: share of the window's pixels that are labelled (not ignored).
        landslide: share of the window's *labelled* pixels that are landslide (0 where none
            is labelled).
    """

    labelled: np.ndarray
    landslide: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray, size: int, stride: int) -> "WindowCounts":
        """The counts of every ``size`` window of ``mask`` on a ``stride`` grid."""
        labelled = window_fraction(mask != IGNORED, size, stride)
        landslide = window_fraction(mask == LANDSLIDE, size, stride)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(labelled > 0, landslide / labelled, 0.0)
        return cls(labelled, share)


def window_landslide_fraction(mask: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Landslide share of the labelled pixels of every ``size`` window.

    See :func:`window_fraction`; the plain landslide fraction when nothing is ignored.
    """
    return WindowCounts.of(mask, size, stride).landslide


def balanced_patches(
    mask: np.ndarray,
    count: int,
    size: int,
    rng: np.random.Generator,
    *,
    min_landslide_fraction: float = 0.005,
    max_ignored_fraction: float = 0.0,
    stride: int = 8,
    name: str = "scene",
    allowed: np.ndarray | None = None,
    knobs: str = "",
) -> tuple[list[Patch], list[Patch]]:
    """Draw ``count // 2`` positive and ``count - count // 2`` negative patches.

    A window is usable when at most ``max_ignored_fraction`` of its pixels are ignored (and
    at least one is labelled). A positive patch has landslide on at least
    ``min_landslide_fraction`` of its labelled pixels; a negative patch has no landslide
    pixel. Candidates lie on a ``stride`` pixel grid and are drawn without replacement.

    Args:
        mask: landslide mask (see :mod:`landslide.layout` for its values).
        count: number of patches to draw.
        size: patch side in pixels.
        rng: random generator (seeded by the caller).
        min_landslide_fraction: least landslide share of a positive patch's labelled pixels.
        max_ignored_fraction: largest share of ignored pixels in a patch.
        stride: spacing of candidate windows in pixels.
        name: the scene's name, for error messages.
        allowed: optional boolean grid of the candidate windows (as returned by
            :func:`window_fraction`) that may be drawn.
        knobs: prefix of the settings named in error messages (``data.`` for training,
            ``samples.`` for prepare.py).

    Returns:
        The positive and the negative patches.

    Raises:
        PoolError: if the scene has too few candidate windows of either kind, saying why.
    """
    windows = WindowCounts.of(mask, size, stride)
    usable = (windows.labelled >= 1.0 - max_ignored_fraction) & (windows.labelled > 0)
    if allowed is not None:
        usable &= allowed
    n_pos, n_neg = count // 2, count - count // 2
    drawn: dict[bool, list[Patch]] = {}
    for positive, wanted, candidates in (
        (True, n_pos, np.argwhere(usable & (windows.landslide >= min_landslide_fraction))),
        (False, n_neg, np.argwhere(usable & (windows.landslide == 0))),
    ):
        if len(candidates) < wanted:
            raise PoolError(
                _shortage(
                    mask,
                    positive,
                    len(candidates),
                    wanted,
                    size,
                    name,
                    knobs,
                    min_landslide_fraction,
                    max_ignored_fraction,
                )
            )
        chosen = candidates[rng.choice(len(candidates), size=wanted, replace=False)]
        drawn[positive] = [Patch(int(i) * stride, int(j) * stride, positive) for i, j in chosen]
    return drawn[True], drawn[False]


def _shortage(
    mask: np.ndarray,
    positive: bool,
    found: int,
    wanted: int,
    size: int,
    name: str,
    knobs: str,
    min_landslide_fraction: float,
    max_ignored_fraction: float,
) -> str:
    """One line: how many windows of a kind there are, why so few, and every knob that helps."""
    height, width = mask.shape
    labelled = mask != IGNORED
    ignored_share = 1.0 - float(labelled.mean())
    landslide_share = float((mask == LANDSLIDE).sum() / max(int(labelled.sum()), 1))
    kind = "landslide" if positive else "landslide-free"
    fixes = [f"a smaller {knobs}pool_size", f"a smaller {knobs}patch_size"]
    if positive:
        fixes.append(f"a lower {knobs}min_landslide_fraction (now {min_landslide_fraction:g})")
    if ignored_share > 0:
        fixes.append(
            f"a higher {knobs}max_ignored_fraction (now {max_ignored_fraction:g}) for sparse labels"
        )
    fixes.append(
        "a larger area (aoi=...) or finer pixels (grid.res)"
        if knobs == "samples."
        else "a larger scene"
    )
    return (
        f"{name}: only {found} {kind} {size} px windows, {wanted} needed (scene {width}x"
        f"{height} px, {ignored_share:.1%} ignored, landslides on {landslide_share:.2%} of "
        f"the labelled pixels); use {', '.join(fixes[:-1])} or {fixes[-1]}"
    )


def interleave(positives: Sequence[Patch], negatives: Sequence[Patch]) -> list[Patch]:
    """Alternate positive and negative patches so every prefix stays balanced."""
    out: list[Patch] = []
    for i in range(max(len(positives), len(negatives))):
        out.extend(p[i] for p in (positives, negatives) if i < len(p))
    return out


def _test_counts(pool_size: int, test_fraction: float) -> tuple[int, int]:
    """Positive and negative test patches of a stratified split."""
    return round(pool_size // 2 * test_fraction), round(
        (pool_size - pool_size // 2) * test_fraction
    )


def train_part_size(pool_size: int, test_fraction: float) -> int:
    """How many of a pool's patches :func:`sample_pool` puts in the training part."""
    return pool_size - sum(_test_counts(pool_size, test_fraction))


def blocked_test_mask(
    shape: tuple[int, int], block_size: int, test_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """A boolean raster: True on the seeded ``test_fraction`` of ``block_size`` blocks.

    Raises:
        ValueError: if the scene is cut into too few blocks to give both parts one.
    """
    height, width = shape
    n_rows, n_cols = math.ceil(height / block_size), math.ceil(width / block_size)
    n_blocks = n_rows * n_cols
    n_test = round(n_blocks * test_fraction)
    if not 0 < n_test < n_blocks:
        raise ValueError(
            f"a blocked split of {height}x{width} px into {block_size} px blocks gives "
            f"{n_blocks} blocks, too few for a {test_fraction:.0%} test part; lower block_size"
        )
    chosen = np.zeros(n_blocks, dtype=bool)
    chosen[rng.permutation(n_blocks)[:n_test]] = True
    blocks = chosen.reshape(n_rows, n_cols)
    return np.repeat(np.repeat(blocks, block_size, axis=0), block_size, axis=1)[:height, :width]


class _PatchOptions(TypedDict):
    """The keyword arguments :func:`sample_pool` passes to every :func:`balanced_patches`."""

    min_landslide_fraction: float
    max_ignored_fraction: float
    stride: int
    name: str
    knobs: str


def sample_pool(
    mask: np.ndarray, spec: PoolSpec, *, stride: int = 8, name: str = "scene", knobs: str = ""
) -> SamplePool:
    """A domain's pool: balanced patches split into training and test parts.

    The split is stratified: both parts keep the positive/negative balance. See the module
    docstring for the ``random`` and ``blocked`` splits.

    Args:
        mask: the domain's mask.
        spec: pool parameters.
        stride: spacing of candidate windows in pixels.
        name: the domain's name, for error messages.
        knobs: prefix of the settings named in error messages (see :func:`balanced_patches`).

    Raises:
        PoolError: if the scene holds too few windows of a kind.
        ValueError: if the scene is smaller than one patch or too small for a blocked split.
    """
    rng = np.random.default_rng(spec.seed)
    options = _PatchOptions(
        min_landslide_fraction=spec.min_landslide_fraction,
        max_ignored_fraction=spec.max_ignored_fraction,
        stride=stride,
        name=name,
        knobs=knobs,
    )
    n_test_pos, n_test_neg = _test_counts(spec.pool_size, spec.test_fraction)
    if spec.split == "random" or n_test_pos + n_test_neg in (0, spec.pool_size):
        positives, negatives = balanced_patches(
            mask, spec.pool_size, spec.patch_size, rng, **options
        )
        return SamplePool(
            train=tuple(interleave(positives[n_test_pos:], negatives[n_test_neg:])),
            test=tuple(interleave(positives[:n_test_pos], negatives[:n_test_neg])),
        )
    in_test = blocked_test_mask(mask.shape, spec.block_size, spec.test_fraction, rng)
    share = window_fraction(in_test, spec.patch_size, stride)
    parts = []
    for allowed, count, part in (
        (share == 1, n_test_pos + n_test_neg, "test"),
        (share == 0, spec.pool_size - n_test_pos - n_test_neg, "training"),
    ):
        options["name"] = f"{name} ({part} blocks)"
        parts.append(
            balanced_patches(mask, count, spec.patch_size, rng, allowed=allowed, **options)
        )
    (test_pos, test_neg), (train_pos, train_neg) = parts
    return SamplePool(
        train=tuple(interleave(train_pos, train_neg)), test=tuple(interleave(test_pos, test_neg))
    )


def save_pool(path: Path, pool: SamplePool, spec: PoolSpec) -> None:
    """Write a pool as a JSON sample index: its spec and ``[row, col, positive]`` windows.

    Written through a temporary file, so a run starting at the same moment never reads half
    an index.
    """
    index = {
        "spec": asdict(spec),
        **{part: [[p.row, p.col, p.positive] for p in getattr(pool, part)] for part in SPLIT_PARTS},
    }
    write_atomic(Path(path), json.dumps(index))


def load_pool(path: Path, spec: PoolSpec) -> SamplePool | None:
    """Read a sample index written by :func:`save_pool`.

    Returns:
        The pool, or None when there is no index or it was made with another spec.
    """
    path = Path(path)
    if not path.is_file():
        return None
    index = json.loads(path.read_text())
    if saved_spec(index) != asdict(spec):
        return None
    parts = {
        part: tuple(Patch(int(r), int(c), bool(p)) for r, c, p in index[part])
        for part in SPLIT_PARTS
    }
    return SamplePool(**parts)


def saved_spec(index: Mapping) -> dict | None:
    """The spec of a sample index, with settings added since it was written at their defaults.

    An index from before ``max_ignored_fraction`` existed stays valid.
    """
    spec = index.get("spec")
    if spec is None:
        return None
    defaults = {f.name: f.default for f in fields(PoolSpec) if f.default is not MISSING}
    return {**defaults, **spec}


def read_saved_spec(path: Path) -> dict | None:
    """The spec of the sample index at ``path`` (written by prepare.py), or None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return saved_spec(json.loads(path.read_text()))
    except (json.JSONDecodeError, AttributeError):
        return None


def validation_size(count: int, val_fraction: float) -> int:
    """How many of a domain's ``count`` mixed training samples are held out for validation.

    One function for the DataModule and the config check (:mod:`landslide.schema`), so a
    mix refused for an empty validation split is exactly one the DataModule would leave empty.
    """
    return round(count * val_fraction)


def domain_pool_size(domain: Mapping[str, Any], pool_size: int, unknown_pool_size: int) -> int:
    """The samples in a domain's pool.

    The domain's own ``pool_size`` when its config sets one (a benchmark folder may hold
    fewer files than the paper's 1000 samples), else ``pool_size`` for a known domain and
    ``unknown_pool_size`` for an unknown one.
    """
    own = domain.get("pool_size")
    if own is not None:
        return int(own)
    return pool_size if domain.get("role", KNOWN) == KNOWN else unknown_pool_size


def mix_problems(
    mix: Mapping[str, int],
    roles: Mapping[str, str],
    pool_size: int,
    test_fraction: float,
    own_pool_sizes: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """Why counts of a domain mix cannot be drawn: domain name -> reason, in mix order.

    One function for the DataModule and the config check (:mod:`landslide.schema`).

    Args:
        mix: training samples per domain.
        roles: each defined domain's role (:data:`~landslide.layout.KNOWN` or not).
        pool_size: patches in a known domain's pool.
        test_fraction: test share of a known domain's pool.
        own_pool_sizes: pool sizes domains set in their own config (``pool_size``).
    """
    known = [name for name, role in roles.items() if role == KNOWN]
    own_pool_sizes = own_pool_sizes or {}
    problems = {}
    for name, count in mix.items():
        if name not in roles:
            problems[name] = (
                f"domain_mix names domain '{name}', which the data config does not define "
                f"(defined: {', '.join(roles) or 'none'}); add conf/domain/{name}.yaml and "
                "list it in the data config, or fix the domain_mix"
            )
        elif roles[name] != KNOWN:
            problems[name] = (
                f"domain_mix takes training samples from '{name}', an unknown (test-only) "
                f"domain; train on known domains ({', '.join(known)})"
            )
        elif count > (
            train_pool := train_part_size(own_pool_sizes.get(name, pool_size), test_fraction)
        ):
            knob = f"data.domains.{name}.pool_size" if name in own_pool_sizes else "data.pool_size"
            problems[name] = (
                f"domain_mix asks for {count} '{name}' samples but its training pool holds "
                f"{train_pool} ({knob}={own_pool_sizes.get(name, pool_size)} x (1 - "
                f"data.test_fraction={test_fraction})); lower the count or raise {knob}"
            )
    return problems
