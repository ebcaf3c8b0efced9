"""Map landslides in a scene with a trained model: ``python map.py scene=... model=...``.

See ``conf/mapping/map.yaml`` and the README's "Mapping a new scene".
"""

import hydra
from omegaconf import DictConfig

from landslide.mapping.command import run_map
from landslide.mapping.errors import MappingError


@hydra.main(version_base="1.3", config_path="conf/mapping", config_name="map")
def main(cfg: DictConfig) -> None:
    try:
        run_map(cfg)
    except MappingError as err:
        raise SystemExit(f"map.py: {err}") from None


if __name__ == "__main__":
    main()
