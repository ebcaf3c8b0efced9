"""Generator parameters of one simulated domain: the ``world`` block of a domain config.

The dataclasses below mirror the block's layout key for key. They are its schema:
:meth:`WorldParams.from_mapping` merges a block into ``OmegaConf.structured(WorldParams)``,
which rejects unknown keys, missing keys and values of the wrong type, and each dataclass's
``__post_init__`` checks the ranges that types cannot express.
"""

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import (
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

#: Pixel size of every simulated domain, metres (Sentinel-2's 10 m bands).
RES = 10.0
#: Land-cover classes, in the order of the class raster.
LAND_COVERS: tuple[str, ...] = (
    "forest",
    "grass",
    "cropland",
    "bare_rock",
    "water",
    "built",
    "river_bar",
)


class ParamError(ValueError):
    """A parameter out of range.

    Args:
        key: the parameter's key, dotted, relative to the dataclass that raised it.
        problem: what is wrong, e.g. ``must be in [0, 1], got 1.5``.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key = key
        self.problem = problem


def _require(ok: bool, key: str, rule: str, value: Any) -> None:
    """Raise a :class:`ParamError` for ``key`` unless ``ok``."""
    if not ok:
        raise ParamError(key, f"must {rule}, got {value!r}")


def _require_fraction(key: str, value: float) -> None:
    _require(0.0 <= value <= 1.0, key, "be in [0, 1]", value)


def _require_length(key: str, value: list[float], n: int) -> None:
    _require(len(value) == n, key, f"be a list of {n} numbers", value)


def _require_range(key: str, value: list[float]) -> None:
    """``value`` is ``[min, max]`` with ``0 < min <= max``."""
    _require_length(key, value, 2)
    _require(0 < value[0] <= value[1], key, "be [min, max] with 0 < min <= max", value)


@dataclass
class CloudParams:
    """Thin cloud over one image and its shadow on the ground.

    Attributes:
        cover: share of the scene under cloud (0: a clear image).
        opacity: largest share of the ground signal the cloud replaces.
        height_m: cloud height; its shadow falls ``height / tan(sun altitude)`` away from the
            sun.
    """

    cover: float = 0.0
    opacity: float = 0.0
    height_m: float = 2000.0

    def __post_init__(self) -> None:
        _require(0.0 <= self.cover < 1.0, "cover", "be in [0, 1)", self.cover)
        _require_fraction("opacity", self.opacity)


@dataclass
class DateParams:
    """Acquisition conditions of one image date.

    Attributes:
        gain: per-band multiplicative factor (blue, green, red, NIR): season, atmosphere.
        offset: per-band additive reflectance (path radiance, haze).
        greenness: vegetation vigour in [0, 1]; below 1 vegetation dries towards fallow soil.
        fallow: share of cropland parcels that are bare at this date.
        cloud: thin cloud and shadow over this image (none if left out).
    """

    gain: list[float]
    offset: list[float]
    greenness: float
    fallow: float
    cloud: CloudParams = field(default_factory=CloudParams)

    def __post_init__(self) -> None:
        _require_length("gain", self.gain, 4)
        _require_length("offset", self.offset, 4)
        _require_fraction("greenness", self.greenness)
        _require_fraction("fallow", self.fallow)


@dataclass
class BasinParams:
    """A north-south basin through the scene centre.

    Attributes:
        depth: depth as a share of the relief (0: none).
        width_m: half-width (Gaussian sigma).
    """

    depth: float
    width_m: float

    def __post_init__(self) -> None:
        _require(0.0 <= self.depth < 1.0, "depth", "be in [0, 1)", self.depth)
        _require(self.width_m > 0, "width_m", "be positive", self.width_m)


@dataclass
class TerrainParams:
    """The DEM.

    Attributes:
        elevation_m: [lowest, highest] elevation.
        spectral_exponent: exponent ``beta`` of the DEM's power spectrum, ``P(k) ~ k^-beta``;
            lower is rougher at short wavelengths.
        landform_m: wavelength of the largest landforms (the spectrum's low-frequency corner).
        valley_exponent: the normalised DEM is raised to this power; above 1 widens valley
            floors and plains and steepens the uplands.
        basin: a basin through the scene centre (none if left out).
    """

    elevation_m: list[float]
    spectral_exponent: float
    landform_m: float
    valley_exponent: float
    basin: BasinParams = field(default_factory=lambda: BasinParams(depth=0.0, width_m=1.0))

    def __post_init__(self) -> None:
        _require_length("elevation_m", self.elevation_m, 2)
        low, high = self.elevation_m
        _require(low < high, "elevation_m", "be [low, high] with low < high", self.elevation_m)
        _require(
            2.0 <= self.spectral_exponent <= 6.0,
            "spectral_exponent",
            "be in [2, 6]",
            self.spectral_exponent,
        )
        _require(self.landform_m > 0, "landform_m", "be positive", self.landform_m)
        _require(self.valley_exponent > 0, "valley_exponent", "be positive", self.valley_exponent)


@dataclass
class Spectra:
    """Surface reflectance [blue, green, red, NIR] of each land cover and other surface.

    The land covers are those of :data:`LAND_COVERS`; the other surfaces:

    Attributes:
        fallow: bare field soil.
        landslide: exposed soil.
        landslide_rock: exposed bedrock of deep landslides.
        road: road surface.
        construction: graded ground of new building sites.
        clearing: a fresh clear-cut: slash, stumps and disturbed soil.
    """

    forest: list[float]
    grass: list[float]
    cropland: list[float]
    bare_rock: list[float]
    water: list[float]
    built: list[float]
    river_bar: list[float]
    fallow: list[float]
    landslide: list[float]
    landslide_rock: list[float]
    road: list[float]
    construction: list[float]
    clearing: list[float]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _require_length(f.name, getattr(self, f.name), 4)

    def __getitem__(self, name: str) -> list[float]:
        """The spectrum of a land cover or surface, by name."""
        return getattr(self, name)


@dataclass
class LandslideParams:
    """The co-seismic landslides.

    Attributes:
        share: share of the scene covered by landslides.
        area_m2: [smallest, largest] landslide area.
        exponent: exponent of the power-law tail of the landslide area density.
        rollover_m2: most frequent landslide area (the distribution's mode).
        elongation: [min, max] length-to-width ratio of a landslide.
        slope_deg: slope at which the landslide likelihood is half its maximum.
        slope_spread_deg: width of the logistic slope response.
        clustering: standard deviation of the log of a smooth (about 1 km) susceptibility
            field (lithology, soil depth), which clusters landslides; 0 for none.
        partial: share of landslides that strip only part of the ground cover.
        rock_area_m2: landslide area at which half the landslides cut to bedrock (deeper
            landslides are larger) and expose ``landslide_rock`` instead of soil.
    """

    share: float
    area_m2: list[float]
    exponent: float
    rollover_m2: float
    elongation: list[float]
    slope_deg: float
    slope_spread_deg: float
    clustering: float
    partial: float
    rock_area_m2: float

    def __post_init__(self) -> None:
        _require(0.0 <= self.share < 0.5, "share", "be in [0, 0.5)", self.share)
        _require_length("area_m2", self.area_m2, 2)
        low, high = self.area_m2
        _require(0 < low < high, "area_m2", "be [min, max] with 0 < min < max", self.area_m2)
        rule = f"be within area_m2 [{low}, {high}]"
        _require(low <= self.rollover_m2 <= high, "rollover_m2", rule, self.rollover_m2)
        _require(self.exponent > 1.0, "exponent", "exceed 1", self.exponent)
        _require_length("elongation", self.elongation, 2)
        ok = 1.0 <= self.elongation[0] <= self.elongation[1]
        _require(ok, "elongation", "be [min, max] with 1 <= min <= max", self.elongation)
        _require(
            self.slope_spread_deg > 0, "slope_spread_deg", "be positive", self.slope_spread_deg
        )
        _require(self.clustering >= 0, "clustering", "be >= 0", self.clustering)
        _require_fraction("partial", self.partial)
        _require(self.rock_area_m2 > 0, "rock_area_m2", "be positive", self.rock_area_m2)


@dataclass
class ScarParams:
    """Old, partly revegetated landslide scars: in both images, not in the inventory.

    Attributes:
        share: share of the scene they cover.
        revegetation: [min, max] share of an old scar that vegetation has reclaimed.
    """

    share: float
    revegetation: list[float]

    def __post_init__(self) -> None:
        _require(0.0 <= self.share < 0.5, "share", "be in [0, 0.5)", self.share)
        _require_length("revegetation", self.revegetation, 2)
        ok = 0.0 <= self.revegetation[0] <= self.revegetation[1] <= 1.0
        _require(ok, "revegetation", "be [min, max] within [0, 1]", self.revegetation)


@dataclass
class RoadParams:
    """The road network.

    Attributes:
        spacing_m: typical distance between roads.
        share: share of the landscape the network reaches.
        new: share of the roads that are built between the two images.
        max_slope_deg: roads keep to ground flatter than this.
    """

    spacing_m: float
    share: float
    new: float
    max_slope_deg: float

    def __post_init__(self) -> None:
        _require(self.spacing_m > 0, "spacing_m", "be positive", self.spacing_m)
        _require_fraction("share", self.share)
        _require_fraction("new", self.new)


@dataclass
class ConstructionParams:
    """Building sites graded between the images.

    Attributes:
        share: share of the scene they cover.
        area_m2: [smallest, largest] site area.
    """

    share: float
    area_m2: list[float]

    def __post_init__(self) -> None:
        _require_fraction("share", self.share)
        _require_range("area_m2", self.area_m2)


@dataclass
class ClearingParams:
    """Forest clear-cut between the images (logging, land clearing).

    Attributes:
        share: share of the scene cleared; 0 where nobody logs (a national park).
        area_m2: [smallest, largest] area of one clearing.
        max_slope_deg: clearings keep to forest flatter than this (machine access).
    """

    share: float
    area_m2: list[float]
    max_slope_deg: float

    def __post_init__(self) -> None:
        _require_fraction("share", self.share)
        _require_range("area_m2", self.area_m2)


@dataclass
class ConfounderParams:
    """Changes and surfaces that look like landslides and are not.

    Attributes:
        roads: the road network.
        construction: new building sites.
        clearings: new forest clearings.
        bars_fresh: share of river bars scoured bare between the images (vegetated before).
    """

    roads: RoadParams
    construction: ConstructionParams
    clearings: ClearingParams
    bars_fresh: float

    def __post_init__(self) -> None:
        _require_fraction("bars_fresh", self.bars_fresh)


@dataclass
class ShakingParams:
    """Ground shaking around the rupture.

    Attributes:
        decay_m: e-folding distance of shaking from the rupture.
        fault_strike_deg: strike of the rupture, clockwise from north.
        fault_half_length_m: half-length of the rupture segment (0: a point source).
    """

    decay_m: float
    fault_strike_deg: float
    fault_half_length_m: float

    def __post_init__(self) -> None:
        _require(self.decay_m > 0, "decay_m", "be positive", self.decay_m)


@dataclass
class WorldParams:
    """Generator parameters of one simulated domain (the ``world`` block of a domain config).

    Attributes:
        area_km2: extent of the study area (paper Table I); the full-size scene is the square
            of this area (:meth:`full_size_px`).
        terrain: the DEM.
        land_cover: share of the scene of each class in :data:`LAND_COVERS` (sum 1).
        reflectance: spectrum of each land cover and surface.
        parcel_m: mean side of a cropland parcel.
        texture: relative amplitude of the ground texture noise.
        sensor_noise: standard deviation of per-pixel sensor noise (reflectance).
        landslides: the co-seismic landslides.
        scars: old landslide scars.
        confounders: roads, building sites, clearings and scoured river bars.
        shaking: ground shaking around the rupture.
        centre_offset_m: [east, north] offset of the scene centre from the epicentre.
        pre: conditions of the pre-event image.
        post: conditions of the post-event image.
    """

    area_km2: float
    terrain: TerrainParams
    land_cover: dict[str, float]
    reflectance: Spectra
    parcel_m: float
    texture: float
    sensor_noise: float
    landslides: LandslideParams
    scars: ScarParams
    confounders: ConfounderParams
    shaking: ShakingParams
    centre_offset_m: list[float]
    pre: DateParams
    post: DateParams

    def __post_init__(self) -> None:
        _require(self.area_km2 > 0, "area_km2", "be positive", self.area_km2)
        names = sorted(self.land_cover)
        rule = f"name each of {', '.join(LAND_COVERS)} once"
        _require(names == sorted(LAND_COVERS), "land_cover", rule, names)
        shares = self.land_cover.values()
        ok = min(shares) >= 0 and abs(sum(shares) - 1.0) <= 1e-3
        _require(ok, "land_cover", "be shares >= 0 that sum to 1", self.land_cover)
        _require(self.parcel_m > 0, "parcel_m", "be positive", self.parcel_m)
        _require_length("centre_offset_m", self.centre_offset_m, 2)

    def full_size_px(self) -> int:
        """Side in pixels of the square scene with the study area's extent (``area_km2``)."""
        return int(round(math.sqrt(self.area_km2 * 1e6) / RES))

    @classmethod
    def from_mapping(cls, world: Mapping[str, Any], domain: str | None = None) -> "WorldParams":
        """Check a ``world`` block (see ``conf/domain/*.yaml``) and build its parameters.

        Args:
            world: the block (a dict or an OmegaConf node).
            domain: the domain's name, for the error message.

        Returns:
            The parameters.

        Raises:
            ValueError: one line naming the key, if a key is unknown or missing, or a value
                has the wrong type or is out of range.
        """
        try:
            return _dataclass_from_node(cls, OmegaConf.merge(OmegaConf.structured(cls), world), "")
        except ParamError as err:
            problem = str(err)
        except ConfigKeyError as err:
            problem = f"{err.full_key} is not a known key"
        except MissingMandatoryValue as err:
            problem = f"{err.full_key} is missing"
        except ValidationError as err:
            problem = f"{err.full_key} has the wrong type: {_first_line(err)}"
        except OmegaConfBaseException as err:
            problem = f"{err.full_key}: {_first_line(err)}"
        if domain is None:
            raise ValueError(f"world.{problem}") from None
        raise ValueError(
            f"domain '{domain}': world.{problem}; fix conf/domain/{domain}.yaml"
        ) from None


def _dataclass_from_node(schema: type, node: Any, prefix: str) -> Any:
    """Instantiate ``schema`` from its checked config node, each nested dataclass first.

    Like ``OmegaConf.to_object``, but a :class:`ParamError` from a ``__post_init__`` names
    the full key (``pre.cloud.cover``, not ``cover``).

    Args:
        schema: the dataclass.
        node: its ``DictConfig``, merged into ``OmegaConf.structured(schema)``.
        prefix: the node's key followed by a dot (empty at the top).

    Returns:
        The instance.
    """
    values = {}
    for f in dataclasses.fields(schema):
        value = node[f.name]  # MissingMandatoryValue if absent
        if isinstance(f.type, type) and dataclasses.is_dataclass(f.type):
            values[f.name] = _dataclass_from_node(f.type, value, f"{prefix}{f.name}.")
        elif OmegaConf.is_config(value):
            values[f.name] = OmegaConf.to_container(value)
        else:
            values[f.name] = value
    try:
        return schema(**values)
    except ParamError as err:
        raise ParamError(prefix + err.key, err.problem) from None


def _first_line(err: OmegaConfBaseException) -> str:
    """OmegaConf's message without the lines it appends (``full_key: ...``, types)."""
    return str(err.msg).splitlines()[0]
