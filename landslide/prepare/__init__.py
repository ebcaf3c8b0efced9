"""Prepare a domain from real data: Sentinel-2 imagery, a DEM and a landslide inventory.

The paper's ArcGIS toolbox (Table II: batch clipping, band stacking, sample production,
dataset split) as one pipeline, run by ``python prepare.py``. See :func:`prepare_domain`.
"""

from landslide.prepare.errors import PrepareError
from landslide.prepare.pipeline import prepare, prepare_domain

__all__ = ["PrepareError", "prepare", "prepare_domain"]
