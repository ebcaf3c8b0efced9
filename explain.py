"""Explain trained models: ``python explain.py model=<run name | run id | path> [domain=...]``.

Grad-CAM heatmaps, the SE modules' channel gates and each band's importance; see
``conf/explain/explain.yaml`` and the README's "Explaining a model".
"""

import hydra
from omegaconf import DictConfig

from landslide.errors import UserError
from landslide.explain.command import run_explain


@hydra.main(version_base="1.3", config_path="conf/explain", config_name="explain")
def main(cfg: DictConfig) -> None:
    try:
        run_explain(cfg)
    except UserError as err:
        raise SystemExit(f"explain.py: {err}") from None


if __name__ == "__main__":
    main()
