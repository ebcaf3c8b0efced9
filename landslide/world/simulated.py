"""The embedded default world as a data source the DataModule is given, not one it imports.

``conf/data/default_world.yaml`` configures it (``data.world: {_target_, size, seed}``);
Hydra builds it and hands it to :class:`~landslide.data.datamodule.LandslideDataModule`,
which calls it in ``prepare_data`` and logs its :meth:`~SimulatedWorld.provenance`. The data
layer thereby never depends on the simulation.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from landslide.world.generator import GENERATOR_VERSION, ensure_world


class SimulatedWorld:
    """Generate the simulated study areas under a root folder on first use (cached).

    Args:
        size: grid side in pixels (10 m each) of every domain.
        seed: the world seed; each domain derives its own from it and its name.
    """

    def __init__(self, size: int = 1024, seed: int = 0) -> None:
        self.size = int(size)
        self.seed = int(seed)

    def __call__(self, root: Path, domains: Mapping[str, Mapping[str, Any]]) -> None:
        """Write every domain of ``domains`` (configs with a ``world:`` block) under ``root``.

        Domains already up to date are reused.
        """
        worlds = {name: cfg.get("world") for name, cfg in domains.items()}
        ensure_world(Path(root), domains, worlds, size=self.size, seed=self.seed)

    def provenance(self) -> dict[str, str]:
        """What makes the generated files what they are, beside the logged config.

        Runs on different generator versions must never be compared or averaged.
        """
        return {"data.world.generator_version": str(GENERATOR_VERSION)}
