"""Prepare a domain from real data: ``python prepare.py name=... [overrides]``.

See ``conf/prepare.yaml`` and the README's "Preparing real data".
"""

import hydra
from omegaconf import DictConfig

from landslide.prepare import PrepareError, prepare


@hydra.main(version_base="1.3", config_path="conf", config_name="prepare")
def main(cfg: DictConfig) -> None:
    try:
        prepare(cfg)
    except PrepareError as err:
        raise SystemExit(f"prepare.py: {err}") from None


if __name__ == "__main__":
    main()
