"""Registering a prepared domain: its config files, so train.py can use it by name.

A known domain gets ``domain/<name>.yaml`` (its record) and ``domain_mix/<name>.yaml`` (a mix
of all its training samples), an unknown one the first only, a scene neither. They are written
to ``conf/local/`` (:data:`~landslide.config.LOCAL_CONF_DIR`, git-ignored), which every entry
point searches, or to another config folder (``register_dir``).
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from landslide.files import write_atomic
from landslide.prepare.errors import PrepareError

log = logging.getLogger(__name__)

#: First line of every config file prepare.py writes; it only ever replaces such files.
MARKER = "# Written by prepare.py"

#: Config groups registering a domain, and the roles registered in each.
REGISTERED: dict[str, tuple[str, ...]] = {
    "domain": ("known", "unknown"),
    "domain_mix": ("known",),
}


@dataclass(frozen=True)
class Registration:
    """The config files of one preparation, checked before any input is read.

    Attributes:
        name: the domain's name.
        role: its role (``known``, ``unknown`` or ``scene``).
        files: the file to write in each group the role is registered in.
        stale: files an earlier preparation of ``name`` wrote for another role (e.g. before
            it was prepared as a scene), which would point training at missing files.
    """

    name: str
    role: str
    files: dict[str, Path]
    stale: list[Path]


def plan_registration(register_dir: Path, name: str, role: str) -> Registration:
    """The config files registering ``name`` with ``role`` in ``register_dir``.

    Raises:
        PrepareError: if a file to write exists and was not written by prepare.py.
    """
    files, stale = {}, []
    for group, roles in REGISTERED.items():
        path = register_dir / group / f"{name}.yaml"
        ours = not path.exists() or path.read_text().startswith(MARKER)
        if role in roles:
            if not ours:
                raise PrepareError(
                    f"{path}: exists and was not written by prepare.py; choose another name=..."
                )
            files[group] = path
        elif path.exists() and ours:
            stale.append(path)
    return Registration(name, role, files, stale)


def register_domain(
    registration: Registration, record: Mapping[str, Any], train_count: int
) -> None:
    """Write the domain's config files and remove its stale ones.

    Args:
        registration: the planned files.
        record: the domain's config (``domain.yaml``).
        train_count: training samples of the domain, the count of its own mix.
    """
    name = registration.name
    usage = f"#   python train.py data=prepared +domain@data.domains.{name}={name}"
    if "domain_mix" in registration.files:
        usage += f" domain_mix={name}"
    contents = {
        "domain": (f"the prepared domain {name}", record),
        "domain_mix": (
            f"every training sample of {name}",
            {"name": name, "counts": {name: train_count}},
        ),
    }
    for group, path in registration.files.items():
        what, body = contents[group]
        text = f"{MARKER}: {what}. Use it with\n{usage}\n" + OmegaConf.to_yaml(body)
        write_atomic(path, text)
    for path in registration.stale:
        path.unlink(missing_ok=True)
        log.warning(
            "%s: removed, since %s is now prepared with role %s", path, name, registration.role
        )
