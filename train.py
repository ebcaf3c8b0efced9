"""Train and test a landslide segmentation model: ``python train.py [-m] [overrides]``."""

import hydra
from omegaconf import DictConfig

from landslide.config import in_multirun
from landslide.distributed import started_by_lightning
from landslide.errors import UserError
from landslide.schema import validate_train_config


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        # Checked before the training stack is imported (Lightning alone takes ~20 s), so a
        # bad value is refused in about a second.
        validate_train_config(cfg)
        from landslide.training import train

        metrics = train(cfg)
    except UserError as err:
        if in_multirun():
            raise  # Hydra runs the sweep's other jobs, then reports this one
        raise SystemExit(f"train.py: {err}") from None
    return metrics[cfg.optimized_metric]  # a name the run records: checked with the config


if __name__ == "__main__":
    if started_by_lightning():
        # A DDP rank Lightning started: it trains with the owner's resolved config, not a
        # config Hydra would compose again (see landslide.distributed).
        from landslide.training import follow_handoff

        follow_handoff()
    else:
        main()
