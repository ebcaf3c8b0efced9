"""Compose the project's Hydra config outside a Hydra app (scripts, benchmarks, tests)."""

import os
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def register_resolvers() -> None:
    """Register the OmegaConf resolvers the configs use (idempotent).

    ``${minus:a,b}``: ``a - b``, e.g. the Jiuzhaigou count of a ratio mix.
    ``${len:x}``: the length of a list, e.g. the networks' input channels from the band set.
    ``${pid:}``: this process's id, e.g. to keep output folders of simultaneous runs apart
    (cached, so every use within one config agrees).
    """
    OmegaConf.register_new_resolver("minus", lambda a, b: a - b, replace=True)
    OmegaConf.register_new_resolver("len", len, replace=True)
    OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)


register_resolvers()


def in_multirun() -> bool:
    """Whether this is one job of a Hydra multirun."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def compose_config(
    overrides: Sequence[str] = (),
    root_dir: str | Path = ".",
    output_dir: str | Path | None = None,
    config_name: str = "train",
    config_dir: str | Path = CONF_DIR,
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as ``train.py`` would when started in ``root_dir``.

    Sets the Hydra runtime values the configs interpolate (``hydra:runtime.cwd`` and
    ``hydra:runtime.output_dir``), so the result resolves like a real run's config.

    Args:
        overrides: Hydra command-line overrides.
        root_dir: the folder a run would be started in (data, mlruns, outputs go there).
        output_dir: the run's output folder; defaults to ``<root_dir>/outputs/composed``.
        config_name: the primary config's name.
        config_dir: the folder holding it (``conf/mapping`` for ``map.py``).
    """
    root_dir = Path(root_dir).resolve()
    with initialize_config_dir(str(config_dir), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.cwd = str(root_dir)
        cfg.hydra.runtime.output_dir = str(output_dir or root_dir / "outputs" / "composed")
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
