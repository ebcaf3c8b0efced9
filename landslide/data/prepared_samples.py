"""Training reads the sample settings ``prepare.py`` used, unless the config gives its own.

``prepare.py`` draws a domain's sample pool with its ``samples.*`` settings and saves them in
the domain's sample index (``samples.json``). ``conf/data/prepared.yaml`` leaves the same
settings null (``data.patch_size``, ``data.pool_size``, ...), meaning *as prepared*: they are
filled in here from the prepared domains' indexes before the config is checked, so the
DataModule draws exactly the saved pools and MLflow records the values really used. A value
given on the command line wins; the DataModule then draws a new pool from the mask.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from landslide.data.sampling import PAPER_SAMPLES, base_seed, read_saved_spec
from landslide.errors import ConfigError
from landslide.layout import DomainFiles

#: The data settings that may be left to the prepared domains, in PoolSpec's names.
SAMPLE_KNOBS: tuple[str, ...] = tuple(PAPER_SAMPLES)


def prepared_sample_settings(
    root: Path, domains: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The sample settings the prepared domains agree on, and those they disagree on.

    Args:
        root: the prepared data folder.
        domains: domain configs by name; only ``known`` domains' training pools depend on
            the pool size and test share, so unknown domains vote on the other settings only.

    Returns:
        ``(agreed, disagreed)``: setting -> value, and setting -> {domain: value}.
    """
    votes: dict[str, dict[str, Any]] = {knob: {} for knob in SAMPLE_KNOBS}
    for name, domain in domains.items():
        spec = read_saved_spec(DomainFiles(Path(root) / name).samples)
        if spec is None:
            continue
        spec = {**spec, "seed": base_seed(spec["seed"], name)}  # the samples.seed given
        known = (domain or {}).get("role", "known") == "known"
        for knob in SAMPLE_KNOBS:
            if spec.get(knob) is None or (not known and knob in ("pool_size", "test_fraction")):
                continue
            votes[knob][name] = spec[knob]
    agreed, disagreed = {}, {}
    for knob, by_domain in votes.items():
        if len(set(by_domain.values())) == 1:
            agreed[knob] = next(iter(by_domain.values()))
        elif by_domain:
            disagreed[knob] = by_domain
    return agreed, disagreed


def resolve_sample_settings(
    root: Path, domains: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """``given`` sample settings with each None replaced by the prepared domains' value.

    A None setting takes the value the prepared domains agree on, or the paper's where no
    domain has a sample index.

    Raises:
        ConfigError: if the prepared domains disagree on a setting left None.
    """
    unset = [knob for knob, value in given.items() if value is None]
    if not unset:
        return dict(given)
    agreed, disagreed = prepared_sample_settings(Path(root), domains)
    clashes = [knob for knob in unset if knob in disagreed]
    if clashes:
        knob = clashes[0]
        values = ", ".join(f"{name} {value}" for name, value in disagreed[knob].items())
        raise ConfigError(
            f"data.{knob}: the prepared domains were sampled with different values ({values}); "
            f"set data.{knob}=<value> for this run (their pools are then drawn again), or "
            f"prepare them alike (samples.{knob}=...)"
        )
    return {k: agreed.get(k, PAPER_SAMPLES[k]) if v is None else v for k, v in given.items()}


def fill_sample_settings(cfg: DictConfig) -> None:
    """Fill the null ``data`` sample settings in place (see :func:`resolve_sample_settings`).

    So the checks and MLflow see the values used; a no-op when none is null.

    Raises:
        ConfigError: if the prepared domains disagree on a null setting.
    """
    data = cfg.get("data")
    if data is None:
        return
    knobs = [k for k in SAMPLE_KNOBS if k in data and not OmegaConf.is_missing(data, k)]
    if all(data[k] is not None for k in knobs):
        return
    root = OmegaConf.select(cfg, "data.root", default=None, throw_on_resolution_failure=False)
    tree = OmegaConf.to_container(data.get("domains") or {}, resolve=False)
    if not isinstance(tree, dict):
        return  # not a mapping of domains: the config check reports data.domains
    # A name that is not a string has no prepared folder; the config check reports it.
    domains = {name: domain for name, domain in tree.items() if isinstance(name, str)}
    settings = resolve_sample_settings(
        Path(str(root)) if root is not None else Path("."), domains, {k: data[k] for k in knobs}
    )
    with open_dict(data):
        for knob, value in settings.items():
            data[knob] = value
