"""Train and test a landslide segmentation model: ``python train.py [-m] [overrides]``."""

import hydra
from omegaconf import DictConfig

from landslide.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric", "val/loss"), float("nan"))


if __name__ == "__main__":
    main()
