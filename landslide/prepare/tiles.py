"""The files of a raster setting: one file, a folder, a glob pattern, or a list of them.

Scenes come in pieces: Sentinel-2 granules (possibly in two UTM zones), Earth Engine exports
split into ``name-0000000000-0000000000.tif`` parts, overlapping chips. Every raster setting
of ``prepare.py`` (``pre``/``post`` band files and GeoTIFF stacks, ``dem.path``, a label
raster's ``inventory.path``, a cloud raster) takes

* a file: ``dem.path=raw/srtm.tif``;
* a folder: every raster in it (:data:`RASTER_SUFFIXES`), sorted by name;
* a glob pattern: ``post.path='raw/post/*.tif'`` (``**`` descends into folders), the
  matching files sorted by name;
* a list of those: ``dem.path=[raw/n27e085.tif,raw/n28e085.tif]``, in list order.

The files are tiles of one input, mosaicked on the fly onto the target grid by
:func:`~landslide.prepare.grid.warp`; where they overlap, the first file wins.
"""

import glob
from collections.abc import Sequence
from pathlib import Path

from landslide.prepare.errors import PrepareError

#: File name endings (any case) of the rasters a folder gives.
RASTER_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".jp2", ".vrt")

#: Characters that make a path a glob pattern.
_GLOB_CHARS = frozenset("*?[")


def find_rasters(
    given: str | Path | Sequence[str | Path], setting: str, root: Path | None = None
) -> tuple[Path, ...]:
    """The files a raster setting names, in mosaic order.

    Args:
        given: a file, a folder, a glob pattern, or a list of them.
        setting: the config key, for messages (``post.files.red``).
        root: folder that relative paths and patterns are taken from.

    Returns:
        The files, each once. A plain path is returned as given, whether it exists or not
        (opening it names a missing file).

    Raises:
        PrepareError: for an empty list, a folder without rasters, or a pattern matching
            no file.
    """
    items = [given] if isinstance(given, (str, Path)) else list(given)
    if not items:
        raise PrepareError(f"{setting}: an empty list; give a file, a folder or a glob pattern")
    found: list[Path] = []
    for item in items:
        path = (root or Path()) / str(item)
        if _GLOB_CHARS & set(str(path)):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            matches = [p for p in matches if p.is_file()]
            if not matches:
                raise PrepareError(
                    f"{setting}: no file matches {path}; fix the pattern or the folder in {setting}"
                )
        elif path.is_dir():
            matches = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES
            )
            if not matches:
                raise PrepareError(
                    f"{setting}: the folder {path} holds no raster "
                    f"({', '.join(RASTER_SUFFIXES)}); give the tiles' folder, a glob pattern "
                    "or the files"
                )
        else:
            matches = [path]
        found += [p for p in matches if p not in found]
    return tuple(found)
