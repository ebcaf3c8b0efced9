"""The cache of generated domains: each folder's record, and whether it is still up to date.

A generated domain folder holds ``world.json``: what its files were generated from (see
:func:`~landslide.world.generator.world_record`) and the size and SHA-256 of each file
(:mod:`landslide.checksums`). A folder is reused only when its record equals the current
one and every file still matches its checksum (hashing costs about 0.1 s per 1024 px
domain); a truncated or overwritten file makes it stale.
"""

import json
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from landslide import checksums
from landslide.layout import DomainFiles

#: Name of the parameter record in each generated domain folder.
RECORD_NAME = "world.json"
#: Key of the record's file manifest (size and SHA-256 of each file, see ``checksums``).
FILES_KEY = "files"


def checked_files(files: DomainFiles) -> list[str]:
    """The names of the files a domain's record checksums."""
    return [p.name for p in (files.stack, files.mask, files.inventory, files.stats)]


def write_record(files: DomainFiles, record: Mapping[str, Any]) -> None:
    """Write ``record`` with the checksums of the domain's files as its ``world.json``.

    Args:
        files: the complete domain folder (not yet in place).
        record: what the files were generated from.
    """
    stored = dict(record)
    stored[FILES_KEY] = checksums.manifest(files.root, checked_files(files))
    (files.root / RECORD_NAME).write_text(json.dumps(stored, indent=2))


def stale(files: DomainFiles, record: Mapping[str, Any]) -> tuple[int, str] | None:
    """Why a cached domain cannot be reused, or None if it can.

    Args:
        files: the cached domain folder.
        record: what its files must have been generated from.

    Returns:
        A log level (how unexpected the reason is) and the reason, or None.
    """
    try:
        stored = json.loads((files.root / RECORD_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return logging.DEBUG, "has no readable record"
    recorded = stored.pop(FILES_KEY, None) if isinstance(stored, dict) else None
    if stored != record:
        return logging.DEBUG, "was made with other parameters"
    if not isinstance(recorded, dict) or set(recorded) != set(checked_files(files)):
        return logging.INFO, "has no checksums (cached by an older version)"
    problem = checksums.mismatch(files.root, recorded)
    if problem is not None:
        return logging.WARNING, f"is damaged ({problem})"
    return None


def remove_stale_temporaries(root: Path, age_s: float = 3600.0) -> None:
    """Delete the folders left under ``root`` by interrupted generations and replacements.

    Args:
        root: the world folder.
        age_s: a temporary folder (``.*.tmp``) older than this is an interrupted generation's
            (a younger one may be another process's, still writing); a replaced folder
            (``.*.old``) goes whatever its age.
    """
    now = time.time()
    for path in root.glob(".*.tmp"):
        if path.is_dir() and now - path.stat().st_mtime > age_s:
            shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(".*.old"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
