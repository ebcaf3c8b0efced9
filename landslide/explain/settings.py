"""The knobs of ``explain.py``, read from its config and checked."""

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from landslide.explain.errors import ExplainError


@dataclass(frozen=True)
class Settings:
    """The measurement's knobs (``conf/explain/explain.yaml``).

    Attributes:
        patches: test patches per domain for the gates and the ablation (None: all).
        seed: draws the patches.
        batch_size: patches per forward pass.
        cam_patches: landslide patches per domain in the Grad-CAM panel.
        cam_indices: or these indexes of each domain's test set.
        ig_patches: landslide patches per domain for integrated gradients.
        ig_steps: points of the path integral.
    """

    patches: int | None
    seed: int
    batch_size: int
    cam_patches: int
    cam_indices: tuple[int, ...] | None
    ig_patches: int
    ig_steps: int


def settings_from_config(cfg: DictConfig) -> Settings:
    """The knobs of a composed ``conf/explain/explain.yaml``, checked.

    Raises:
        ExplainError: naming the key of a bad value.
    """

    def count(key: str, optional: bool = False, least: int = 1) -> Any:
        value = OmegaConf.select(cfg, key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            hint = "" if not optional else " or null"
            raise ExplainError(f"{key}={value!r}: give an integer >= {least}{hint}")
        return value

    indices = OmegaConf.select(cfg, "gradcam.indices")
    if indices is not None:
        items = list(indices) if isinstance(indices, ListConfig) else [indices]
        if not items or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in items):
            raise ExplainError(
                f"gradcam.indices={indices}: give test-set indexes >= 0, e.g. "
                "gradcam.indices=[0,5,9], or null"
            )
        indices = tuple(items)
    return Settings(
        patches=count("patches", optional=True, least=2),
        seed=count("seed", least=0),
        batch_size=count("batch_size"),
        cam_patches=count("gradcam.patches"),
        cam_indices=indices,
        ig_patches=count("attribution.patches", least=0),
        ig_steps=count("attribution.steps", least=2),
    )
