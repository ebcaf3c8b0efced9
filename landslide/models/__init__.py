"""Segmentation networks: ResU-Net, the paper's ResU-SENet and the Table X comparisons.

Every network subclasses :class:`~landslide.models.base.AnySizeSegmenter`. The names below
are shortcuts: a config may name a network by its module path
(``landslide.models.<module>.<Class>``), so a new network needs no entry here.
"""

from landslide.models.cgnet import CGNet
from landslide.models.lanet import LANet
from landslide.models.macunet import MACUNet
from landslide.models.resu_senet import ResUSENet
from landslide.models.resunet import ResUNet

__all__ = ["CGNet", "LANet", "MACUNet", "ResUNet", "ResUSENet"]
