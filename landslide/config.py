"""The Hydra config: its folders, resolvers, composition outside an app, instantiation.

Composition outside a Hydra app serves scripts, benchmarks and tests; instantiation turns a
constructor's error into the project's one-line error.
"""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

#: The project's config folder.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
#: Configs of this checkout only, git-ignored: the domains ``prepare.py`` registers. Every
#: primary config adds it to Hydra's search path (``hydra.searchpath``), so its groups
#: (``domain/``, ``domain_mix/``) are found as if they were in ``conf/``.
LOCAL_CONF_DIR = CONF_DIR / "local"


def register_resolvers() -> None:
    """Register the OmegaConf resolvers the configs use (idempotent).

    ``${minus:a,b}``: ``a - b``, e.g. the Jiuzhaigou count of a ratio mix.
    ``${len:x}``: the length of a list, e.g. the networks' input channels from the band set.
    ``${pid:}``: this process's id, e.g. to keep output folders of simultaneous runs apart
    (cached, so every use within one config agrees).
    ``${local_conf_dir:}``: the absolute path of :data:`LOCAL_CONF_DIR`, for the primary
    configs' ``hydra.searchpath`` (a relative ``file://`` path would be taken from the
    current folder).
    ``${slurm_gpus:accelerator,devices}``: the GPUs a SLURM job asks for per node: the
    trainer's devices unless it trains on the CPU (None).
    """
    OmegaConf.register_new_resolver("minus", lambda a, b: a - b, replace=True)
    OmegaConf.register_new_resolver("len", len, replace=True)
    OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("local_conf_dir", lambda: str(LOCAL_CONF_DIR), replace=True)
    OmegaConf.register_new_resolver("slurm_gpus", _slurm_gpus, replace=True)


def _slurm_gpus(accelerator: str, devices: Any) -> Any:
    return None if str(accelerator).lower() == "cpu" else devices


register_resolvers()


def in_multirun() -> bool:
    """Whether this is one job of a Hydra multirun."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextmanager
def hydra_config_of(config: DictConfig) -> Iterator[None]:
    """Within the block, ``${hydra:...}`` resolves against ``config``'s ``hydra`` node.

    A Hydra callback's ``on_multirun_start`` gets the sweep's config before Hydra sets it
    as the current one; resolving its paths needs it set, and the previous one back after.
    """
    previous = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(config)
    try:
        yield
    finally:
        HydraConfig.instance().cfg = previous


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


def instantiate_config(spec: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, with a constructor's own error raised as it is.

    Hydra wraps any error raised while building an object in an ``InstantiationException``
    whose message adds the target and the full chain. When its cause is a ``ValueError``
    (every :class:`~landslide.errors.UserError` is one) or a ``FileNotFoundError``, the
    cause is the one-line message the user should see: it is raised instead, without the
    wrapper. Any other failure (an unknown target, a wrong argument name) stays Hydra's.

    Args:
        spec: a config node with ``_target_``.
        **kwargs: arguments added to or overriding the node's.

    Returns:
        The instantiated object.

    Raises:
        ValueError, FileNotFoundError: raised by the target's constructor, unwrapped.
        InstantiationException: for any other failure.
    """
    try:
        return instantiate(spec, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | FileNotFoundError):
            raise err.__cause__ from None
        raise
