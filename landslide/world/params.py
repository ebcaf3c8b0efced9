"""Generator parameters of one simulated domain: the ``world`` block of a domain config."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
#: Extra spectra a world defines besides the land covers.
SURFACES: tuple[str, ...] = (
    "fallow",
    "landslide",
    "landslide_rock",
    "road",
    "construction",
    "clearing",
)
#: Band order of every spectrum in a world config.
SPECTRAL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir")


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class DateParams:
    """Acquisition conditions of one image date.

    Attributes:
        gain: per-band multiplicative factor (blue, green, red, NIR): season, atmosphere.
        offset: per-band additive reflectance (path radiance, haze).
        greenness: vegetation vigour in [0, 1]; below 1 vegetation dries towards fallow soil.
        fallow: share of cropland parcels that are bare at this date.
        cloud: thin cloud and shadow over this image.
    """

    gain: tuple[float, float, float, float]
    offset: tuple[float, float, float, float]
    greenness: float
    fallow: float
    cloud: CloudParams


@dataclass(frozen=True)
class WorldParams:
    """Generator parameters of one simulated domain (the ``world`` block of a domain config).

    Attributes:
        area_km2: extent of the study area (paper Table I); the full-size scene is the square
            of this area (:meth:`full_size_px`).
        elevation_m: (lowest, highest) elevation of the DEM.
        spectral_exponent: exponent ``beta`` of the DEM's power spectrum, ``P(k) ~ k^-beta``;
            lower is rougher at short wavelengths.
        landform_m: wavelength of the largest landforms (the spectrum's low-frequency corner).
        valley_exponent: the normalised DEM is raised to this power; above 1 widens valley
            floors and plains and steepens the uplands.
        basin_depth: depth of a north-south basin through the scene centre, as a share of the
            relief (0: none).
        basin_width_m: half-width (Gaussian sigma) of that basin.
        land_cover: share of the scene of each class in :data:`LAND_COVERS` (sum 1).
        reflectance: spectrum (blue, green, red, NIR) of each land cover and of each surface
            in :data:`SURFACES`: ``fallow`` (bare field soil), ``landslide`` (exposed soil),
            ``landslide_rock`` (exposed bedrock of deep landslides), ``road`` and
            ``construction`` (graded ground of new building sites), ``clearing`` (a fresh
            clear-cut: slash, stumps and disturbed soil).
        parcel_m: mean side of a cropland parcel.
        texture: relative amplitude of the ground texture noise.
        sensor_noise: standard deviation of per-pixel sensor noise (reflectance).
        landslide_share: share of the scene covered by landslides.
        landslide_area_m2: (smallest, largest) landslide area.
        area_exponent: exponent of the power-law tail of the landslide area density.
        area_rollover_m2: most frequent landslide area (the distribution's mode).
        elongation: (min, max) length-to-width ratio of a landslide.
        slope_deg: slope at which the landslide likelihood is half its maximum.
        slope_spread_deg: width of the logistic slope response.
        clustering: standard deviation of the log of a smooth (about 1 km) susceptibility
            field (lithology, soil depth), which clusters landslides; 0 for none.
        partial: share of landslides that strip only part of the ground cover.
        rock_area_m2: landslide area at which half the landslides cut to bedrock (deeper
            landslides are larger) and expose ``landslide_rock`` instead of soil.
        scar_share: share of the scene covered by old, partly revegetated landslide scars,
            visible in both images and not in the inventory.
        scar_revegetation: (min, max) share of an old scar that vegetation has reclaimed.
        road_spacing_m: typical distance between roads.
        road_share: share of the landscape the road network reaches.
        road_new: share of the roads that are built between the two images.
        road_max_slope_deg: roads keep to ground flatter than this.
        construction_share: share of the scene graded for new building sites between the
            images.
        construction_area_m2: (smallest, largest) building site area.
        clearing_share: share of the scene in forest clear-cut between the images (logging,
            land clearing); 0 where nobody logs (a national park).
        clearing_area_m2: (smallest, largest) area of one clearing.
        clearing_max_slope_deg: clearings keep to forest flatter than this (machine access).
        bars_fresh: share of river bars scoured bare between the images (vegetated before).
        shaking_decay_m: e-folding distance of shaking from the rupture.
        fault_strike_deg: strike of the rupture, clockwise from north.
        fault_half_length_m: half-length of the rupture segment (0: a point source).
        centre_offset_m: (east, north) offset of the scene centre from the epicentre.
        pre: conditions of the pre-event image.
        post: conditions of the post-event image.
    """

    area_km2: float
    elevation_m: tuple[float, float]
    spectral_exponent: float
    landform_m: float
    valley_exponent: float
    basin_depth: float
    basin_width_m: float
    land_cover: dict[str, float]
    reflectance: dict[str, tuple[float, float, float, float]]
    parcel_m: float
    texture: float
    sensor_noise: float
    landslide_share: float
    landslide_area_m2: tuple[float, float]
    area_exponent: float
    area_rollover_m2: float
    elongation: tuple[float, float]
    slope_deg: float
    slope_spread_deg: float
    clustering: float
    partial: float
    rock_area_m2: float
    scar_share: float
    scar_revegetation: tuple[float, float]
    road_spacing_m: float
    road_share: float
    road_new: float
    road_max_slope_deg: float
    construction_share: float
    construction_area_m2: tuple[float, float]
    clearing_share: float
    clearing_area_m2: tuple[float, float]
    clearing_max_slope_deg: float
    bars_fresh: float
    shaking_decay_m: float
    fault_strike_deg: float
    fault_half_length_m: float
    centre_offset_m: tuple[float, float]
    pre: DateParams
    post: DateParams

    def full_size_px(self) -> int:
        """Side in pixels of the square scene with the study area's extent (``area_km2``)."""
        return int(round(math.sqrt(self.area_km2 * 1e6) / RES))

    @classmethod
    def from_mapping(cls, world: Mapping[str, Any]) -> "WorldParams":
        """Parse and check a ``world`` block (see ``conf/domain/*.yaml``).

        Raises:
            ValueError: if a key is missing or a value is out of range.
        """
        w = plain(world)
        try:
            terrain, slides, shaking = w["terrain"], w["landslides"], w["shaking"]
            scars, conf = w["scars"], w["confounders"]
            roads, sites, clearings = conf["roads"], conf["construction"], conf["clearings"]
            basin = terrain.get("basin", {"depth": 0.0, "width_m": 1.0})
            params = cls(
                area_km2=float(w["area_km2"]),
                elevation_m=_floats(terrain["elevation_m"], 2),
                spectral_exponent=float(terrain["spectral_exponent"]),
                landform_m=float(terrain["landform_m"]),
                valley_exponent=float(terrain["valley_exponent"]),
                basin_depth=float(basin["depth"]),
                basin_width_m=float(basin["width_m"]),
                land_cover={k: float(w["land_cover"][k]) for k in LAND_COVERS},
                reflectance={k: _floats(w["reflectance"][k], 4) for k in LAND_COVERS + SURFACES},
                parcel_m=float(w["parcel_m"]),
                texture=float(w["texture"]),
                sensor_noise=float(w["sensor_noise"]),
                landslide_share=float(slides["share"]),
                landslide_area_m2=_floats(slides["area_m2"], 2),
                area_exponent=float(slides["exponent"]),
                area_rollover_m2=float(slides["rollover_m2"]),
                elongation=_floats(slides["elongation"], 2),
                slope_deg=float(slides["slope_deg"]),
                slope_spread_deg=float(slides["slope_spread_deg"]),
                clustering=float(slides["clustering"]),
                partial=float(slides["partial"]),
                rock_area_m2=float(slides["rock_area_m2"]),
                scar_share=float(scars["share"]),
                scar_revegetation=_floats(scars["revegetation"], 2),
                road_spacing_m=float(roads["spacing_m"]),
                road_share=float(roads["share"]),
                road_new=float(roads["new"]),
                road_max_slope_deg=float(roads["max_slope_deg"]),
                construction_share=float(sites["share"]),
                construction_area_m2=_floats(sites["area_m2"], 2),
                clearing_share=float(clearings["share"]),
                clearing_area_m2=_floats(clearings["area_m2"], 2),
                clearing_max_slope_deg=float(clearings["max_slope_deg"]),
                bars_fresh=float(conf["bars_fresh"]),
                shaking_decay_m=float(shaking["decay_m"]),
                fault_strike_deg=float(shaking["fault_strike_deg"]),
                fault_half_length_m=float(shaking["fault_half_length_m"]),
                centre_offset_m=_floats(w["centre_offset_m"], 2),
                pre=_date_params(w["pre"]),
                post=_date_params(w["post"]),
            )
        except KeyError as err:
            raise ValueError(f"world parameters: missing key {err}") from err
        params._check()
        return params

    def _check(self) -> None:
        problems = []
        if self.area_km2 <= 0:
            problems.append("area_km2 must be positive")
        if not self.elevation_m[0] < self.elevation_m[1]:
            problems.append("terrain.elevation_m must be (low, high) with low < high")
        if not 2.0 <= self.spectral_exponent <= 6.0:
            problems.append("terrain.spectral_exponent must be in [2, 6]")
        if self.landform_m <= 0 or self.valley_exponent <= 0 or self.parcel_m <= 0:
            problems.append("landform_m, valley_exponent and parcel_m must be positive")
        if not 0.0 <= self.basin_depth < 1.0 or self.basin_width_m <= 0:
            problems.append("terrain.basin: depth in [0, 1), width_m > 0")
        shares = self.land_cover.values()
        if min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-3:
            problems.append(f"land_cover shares must be >= 0 and sum to 1, got {sum(shares)}")
        if not 0.0 <= self.landslide_share < 0.5 or not 0.0 <= self.scar_share < 0.5:
            problems.append("landslides.share and scars.share must be in [0, 0.5)")
        lo, hi = self.landslide_area_m2
        if not 0 < lo < hi or not lo <= self.area_rollover_m2 <= hi:
            problems.append("landslides: 0 < area_m2[0] <= rollover_m2 <= area_m2[1]")
        if self.area_exponent <= 1.0:
            problems.append("landslides.exponent must exceed 1")
        if not 1.0 <= self.elongation[0] <= self.elongation[1]:
            problems.append("landslides.elongation must be (min, max) with 1 <= min <= max")
        if self.slope_spread_deg <= 0 or self.shaking_decay_m <= 0 or self.clustering < 0:
            problems.append(
                "landslides.slope_spread_deg and shaking.decay_m must be positive, "
                "landslides.clustering non-negative"
            )
        fractions = {
            "landslides.partial": self.partial,
            "confounders.roads.share": self.road_share,
            "confounders.roads.new": self.road_new,
            "confounders.bars_fresh": self.bars_fresh,
            "confounders.construction.share": self.construction_share,
            "confounders.clearings.share": self.clearing_share,
        }
        problems += [f"{k} must be in [0, 1]" for k, v in fractions.items() if not 0 <= v <= 1]
        if not 0.0 <= self.scar_revegetation[0] <= self.scar_revegetation[1] <= 1.0:
            problems.append("scars.revegetation must be (min, max) within [0, 1]")
        if self.rock_area_m2 <= 0 or self.road_spacing_m <= 0:
            problems.append("landslides.rock_area_m2 and roads.spacing_m must be positive")
        if not 0 < self.construction_area_m2[0] <= self.construction_area_m2[1]:
            problems.append("construction.area_m2 must be (min, max) with 0 < min <= max")
        if not 0 < self.clearing_area_m2[0] <= self.clearing_area_m2[1]:
            problems.append("clearings.area_m2 must be (min, max) with 0 < min <= max")
        for name, date in (("pre", self.pre), ("post", self.post)):
            if not 0.0 <= date.greenness <= 1.0 or not 0.0 <= date.fallow <= 1.0:
                problems.append(f"{name}: greenness and fallow must be in [0, 1]")
            cloud = date.cloud
            if not 0.0 <= cloud.cover < 1.0 or not 0.0 <= cloud.opacity <= 1.0:
                problems.append(f"{name}.cloud: cover in [0, 1), opacity in [0, 1]")
        if problems:
            raise ValueError("world parameters: " + "; ".join(problems))


def plain(value: Any) -> Any:
    """Mappings and sequences (OmegaConf containers included) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def _floats(value: Any, n: int) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != n:
        raise ValueError(f"world parameters: expected a list of {n} numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _date_params(value: Mapping[str, Any]) -> DateParams:
    cloud = value.get("cloud", {})
    return DateParams(
        gain=_floats(value["gain"], 4),
        offset=_floats(value["offset"], 4),
        greenness=float(value["greenness"]),
        fallow=float(value["fallow"]),
        cloud=CloudParams(
            cover=float(cloud.get("cover", 0.0)),
            opacity=float(cloud.get("opacity", 0.0)),
            height_m=float(cloud.get("height_m", 2000.0)),
        ),
    )
