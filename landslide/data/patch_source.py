"""The ``patches:`` block of a domain config: a benchmark's folder of image/mask patch files.

The field's public benchmarks (Bijie, Landslide4Sense, CAS Landslide, GDCLD) are folders of
fixed-size patches, often without georeferencing, rather than one scene. A domain config
with a ``patches:`` block is such a domain; the block says where the files are, how masks
pair with images, which file bands are which of our bands, and how mask values read::

    patches:
      images: {folder: ${paths.data_dir}/l4s/TrainData/img, glob: "image_*.h5"}
      masks: {folder: ${paths.data_dir}/l4s/TrainData/mask, replace: [image_, mask_]}
      format: auto                # by extension: png/jpg, tif/tiff, h5/hdf5, npy
      bands: {red: 4, green: 3, blue: 2, nir: 8, slope: 13, dem: 14}   # 1-based
      scale: {red: 0.0445, ...}   # one number for every colour band, or one per band key
      date: post                  # colour keys without a date are this date's
      pixel_size_m: 10            # for slope and hillshade from a dem band
      labels: {0: stable, 1: landslide}
      split: random               # or {train: <list>, test: <list>}

A band key is one of :data:`~landslide.bands.BANDS` (``post_red``), a colour (``red``,
``green``, ``blue``, ``nir``, taken at ``date``; ``pre_nir`` and ``post_nir`` name a date),
or ``dem``. NDVI is derived from a date's red and nir, slope and hillshade from ``dem``
(:mod:`landslide.features`). This module only reads and checks the block (no file is
opened, no torch import), so ``train.py`` refuses a bad block in a second;
:mod:`landslide.data.patches` reads the files.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeGuard

from landslide.bands import BANDS, POST_RGB
from landslide.errors import ConfigError
from landslide.layout import IGNORED, LANDSLIDE, STABLE

#: File formats by extension (lower case); ``image`` is read with Pillow.
FORMATS: dict[str, str] = {
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".npy": "npy",
}
FORMAT_NAMES: tuple[str, ...] = ("auto", "image", "tiff", "hdf5", "npy")
#: Mask classes a file value can be mapped to, and their values in our masks.
CLASSES: dict[str, int] = {"stable": STABLE, "landslide": LANDSLIDE, "ignored": IGNORED}
DATES: tuple[str, str] = ("pre", "post")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "nir")
#: Quantities a file band can hold: our bands, a date's near infrared, and elevation.
QUANTITIES: tuple[str, ...] = (*BANDS, "pre_nir", "post_nir", "dem")
#: The ESRI hillshade default sun (azimuth, altitude), for patches with no place or date.
DEFAULT_SUN: tuple[float, float] = (315.0, 45.0)

_KEYS = {"images", "masks", "format", "hdf5", "bands", "scale", "date", "pixel_size_m"}
_KEYS |= {"sun", "labels", "split"}


class PatchConfigError(ConfigError):
    """A ``patches:`` block that cannot work (one line naming the key and the fix)."""


@dataclass(frozen=True)
class PatchSource:
    """A checked ``patches:`` block.

    Attributes:
        domain: the domain's name, for messages.
        images: the folder holding the image files.
        image_glob: pattern of the image files under ``images`` (``*/image/*.png`` reaches
            into sub-folders).
        masks: the folder holding the mask files.
        mask_replace: ``(old, new)``: the text ``old`` in an image's path relative to
            ``images`` becomes ``new`` in its mask's path relative to ``masks`` (None: the
            same path). A list in the config, not a mapping: MLflow refuses parameter
            names such as ``replace./image/``.
        mask_suffix: the masks' extension when it differs from the images' (``.png``).
        missing_mask: ``error``, or ``stable`` when an image without a mask is all stable
            ground (Bijie's landslide-free images come without masks).
        format: ``auto`` (by extension) or one reader for every file.
        hdf5_image: the HDF5 dataset of an image file (None: the file's only dataset).
        hdf5_mask: the HDF5 dataset of a mask file (None: the file's only dataset).
        bands: quantity (see :data:`QUANTITIES`) -> 1-based band of the image files.
        scale: quantity -> factor its file values are multiplied by (reflectance in [0, 1],
            slope in degrees, elevation in metres).
        pixel_size_m: pixel size in metres (slope and hillshade from ``dem``).
        sun: ``(azimuth, altitude)`` in degrees lighting the hillshade.
        labels: mask file value -> our mask value (:data:`CLASSES`).
        train_list: image paths (relative to ``images``) the training part is drawn from,
            or None for a random split.
        test_list: image paths the test part is drawn from, or None for a random split.
    """

    domain: str
    images: Path
    image_glob: str
    masks: Path
    mask_replace: tuple[str, str] | None
    mask_suffix: str | None
    missing_mask: str
    format: str
    hdf5_image: str | None
    hdf5_mask: str | None
    bands: dict[str, int]
    scale: dict[str, float]
    pixel_size_m: float | None
    sun: tuple[float, float]
    labels: dict[int, int]
    train_list: tuple[str, ...] | None
    test_list: tuple[str, ...] | None

    @classmethod
    def from_config(cls, domain: str, block: Mapping[str, Any]) -> "PatchSource":
        """Check a domain's ``patches:`` block.

        Args:
            domain: the domain's name.
            block: the block (a plain mapping or an OmegaConf ``DictConfig``).

        Raises:
            PatchConfigError: naming the first bad key as ``data.domains.<domain>.patches.<key>``
                and the fix.
        """
        parse = _Parser(domain)
        block = parse.mapping(block, "")
        unknown = sorted(set(map(str, block)) - _KEYS)
        if unknown:
            parse.fail(unknown[0], "is not a key of a patches block", ", ".join(sorted(_KEYS)))
        images = parse.mapping(block.get("images"), "images")
        masks = parse.mapping(block.get("masks"), "masks")
        hdf5 = parse.mapping(block.get("hdf5") or {}, "hdf5")
        date = block.get("date", "post")
        if date not in DATES:
            parse.fail("date", f"must be pre or post, got {date!r}", "date: post")
        fmt = block.get("format", "auto")
        if fmt not in FORMAT_NAMES:
            parse.fail("format", f"must be one of {', '.join(FORMAT_NAMES)}, got {fmt!r}", "auto")
        bands = parse.bands(block.get("bands"), date)
        missing = str(masks.get("missing", "error"))
        if missing not in ("error", "stable"):
            parse.fail("masks.missing", f"must be error or stable, got {missing!r}", "error")
        suffix = masks.get("suffix")
        if suffix is not None and not str(suffix).startswith("."):
            parse.fail("masks.suffix", f"must start with a dot, got {suffix!r}", ".png")
        replace = masks.get("replace")
        if replace is not None and (
            isinstance(replace, str)
            or not isinstance(replace, Sequence)
            or len(replace) != 2
            or not all(isinstance(r, str) and r for r in replace)
        ):
            parse.fail("masks.replace", f"must be [old, new], got {replace!r}", "[image_, mask_]")
        train_list, test_list = parse.split(block.get("split", "random"))
        source = cls(
            domain=domain,
            images=Path(parse.text(images.get("folder"), "images.folder")),
            image_glob=parse.text(images.get("glob", "*"), "images.glob"),
            masks=Path(parse.text(masks.get("folder"), "masks.folder")),
            mask_replace=None if replace is None else (replace[0], replace[1]),
            mask_suffix=None if suffix is None else str(suffix),
            missing_mask=missing,
            format=str(fmt),
            hdf5_image=None if hdf5.get("image") is None else str(hdf5["image"]),
            hdf5_mask=None if hdf5.get("mask") is None else str(hdf5["mask"]),
            bands=bands,
            scale=parse.scale(block.get("scale", 1.0), bands, date),
            pixel_size_m=parse.pixel_size(block.get("pixel_size_m")),
            sun=parse.sun(block.get("sun")),
            labels=parse.labels(block.get("labels")),
            train_list=train_list,
            test_list=test_list,
        )
        if "dem" in bands and source.pixel_size_m is None:
            parse.fail(
                "pixel_size_m",
                "is needed to derive slope and hillshade from the dem band",
                "pixel_size_m: 10",
            )
        return source

    @property
    def provided(self) -> tuple[str, ...]:
        """The bands this domain can give, in :data:`~landslide.bands.BANDS` order."""
        have = set(self.bands)
        for date in DATES:
            if {f"{date}_red", f"{date}_nir"} <= have:
                have.add(f"{date}_ndvi")
        if "dem" in have:
            have |= {"slope", "hillshade"}
        return tuple(b for b in BANDS if b in have)

    def check_bands(self, bands: Sequence[str]) -> None:
        """Check that the domain gives every band of a band set.

        Raises:
            PatchConfigError: naming the domain, the first missing band and a band set it
                can give.
        """
        absent = [b for b in bands if b not in self.provided]
        if not absent:
            return
        hint = "bands=post_rgb" if set(POST_RGB) <= set(self.provided) else "a band set"
        raise PatchConfigError(
            f"domain '{self.domain}': cannot give band {absent[0]} (its patches give "
            f"{', '.join(self.provided) or 'none'}; patches.bands maps the file bands); use "
            f"{hint} or data.bands=[{','.join(b for b in bands if b in self.provided)}]"
        )

    def format_of(self, path: Path) -> str:
        """The reader of ``path``: ``format``, or by extension when it is ``auto``.

        Raises:
            PatchConfigError: if the extension has no reader.
        """
        if self.format != "auto":
            return self.format
        try:
            return FORMATS[path.suffix.lower()]
        except KeyError:
            raise PatchConfigError(
                f"domain '{self.domain}': {path} has no known patch format (extensions: "
                f"{', '.join(FORMATS)}); set patches.format"
            ) from None

    def mask_path(self, image: Path) -> Path:
        """Where the mask of ``image`` (a file under :attr:`images`) is expected."""
        name = image.relative_to(self.images).as_posix()
        if self.mask_replace is not None:
            name = name.replace(*self.mask_replace)
        path = self.masks / name
        return path if self.mask_suffix is None else path.with_suffix(self.mask_suffix)

    def fingerprint(self) -> str:
        """A digest of everything that decides the domain's samples and statistics."""
        return hashlib.sha256(json.dumps(asdict(self), default=str).encode()).hexdigest()


class _Parser:
    """Reads a ``patches:`` block's values, failing with the key a user would fix."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def fail(self, key: str, problem: str, example: str) -> NoReturn:
        raise PatchConfigError(
            f"data.domains.{self.domain}.patches.{key}: {problem}; e.g. {example} "
            f"(conf/domain/{self.domain}.yaml)"
        )

    def mapping(self, value: Any, key: str) -> dict:
        if not isinstance(value, Mapping):
            self.fail(key or "", f"must be a mapping, got {value!r}", _EXAMPLES.get(key, "{}"))
        return {k: value[k] for k in value}

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(key, f"must be a non-empty string, got {value!r}", _EXAMPLES[key])
        return value

    def bands(self, value: Any, date: str) -> dict[str, int]:
        bands: dict[str, int] = {}
        for key, band in self.mapping(value, "bands").items():
            quantity = f"{date}_{key}" if key in COLOURS else str(key)
            if quantity not in QUANTITIES:
                self.fail(
                    f"bands.{key}",
                    f"'{key}' is not a band (use red, green, blue, nir, dem or one of "
                    f"{', '.join(BANDS)})",
                    "bands: {post_red: 1, post_green: 2, post_blue: 3}",
                )
            if isinstance(band, bool) or not isinstance(band, int) or band < 1:
                self.fail(
                    f"bands.{key}",
                    f"must be a 1-based file band number, got {band!r}",
                    f"bands.{key}: 1",
                )
            if quantity in bands:
                self.fail(f"bands.{key}", f"maps {quantity} a second time", "one key per band")
            bands[quantity] = band
        if not bands:
            self.fail("bands", "maps no band", _EXAMPLES["bands"])
        return bands

    def scale(self, value: Any, bands: Mapping[str, int], date: str) -> dict[str, float]:
        if _is_number(value):
            if value <= 0:
                self.fail("scale", f"must be > 0, got {value}", "scale: 0.00392156862745098")
            # Reflectance only: NDVI is a ratio, slope and elevation have their own units.
            return {q: float(value) if _colour(q) else 1.0 for q in bands}
        scale = {q: 1.0 for q in bands}
        for key, factor in self.mapping(value, "scale").items():
            quantity = f"{date}_{key}" if key in COLOURS else str(key)
            if quantity not in bands:
                self.fail(f"scale.{key}", f"'{key}' is not a key of patches.bands", "same keys")
            if not _is_number(factor) or factor <= 0:
                self.fail(f"scale.{key}", f"must be a number > 0, got {factor!r}", "0.0001")
            scale[quantity] = float(factor)
        return scale

    def pixel_size(self, value: Any) -> float | None:
        if value is None:
            return None
        if not _is_number(value) or value <= 0:
            self.fail("pixel_size_m", f"must be a number > 0, got {value!r}", "pixel_size_m: 10")
        return float(value)

    def sun(self, value: Any) -> tuple[float, float]:
        if value is None:
            return DEFAULT_SUN
        sun = self.mapping(value, "sun")
        azimuth, altitude = sun.get("azimuth"), sun.get("altitude")
        if not (_is_number(azimuth) and _is_number(altitude) and 0 < altitude <= 90):
            self.fail("sun", f"must be {{azimuth, altitude}} in degrees, got {sun}", "{315, 45}")
        return float(azimuth), float(altitude)

    def labels(self, value: Any) -> dict[int, int]:
        labels: dict[int, int] = {}
        for key, name in self.mapping(value, "labels").items():
            text = str(key)
            if isinstance(key, bool) or not text.lstrip("-").isdigit():
                self.fail(f"labels.{key}", "must be an integer mask value", "labels.255: landslide")
            if name not in CLASSES:
                self.fail(
                    f"labels.{key}",
                    f"must be one of {', '.join(CLASSES)}, got {name!r}",
                    f"labels.{key}: landslide",
                )
            labels[int(text)] = CLASSES[name]
        if LANDSLIDE not in labels.values():
            self.fail("labels", "maps no value to landslide", _EXAMPLES["labels"])
        return labels

    def split(self, value: Any) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        if value == "random":
            return None, None
        if not isinstance(value, Mapping) or set(value) != {"train", "test"}:
            self.fail(
                "split",
                f"must be random or {{train: <list>, test: <list>}}, got {value!r}",
                "split: {train: train.txt, test: test.txt}",
            )
        return self.file_list(value["train"], "split.train"), self.file_list(
            value["test"], "split.test"
        )

    def file_list(self, value: Any, key: str) -> tuple[str, ...]:
        """Image paths relative to ``images.folder``: a text file of one per line, or a list."""
        if isinstance(value, str):
            path = Path(value)
            if not path.is_file():
                self.fail(key, f"{path} is not a file", "a text file of image names")
            names = [line.strip() for line in path.read_text().splitlines()]
            return tuple(n for n in names if n and not n.startswith("#"))
        if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.fail(key, f"must be a list file or a list of names, got {value!r}", "test.txt")


_EXAMPLES = {
    "": "patches: {images: {folder: ..., glob: '*.png'}, masks: {folder: ...}, ...}",
    "images": "images: {folder: ${paths.data_dir}/bijie, glob: '*/image/*.png'}",
    "images.folder": "images.folder: ${paths.data_dir}/bijie",
    "images.glob": "images.glob: '*.png'",
    "masks": "masks: {folder: ${paths.data_dir}/bijie/mask}",
    "masks.folder": "masks.folder: ${paths.data_dir}/bijie/mask",
    "hdf5": "hdf5: {image: img, mask: mask}",
    "bands": "bands: {post_red: 1, post_green: 2, post_blue: 3}",
    "scale": "scale: {red: 0.0001}",
    "sun": "sun: {azimuth: 315, altitude: 45}",
    "labels": "labels: {0: stable, 255: landslide}",
}


def _colour(quantity: str) -> bool:
    return quantity.partition("_")[2] in COLOURS


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
