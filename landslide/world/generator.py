"""The embedded default world: seeded synthetic study areas, so the project runs offline.

:func:`generate_domain` simulates one study area (:class:`~landslide.world.scene.Scene`)
and writes it in the same layout as a domain prepared from real imagery
(:class:`~landslide.layout.DomainFiles`): ``stack.tif`` (10 bands,
:data:`~landslide.bands.BANDS`), ``mask.tif``, ``inventory.gpkg`` (one polygon per
landslide), ``stats.json`` and ``world.json`` (:mod:`~landslide.world.cache`). A domain is
written into a temporary folder and renamed into place when complete.
:func:`ensure_world` generates every domain that its cached folder does not match.
"""

import json
import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from landslide.band_stats import compute_band_stats
from landslide.bands import BANDS
from landslide.files import staged_dir
from landslide.layout import DomainFiles
from landslide.world import cache
from landslide.world.params import RES, WorldParams
from landslide.world.scene import Scene

logger = logging.getLogger(__name__)

#: Bump when the generator's output changes for the same parameters: cached worlds regenerate.
GENERATOR_VERSION = 4
# Domain config keys the generator reads (``role`` is not one: it does not change the data).
_DOMAIN_KEYS = ("name", "crs", "epicentre", "pre_date", "post_date")
# GDAL's block cache while writing and reading a domain (MB): keeps memory bounded.
_GDAL_CACHE_MB = 64


def simulation_seed(seed: int, name: str) -> int:
    """The seed of one simulated domain, derived from the world seed and its name.

    The sample pools have their own, :func:`landslide.data.sampling.domain_seed`.

    Uses :class:`numpy.random.SeedSequence` over ``(seed, crc32(name))``; Python's ``hash()``
    is randomised per process and would not do.

    Args:
        seed: the world seed (>= 0).
        name: the domain name.

    Returns:
        A 63-bit non-negative integer.
    """
    state = np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def world_record(domain: Mapping[str, Any], world: Mapping[str, Any], size: int, seed: int) -> dict:
    """The parameters a generated domain depends on, as stored in its ``world.json``.

    Args:
        domain: the domain config (name, crs, epicentre, dates; ``role`` is not part of it).
        world: the domain's generator parameters, as configured.
        size: grid side in pixels.
        seed: the domain's seed (see :func:`simulation_seed`).

    Returns:
        A JSON-compatible dict; two calls agree exactly when the output would be identical.
    """
    record = {
        "generator_version": GENERATOR_VERSION,
        "size": int(size),
        "seed": int(seed),
        "res": RES,
        "domain": {k: _plain(domain[k]) for k in _DOMAIN_KEYS},
        "world": _plain(world),
    }
    return json.loads(json.dumps(record))


def generate_domain(
    domain: Mapping[str, Any], world: Mapping[str, Any], out_dir: Path, size: int, seed: int
) -> DomainFiles:
    """Simulate one study area and write it as a prepared domain.

    Args:
        domain: the domain config: ``name``, ``crs`` (a UTM CRS in metres), ``epicentre``
            (``lat``, ``lon``), ``pre_date`` and ``post_date`` (ISO dates).
        world: the domain's generator parameters (see :class:`WorldParams`).
        out_dir: the domain folder to create or replace.
        size: grid side in pixels (10 m each); ``WorldParams.full_size_px()`` gives the
            study area's full extent.
        seed: the domain's seed; the same seed gives byte-identical files.

    Returns:
        The domain's files (stack, mask, inventory, stats, and ``world.json``).

    Raises:
        ValueError: if the parameters are invalid.
    """
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    params = WorldParams.from_mapping(world, domain=str(domain["name"]))
    out_dir = Path(out_dir)
    start = time.perf_counter()
    # Another process generating the same domain may finish first: its folder is kept.
    with staged_dir(out_dir, concurrent=True) as tmp:
        files = DomainFiles(tmp)
        with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB):  # GDAL's default is 5% of the RAM
            share = Scene(domain, params, size, seed).write(files)
            compute_band_stats(files.stack, BANDS).save(files.stats)
        cache.write_record(files, world_record(domain, world, size, seed))
    logger.info(
        "world: generated domain %s (%d px, landslide share %.4f) in %.1f s",
        domain["name"],
        size,
        share,
        time.perf_counter() - start,
    )
    return DomainFiles(out_dir)


def ensure_world(
    root: Path,
    domains: Mapping[str, Mapping[str, Any]],
    worlds: Mapping[str, Mapping[str, Any] | None],
    size: int,
    seed: int,
) -> dict[str, DomainFiles]:
    """Generate the default world under ``root``, reusing every domain that is up to date.

    A domain is regenerated when its folder lacks a file, its ``world.json`` differs from
    the current parameters, size, seed or :data:`GENERATOR_VERSION`, or a file differs in
    size or SHA-256 from the record (see :func:`landslide.world.cache.stale`). A domain
    cached before checksums were recorded is regenerated once (the same seed gives
    byte-identical files).

    Args:
        root: folder holding one sub-folder per domain.
        domains: domain configs by name (``conf/domain/*.yaml``).
        worlds: generator parameters by domain name (the configs' ``world`` blocks; None
            or absent where a config has none).
        size: grid side in pixels.
        seed: world seed; each domain derives its own with :func:`simulation_seed`.

    Returns:
        The files of every domain, by name.

    Raises:
        ValueError: if a domain has no generator parameters.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cache.remove_stale_temporaries(root)
    out: dict[str, DomainFiles] = {}
    for name, domain in domains.items():
        world = worlds.get(name)
        if world is None:
            raise ValueError(
                f"domain '{name}' has no world parameters; add a 'world:' block to "
                f"conf/domain/{name}.yaml"
            )
        files = DomainFiles(root / name)
        dseed = simulation_seed(seed, name)
        why = cache.stale(files, world_record(domain, world, size, dseed))
        if why is None:
            logger.debug("world: reusing domain %s", name)
        else:
            logger.log(why[0], "world: domain %s %s; generating it again", name, why[1])
            generate_domain(domain, world, files.root, size, dseed)
        out[name] = files
    return out


def _plain(value: Any) -> Any:
    """Mappings and sequences (OmegaConf containers included) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value
