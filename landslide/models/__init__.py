"""Segmentation networks: ResU-Net, the paper's ResU-SENet and the Table X comparisons."""

from landslide.models.cgnet import CGNet
from landslide.models.lanet import LANet
from landslide.models.macunet import MACUNet
from landslide.models.resu_senet import ResUSENet
from landslide.models.resunet import ResUNet

__all__ = ["CGNet", "LANet", "MACUNet", "ResUNet", "ResUSENet"]
