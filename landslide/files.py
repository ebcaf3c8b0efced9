"""Writing files so that readers never see a half-written one (temporary name, rename)."""

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def safe_name(name: str) -> str:
    """``name`` as one file or folder name (other characters than ``[A-Za-z0-9-_.]`` -> ``_``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def replace_dir(tmp: Path, target: Path, *, concurrent: bool = False) -> None:
    """Put the complete folder ``tmp`` at ``target``, replacing an older one (renames).

    Args:
        tmp: the complete folder, beside ``target``.
        target: the folder to create or replace.
        concurrent: another process may write the same ``target`` at the same time; if
            its folder lands first, keep that one and delete ``tmp``.
    """
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
        target.rename(old)
    try:
        tmp.rename(target)
    except OSError:
        if not (concurrent and target.exists()):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(target: Path, *, concurrent: bool = False) -> Iterator[Path]:
    """A temporary folder to fill, put at ``target`` when the block completes.

    The folder (``.<name>.*.tmp``) lies beside ``target`` and replaces it by
    :func:`replace_dir`. On any error or interrupt inside the block it is deleted and
    ``target`` is left as it was.

    Args:
        target: the folder to create or replace.
        concurrent: as for :func:`replace_dir`.

    Yields:
        The temporary folder.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        replace_dir(tmp, target, concurrent=concurrent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
