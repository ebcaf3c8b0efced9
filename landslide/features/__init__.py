"""Features derived from a DEM and from multispectral reflectance: slope, hillshade, NDVI."""

from landslide.features.spectral import ndvi
from landslide.features.terrain import hillshade, horn_gradient, slope_degrees, sun_position

__all__ = ["hillshade", "horn_gradient", "ndvi", "slope_degrees", "sun_position"]
