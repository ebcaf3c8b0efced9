"""Surface reflectance of one tile at one date: ground, changes, light, atmosphere, sensor.

Per date (blue, green, red, NIR; surface reflectance in [0, 1]):

1. the land-cover spectra, vegetation dried towards fallow soil by the date's ``greenness``
   (seasonal greening or browning), cropland parcels bare or cropped per date (harvests and
   new bare fields), river bars of bare sediment (some vegetated before and scoured by the
   date of the post image), ground texture shared by both dates;
2. roads as thin bright lines (mixed pixels; some built between the dates), old landslide
   scars partly revegetated in both images, new building sites and the co-seismic
   landslides (soil or bedrock, partly or fully stripped, mixed pixels at their edges) and
   the forest clearings (slash and disturbed soil) in the post image;
3. topographic illumination with the date's sun (C-correction form), the date's per-band
   gain and offset (season, atmosphere), cloud shadow and thin cloud where configured, and
   sensor noise.
"""

from dataclasses import dataclass

import numpy as np

from landslide.world.cover import Parcels
from landslide.world.objects import Footprint
from landslide.world.params import LAND_COVERS, DateParams, WorldParams

# How strongly each vegetation class dries towards fallow soil when greenness drops.
_GREENNESS_WEIGHT = {"forest": 0.5, "grass": 1.0, "cropland": 1.0}
# Texture amplitude of each class relative to the world's ``texture``.
_TEXTURE_WEIGHT = {
    "forest": 1.0,
    "grass": 0.8,
    "cropland": 0.6,
    "bare_rock": 1.2,
    "water": 0.3,
    "built": 2.0,
    "river_bar": 1.0,
}
# C-correction constant of topographic illumination: (cos i + C) / (cos z + C).
_ILLUMINATION_C = 0.4
# Thin cloud top-of-canopy reflectance (blue, green, red, NIR): bright and nearly white.
_CLOUD = np.array([0.30, 0.30, 0.31, 0.33], np.float32)
# Share of each band's direct light a full cloud shadow removes (diffuse blue sky remains).
_SHADOW = np.array([0.55, 0.65, 0.70, 0.70], np.float32)


@dataclass(frozen=True)
class TileGround:
    """Everything on the ground of one tile that the two images see.

    Attributes:
        cover: land-cover class per pixel.
        parcel_ids: cropland parcel per pixel.
        texture: ground texture noise, shared by both dates.
        soil_texture: texture of exposed soil and rock.
        fresh_bars: river-bar pixels that were vegetated before the event.
        roads: per date, the road share of each pixel.
        scars: old landslide scars (both dates).
        sites: new building sites (post image).
        clearings: forest clear-cut between the images (post image).
        landslides: the co-seismic landslides (post image).
    """

    cover: np.ndarray
    parcel_ids: np.ndarray
    texture: np.ndarray
    soil_texture: np.ndarray
    fresh_bars: np.ndarray
    roads: dict[str, np.ndarray]
    scars: Footprint
    sites: Footprint
    clearings: Footprint
    landslides: Footprint


@dataclass(frozen=True)
class Sky:
    """Light and atmosphere of one tile at one date.

    Attributes:
        shade: hillshade under the date's sun (0-255).
        sun_altitude_deg: the sun's altitude.
        cloud: thin cloud opacity per pixel.
        shadow: cloud shadow strength per pixel.
    """

    shade: np.ndarray
    sun_altitude_deg: float
    cloud: np.ndarray
    shadow: np.ndarray


def render(
    p: WorldParams,
    date: str,
    ground: TileGround,
    parcels: Parcels,
    sky: Sky,
    noise: np.ndarray,
) -> np.ndarray:
    """Reflectance ``[4, H, W]`` (blue, green, red, NIR) of one tile at ``pre`` or ``post``.

    ``noise`` is unit white noise ``[4, H, W]``, scaled by the sensor noise.
    """
    conditions: DateParams = getattr(p, date)
    refl = _ground(p, date, ground, parcels)
    _mix(refl, ground.roads[date], np.array(p.reflectance["road"], np.float32))
    _expose(p, refl, ground.scars, ground.soil_texture)
    if date == "post":
        _mix(refl, ground.sites.share, np.array(p.reflectance["construction"], np.float32))
        slash = np.maximum(1.0 + 1.2 * p.texture * ground.soil_texture, 0.2)
        _mix(refl, ground.clearings.share, np.array(p.reflectance["clearing"], np.float32), slash)
        _expose(p, refl, ground.landslides, ground.soil_texture)
    _illuminate(refl, sky.shade, sky.sun_altitude_deg)
    refl *= np.array(conditions.gain, np.float32)[:, None, None]
    refl += np.array(conditions.offset, np.float32)[:, None, None]
    refl *= 1.0 - _SHADOW[:, None, None] * sky.shadow[None]
    _mix(refl, sky.cloud, _CLOUD)
    refl += noise * np.float32(p.sensor_noise)
    return np.clip(refl, 0.0, 1.0, out=refl)


def _ground(p: WorldParams, date: str, ground: TileGround, parcels: Parcels) -> np.ndarray:
    """Land-cover reflectance with seasonal drying, parcels, river bars and texture."""
    conditions: DateParams = getattr(p, date)
    fallow = np.array(p.reflectance["fallow"], np.float32)
    table = np.empty((len(LAND_COVERS), 4), np.float32)
    for i, name in enumerate(LAND_COVERS):
        dry = _GREENNESS_WEIGHT.get(name, 0.0) * (1.0 - conditions.greenness)
        table[i] = (1.0 - dry) * np.array(p.reflectance[name], np.float32) + dry * fallow
    cover = ground.cover
    tex_weight = np.array([_TEXTURE_WEIGHT[c] for c in LAND_COVERS], np.float32)[cover]
    factor = np.maximum(1.0 + p.texture * tex_weight * ground.texture, 0.2)
    refl = table.T[:, cover] * factor[None]

    crop = cover == LAND_COVERS.index("cropland")
    ids = ground.parcel_ids[crop]
    brightness = parcels.brightness[ids] * factor[crop]
    bare = parcels.bare[date][ids]
    for b in range(4):
        values = table[LAND_COVERS.index("cropland"), b] * brightness
        if b == 3:
            values *= parcels.vigour[ids]
        values[bare] = fallow[b] * brightness[bare]
        refl[b][crop] = values
    if date == "pre":
        vegetated = ground.fresh_bars & (cover == LAND_COVERS.index("river_bar"))
        refl[:, vegetated] = table[LAND_COVERS.index("grass")][:, None] * factor[vegetated]
    return refl


def _mix(
    refl: np.ndarray, share: np.ndarray, spectrum: np.ndarray, factor: np.ndarray | None = None
) -> None:
    """Linear mixture, in place: ``(1 - share) refl + share spectrum``.

    The spectrum is multiplied by ``factor``, a per-pixel texture of the mixed-in surface,
    where given.
    """
    hit = share > 0
    if hit.any():
        s = share[hit]
        colour = spectrum[:, None] if factor is None else spectrum[:, None] * factor[hit]
        refl[:, hit] = (1.0 - s) * refl[:, hit] + s * colour


def _expose(p: WorldParams, refl: np.ndarray, footprint: Footprint, texture: np.ndarray) -> None:
    """Mix exposed soil or bedrock into the reflectance where objects strip the ground."""
    hit = footprint.share > 0
    if not hit.any():
        return
    soil = np.array(p.reflectance["landslide"], np.float32)[:, None]
    rock = np.array(p.reflectance["landslide_rock"], np.float32)[:, None]
    r = footprint.rock[hit]
    colour = (1.0 - r) * soil + r * rock
    colour *= footprint.gain[hit] * np.maximum(1.0 + 1.2 * p.texture * texture[hit], 0.2)
    s = footprint.share[hit]
    refl[:, hit] = (1.0 - s) * refl[:, hit] + s * colour


def _illuminate(refl: np.ndarray, shade: np.ndarray, altitude_deg: float) -> None:
    """Topographic illumination, in place: ``(cos i + C) / (cos z + C)`` (C-correction form)."""
    cos_z = np.sin(np.radians(altitude_deg))
    refl *= ((shade / 255.0 + _ILLUMINATION_C) / (cos_z + _ILLUMINATION_C))[None]
