"""Size and SHA-256 of a folder's files, to tell a complete cached output from a damaged one.

A cache that only checks that its files exist reuses a truncated or overwritten file on
every later run. Recording each file's size and checksum when it is written lets a reader
notice and rebuild: sizes first (free), then checksums (``hashlib.file_digest`` streams the
file: 0.03-0.12 s for the 42 MB stack of a 1024 px world domain, warm or cold cache).
"""

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: The hash recorded for every file.
ALGORITHM = "sha256"


def file_digest(path: Path) -> str:
    """The hex SHA-256 of ``path``, read in chunks."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, ALGORITHM).hexdigest()


def manifest(root: Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"size": bytes, "sha256": hex}}`` of the files ``names`` under ``root``."""
    root = Path(root)
    return {
        name: {"size": (root / name).stat().st_size, ALGORITHM: file_digest(root / name)}
        for name in names
    }


def mismatch(root: Path, recorded: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why the files under ``root`` differ from their :func:`manifest`, or None if they match.

    Every size is compared before any checksum is computed, so a missing or truncated file
    is found without reading the others.
    """
    root = Path(root)
    for name, entry in recorded.items():
        path = root / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != entry.get("size"):
            return f"{name} has {size} bytes, {entry.get('size')} when it was written"
    for name, entry in recorded.items():
        if file_digest(root / name) != entry.get(ALGORITHM):
            return f"{name} differs from its {ALGORITHM} checksum"
    return None
