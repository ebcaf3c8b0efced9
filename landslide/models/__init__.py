"""Segmentation networks: ResU-Net and the paper's ResU-SENet."""

from landslide.models.resu_senet import ResUSENet
from landslide.models.resunet import ResUNet

__all__ = ["ResUNet", "ResUSENet"]
