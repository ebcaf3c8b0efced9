"""landslide: an experiment framework for rapid co-seismic landslide mapping.

Reproduces and extends Yang et al., "A Generalized Deep Learning-Based Method for Rapid
Co-Seismic Landslide Mapping", IEEE JSTARS 2024.
"""

# Importing the package registers the config resolvers, for train.py and every script.
from landslide import config as _config  # noqa: E402, F401
