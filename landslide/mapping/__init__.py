"""Scene-scale landslide mapping: a trained model and a scene to a landslide map.

:func:`map_scene` is the core that ``map.py``, the tests and the benchmarks share.
"""

from landslide.mapping.errors import MappingError
from landslide.mapping.model import TrainedModel, load_model
from landslide.mapping.pipeline import MapResult, MapSettings, map_scene
from landslide.mapping.scene import Scene, open_scene

__all__ = [
    "MapResult",
    "MapSettings",
    "MappingError",
    "Scene",
    "TrainedModel",
    "load_model",
    "map_scene",
    "open_scene",
]
