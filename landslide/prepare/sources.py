"""Sentinel-2 imagery of one date, in the three formats users bring, as surface reflectance.

* :class:`BandFiles`: one file per band (GeoTIFF or JP2), e.g. ``T45RUL_..._B04.jp2``.
* :class:`GeoTiffStack`: one multi-band GeoTIFF, e.g. an Earth Engine export whose band
  descriptions are ``B2, B3, B4, B8``; bands are found by description or 1-based index.
* :class:`SafeProduct`: a Sentinel-2 L1C or L2A ``.SAFE`` folder.

Reflectance is ``dn * scale + offset``, in the simulated world's units (reflectance in
[0, 1]). For Sentinel-2 digital numbers ``scale`` is 1/10000; L2A products of processing
baseline 04.00 and later (from January 2022) also carry ``BOA_ADD_OFFSET = -1000``, so
``offset = -0.1``. A ``.SAFE`` product gives both from its metadata (``MTD_MSIL*.xml``);
for GeoTIFF and band files they are config values (Earth Engine's ``COPERNICUS/S2_HARMONIZED``
and ``S2_SR_HARMONIZED`` collections have the offset removed already: ``offset: 0``).
"""

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, override

import numpy as np
from rasterio.enums import Resampling

from landslide.prepare.errors import PrepareError
from landslide.prepare.fill import find_fill
from landslide.prepare.grid import Grid, RasterInput, open_raster, warp
from landslide.prepare.tiles import find_rasters

log = logging.getLogger(__name__)

#: The four Sentinel-2 10 m bands the stack needs, by colour.
S2_BANDS: dict[str, str] = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}

#: Scene classification (L2A ``SCL``) classes counted as cloud: shadow, medium and high
#: probability cloud, thin cirrus.
SCL_CLOUD: tuple[int, ...] = (3, 8, 9, 10)

#: 99th-percentile reflectance above which values are taken for unscaled digital numbers,
#: and below which for reflectance scaled twice.
_MAX_REFLECTANCE, _MIN_REFLECTANCE = 1.5, 0.002


@dataclass(frozen=True)
class CloudMask:
    """A raster of cloud classes (e.g. Sen2Cor's SCL, or s2cloudless output).

    Attributes:
        path: the raster.
        values: pixel values that mean cloud or cloud shadow.
    """

    path: str
    values: Sequence[int] = SCL_CLOUD


class ImagerySource:
    """Sentinel-2 imagery of one date.

    Args:
        date: acquisition date ``YYYY-MM-DD`` (the post-event date places the sun of the
            hillshade band).
        scale: reflectance per digital number.
        offset: reflectance added after scaling.
        nodata: digital number of missing pixels, overriding the files' own nodata.
        crs: CRS to assume for files that have none.
        clouds: optional cloud raster; its cloud pixels are left out like nodata.
    """

    def __init__(
        self,
        date: str | None = None,
        scale: float = 1e-4,
        offset: float = 0.0,
        nodata: float | None = None,
        crs: str | None = None,
        clouds: Mapping | CloudMask | None = None,
    ) -> None:
        self.date = None if date is None else str(date)
        self.scale = float(scale)
        self.offset = float(offset)
        self.nodata = nodata
        self.crs = crs
        self.clouds = CloudMask(**clouds) if isinstance(clouds, Mapping) else clouds

    def rasters(self, colours: Sequence[str], key: str) -> dict[str, RasterInput]:
        """The band to read for each colour (``blue``, ``green``, ``red``, ``nir``).

        Raises:
            PrepareError: if a colour's band is missing.
        """
        raise NotImplementedError

    def calibration(self, colour: str) -> tuple[float, float]:
        """``(scale, offset)`` turning the colour's digital numbers into reflectance."""
        return self.scale, self.offset

    def cloud_raster(self, key: str) -> tuple[RasterInput, Sequence[int]] | None:
        """The cloud raster and its cloud values, if any."""
        if self.clouds is None:
            return None
        setting = f"{key}.clouds.path"
        paths = find_rasters(self.clouds.path, setting)
        raster = RasterInput(paths, f"{key}.clouds", crs=self.crs, setting=setting)
        return raster, tuple(self.clouds.values)

    def reflectance(
        self, grid: Grid, colours: Sequence[str], key: str
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Read the colours' bands onto the grid as reflectance.

        Without a nodata value in the config or every file, a constant that fills every band
        at some pixels (:mod:`landslide.prepare.fill`) is treated as nodata, left out before
        resampling, with a warning giving the share of the area it fills.

        Returns:
            Reflectance by colour (NaN where missing), and the cloud mask on the grid (True
            for cloud) or None.

        Raises:
            PrepareError: if the data type cannot hold reflectance at the scale, or values
                look unscaled or scaled twice.
        """
        rasters = self.rasters(colours, key)
        tiles = {colour: raster.check_tiles() for colour, raster in rasters.items()}
        for colour, raster in rasters.items():
            _check_range(raster, tiles[colour].dtype, *self.calibration(colour))
        values = {colour: warp(raster, grid) for colour, raster in rasters.items()}
        if not all(t.nodata_declared for t in tiles.values()):
            fill = find_fill(values, [t.dtype for t in tiles.values()])
            if fill is not None:
                values = _leave_out_fill(rasters, values, grid, fill, key)
        out = {}
        for colour, raster in rasters.items():
            scale, offset = self.calibration(colour)
            out[colour] = values[colour] * np.float32(scale) + np.float32(offset)
            _check_scaling(out[colour], raster, scale, tiles[colour].dtype)
        clouds = self.cloud_raster(key)
        if clouds is None:
            return out, None
        raster, cloud_values = clouds
        classes = warp(raster, grid, Resampling.nearest)
        return out, np.isin(classes, cloud_values)


def _leave_out_fill(
    rasters: Mapping[str, RasterInput],
    values: Mapping[str, np.ndarray],
    grid: Grid,
    fill: float,
    key: str,
) -> dict[str, np.ndarray]:
    """Read the bands again with ``fill`` left out before resampling.

    A pixel is fill where no band keeps a value; a band that holds the fill value alone at a
    real pixel keeps its value as first read.
    """
    masked = {colour: warp(raster, grid, fill=fill) for colour, raster in rasters.items()}
    gone = np.logical_and.reduce([np.isnan(m) for m in masked.values()])
    gone &= ~np.logical_and.reduce([np.isnan(v) for v in values.values()])
    log.warning(
        "%s: %.1f%% of the area is %g in every band (no nodata value in the file); treated as "
        "nodata, set %s.nodata=... to override",
        key,
        100 * gone.mean(),
        fill,
        key,
    )
    return {
        colour: np.where(np.isnan(masked[colour]) & ~gone, values[colour], masked[colour])
        for colour in rasters
    }


#: Reflectance the largest value of an integer data type must reach at the configured scale:
#: bright surfaces (clouds, snow, fresh scars) reach it, so a smaller range is a wrong scale.
_MIN_FULL_RANGE = 0.25

#: The scale to suggest for integer data, by bits.
_SCALE_FOR_BITS = {8: "0.00392 (1/255)", 16: "0.0001"}


def _check_range(raster: RasterInput, dtype: np.dtype, scale: float, offset: float) -> None:
    """Refuse an integer data type whose whole range is too dark to be reflectance."""
    if not np.issubdtype(dtype, np.unsignedinteger):
        return
    info = np.iinfo(dtype)
    top = info.max * scale + offset
    if top < _MIN_FULL_RANGE:
        suggested = _SCALE_FOR_BITS.get(info.bits, f"{1 / info.max:.3g} (1/{info.max})")
        raise PrepareError(
            f"{raster.name}: {info.bits}-bit values (0-{info.max}) at {raster.key}.scale={scale:g} "
            f"give reflectance up to {top:.4g}, which cannot be surface reflectance; set "
            f"{raster.key}.scale={suggested} for {info.bits}-bit imagery"
        )


def _check_scaling(values: np.ndarray, raster: RasterInput, scale: float, dtype: np.dtype) -> None:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    high = float(np.percentile(finite, 99))
    if high > _MAX_REFLECTANCE:
        bits = np.iinfo(dtype).bits if np.issubdtype(dtype, np.integer) else None
        fix = (
            f"{raster.key}.scale={_SCALE_FOR_BITS[8]} for 8-bit imagery"
            if bits == 8
            else f"{raster.key}.scale=0.0001 for Sentinel-2 digital numbers"
        )
        raise PrepareError(
            f"{raster.name}: values up to {high:.4g} after scaling look like digital numbers, "
            f"not reflectance; set {fix}"
        )
    if 0 < high < _MIN_REFLECTANCE:
        raise PrepareError(
            f"{raster.name}: values up to {high:.4g} after scale={scale} look scaled twice; "
            f"set {raster.key}.scale=1 for reflectance inputs"
        )


class BandFiles(ImagerySource):
    """One file per band (GeoTIFF or JP2), or one set of tiles per band.

    Args:
        files: file per colour (``blue``, ``green``, ``red``, ``nir``): a file, a folder, a
            glob pattern or a list of them (:mod:`landslide.prepare.tiles`); relative paths
            are taken from ``path``. Only the colours the band set needs are required.
        path: folder of the files.
        **kwargs: see :class:`ImagerySource`.
    """

    def __init__(
        self,
        files: Mapping[str, str | Sequence[str] | None],
        path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.files = dict(files)
        self.path = Path(path) if path is not None else Path()

    @override
    def rasters(self, colours: Sequence[str], key: str) -> dict[str, RasterInput]:
        out = {}
        for colour in colours:
            files = self.files.get(colour)
            if not files:
                raise PrepareError(
                    f"{key}: no {colour} band file, needed by the band set; set "
                    f"{key}.files.{colour}=<file> (Sentinel-2 {S2_BANDS[colour]}) or drop the "
                    "bands that need it"
                )
            setting = f"{key}.files.{colour}"
            paths = find_rasters(files, setting, self.path)
            out[colour] = RasterInput(paths, key, crs=self.crs, nodata=self.nodata, setting=setting)
        _check_same_crs(out.values())
        return out


def _check_same_crs(rasters: Iterable[RasterInput]) -> None:
    """Check that the bands of one date, tile by tile, share a CRS.

    A mismatch means a mixed-up file. Tiles of one band may differ (granules in two UTM
    zones); bands in different numbers of tiles are not compared.

    Raises:
        PrepareError: on a mismatch.
    """
    rasters = list(rasters)
    if len({len(r.paths) for r in rasters}) != 1:
        return
    for position in range(len(rasters[0].paths)):
        seen: dict[str, Path] = {}
        for raster in rasters:
            path = raster.paths[position]
            with open_raster(path, raster.setting or raster.key) as src:
                crs = raster.source_crs(src, path).to_string()
            seen.setdefault(crs, path)
            if len(seen) > 1:
                (a, first), (b, _) = list(seen.items())[:2]
                raise PrepareError(
                    f"{path}: CRS {b} differs from {first} ({a}); the band files of one "
                    f"date must share a CRS, fix {raster.key}.files"
                )


class GeoTiffStack(ImagerySource):
    """One multi-band GeoTIFF per date (e.g. an Earth Engine export), or its tiles.

    Args:
        path: the GeoTIFF, or its tiles: a folder, a glob pattern or a list
            (:mod:`landslide.prepare.tiles`). Each tile must hold every band asked.
        bands: band per colour: a band description (``B4``) or a 1-based index.
        **kwargs: see :class:`ImagerySource`.
    """

    def __init__(
        self, path: str | Sequence[str], bands: Mapping[str, str | int], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.path = path if isinstance(path, (str, Path)) else list(path)
        self.bands = dict(bands)

    @override
    def rasters(self, colours: Sequence[str], key: str) -> dict[str, RasterInput]:
        paths = find_rasters(self.path, f"{key}.path")
        indexes: dict[str, list[int]] = {colour: [] for colour in colours}
        for path in paths:
            with open_raster(path, f"{key}.path") as src:
                names, count = list(src.descriptions), src.count
            for colour in colours:
                indexes[colour].append(self._index(colour, names, count, path, key))
        return {
            colour: RasterInput(
                paths,
                key,
                index[0] if len(set(index)) == 1 else tuple(index),
                self.crs,
                self.nodata,
                f"{key}.path",
            )
            for colour, index in indexes.items()
        }

    def _index(self, colour: str, names: list[str | None], count: int, path: Path, key: str) -> int:
        """The 1-based index of a colour's band in one file.

        Raises:
            PrepareError: naming the file, if it has no such band.
        """
        band = self.bands.get(colour)
        if isinstance(band, int) and 1 <= band <= count:
            return band
        if isinstance(band, str) and band in names:
            return names.index(band) + 1
        described = ", ".join(n or "-" for n in names)
        raise PrepareError(
            f"{path}: no {colour} band {band!r} (bands: {described}); set "
            f"{key}.bands.{colour} to a band name or 1-based index"
        )


class SafeProduct(ImagerySource):
    """A Sentinel-2 L1C or L2A ``.SAFE`` folder (one tile).

    Scale, offset, date and, for L2A, the cloud mask (scene classification ``SCL``, 20 m)
    come from the product. DN 0 is nodata.

    Args:
        path: the ``.SAFE`` folder.
        date: overrides the product's sensing date.
        cloud_classes: SCL classes left out as cloud (L2A only); empty to keep all.
        crs: see :class:`ImagerySource`.
    """

    def __init__(
        self,
        path: str,
        date: str | None = None,
        cloud_classes: Sequence[int] = SCL_CLOUD,
        crs: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.metadata = _safe_metadata(self.path)
        super().__init__(
            date=date or self.metadata["date"],
            scale=1.0 / self.metadata["quantification"],
            nodata=0,
            crs=crs,
        )
        self.cloud_classes = tuple(cloud_classes)

    @property
    def level2a(self) -> bool:
        """Whether the product is L2A (surface reflectance)."""
        return self.metadata["level"] == "2A"

    @override
    def calibration(self, colour: str) -> tuple[float, float]:
        offset_dn = self.metadata["offsets"].get(_S2_BAND_ID[S2_BANDS[colour]], 0.0)
        return self.scale, offset_dn * self.scale

    def _image(self, pattern: str, key: str) -> Path:
        found = sorted(self.path.glob(f"GRANULE/*/IMG_DATA/{pattern}"))
        if not found:
            raise PrepareError(
                f"{self.path}: no GRANULE/*/IMG_DATA/{pattern}; is the .SAFE folder complete? "
                f"fix {key}.path"
            )
        return found[0]

    @override
    def rasters(self, colours: Sequence[str], key: str) -> dict[str, RasterInput]:
        out = {}
        for colour in colours:
            band = S2_BANDS[colour]
            pattern = f"R10m/*_{band}_10m.jp2" if self.level2a else f"*_{band}.jp2"
            out[colour] = RasterInput((self._image(pattern, key),), key, crs=self.crs, nodata=0)
        return out

    @override
    def cloud_raster(self, key: str) -> tuple[RasterInput, Sequence[int]] | None:
        if not self.level2a or not self.cloud_classes:
            return None
        scl = self._image("R20m/*_SCL_20m.jp2", key)
        return RasterInput((scl,), key, crs=self.crs), self.cloud_classes


#: Band ids of the 13 Sentinel-2 bands in product metadata (offset lists).
_S2_BAND_ID = {
    b: i
    for i, b in enumerate(
        ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
    )
}


def _safe_metadata(path: Path) -> dict:
    """Level, date, quantification value and per-band additive offsets of a product."""
    mtd = sorted(path.glob("MTD_MSIL*.xml"))
    if not path.is_dir() or not mtd:
        raise PrepareError(
            f"{path}: not a Sentinel-2 .SAFE folder (no MTD_MSIL1C.xml or MTD_MSIL2A.xml); "
            "fix the path or use source=files"
        )
    try:
        root = ET.parse(mtd[0]).getroot()
    except ET.ParseError as err:
        raise PrepareError(f"{mtd[0]}: unreadable product metadata ({err})") from err

    def texts(tag: str) -> list[ET.Element]:
        return [e for e in root.iter() if e.tag.split("}")[-1] == tag]

    level = "2A" if mtd[0].name.startswith("MTD_MSIL2A") else "1C"
    quantification = texts("BOA_QUANTIFICATION_VALUE" if level == "2A" else "QUANTIFICATION_VALUE")
    start = texts("PRODUCT_START_TIME")
    if not quantification or not start:
        raise PrepareError(f"{mtd[0]}: no quantification value or start time; is it complete?")
    offsets = {
        int(e.attrib["band_id"]): float(e.text or 0)
        for e in texts("BOA_ADD_OFFSET" if level == "2A" else "RADIO_ADD_OFFSET")
    }
    baseline = texts("PROCESSING_BASELINE")
    log.info(
        "%s: Level-%s, processing baseline %s, offsets %s",
        path.name,
        level,
        baseline[0].text if baseline else "?",
        sorted(set(offsets.values())) or "none",
    )
    return {
        "level": level,
        "date": (start[0].text or "")[:10],
        "quantification": float(quantification[0].text or 10000),
        "offsets": offsets,
    }
