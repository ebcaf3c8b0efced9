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

import numpy as np
from rasterio.enums import Resampling

from landslide.prepare.errors import PrepareError
from landslide.prepare.grid import Grid, RasterInput, open_raster, warp

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
        return RasterInput(Path(self.clouds.path), f"{key}.clouds", crs=self.crs), tuple(
            self.clouds.values
        )

    def reflectance(
        self, grid: Grid, colours: Sequence[str], key: str
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Read the colours' bands onto the grid as reflectance.

        Returns:
            Reflectance by colour (NaN where missing), and the cloud mask on the grid (True
            for cloud) or None.

        Raises:
            PrepareError: if values look unscaled or scaled twice.
        """
        out = {}
        for colour, raster in self.rasters(colours, key).items():
            scale, offset = self.calibration(colour)
            values = warp(raster, grid) * np.float32(scale) + np.float32(offset)
            _check_scaling(values, raster, scale)
            out[colour] = values
        clouds = self.cloud_raster(key)
        if clouds is None:
            return out, None
        raster, cloud_values = clouds
        classes = warp(raster, grid, Resampling.nearest)
        return out, np.isin(classes, cloud_values)


def _check_scaling(values: np.ndarray, raster: RasterInput, scale: float) -> None:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    high = float(np.percentile(finite, 99))
    if high > _MAX_REFLECTANCE:
        raise PrepareError(
            f"{raster.path}: values up to {high:.4g} after scaling look like digital numbers, "
            f"not reflectance; set {raster.key}.scale (0.0001 for Sentinel-2)"
        )
    if 0 < high < _MIN_REFLECTANCE:
        raise PrepareError(
            f"{raster.path}: values up to {high:.4g} after scale={scale} look scaled twice; "
            f"set {raster.key}.scale=1 for reflectance inputs"
        )


class BandFiles(ImagerySource):
    """One file per band (GeoTIFF or JP2), all in one CRS.

    Args:
        files: file per colour (``blue``, ``green``, ``red``, ``nir``); relative paths are
            taken from ``path``. Only the colours the band set needs are required.
        path: folder of the files.
        **kwargs: see :class:`ImagerySource`.
    """

    def __init__(self, files: Mapping[str, str], path: str | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.files = dict(files)
        self.path = Path(path) if path is not None else Path()

    def rasters(self, colours: Sequence[str], key: str) -> dict[str, RasterInput]:
        out = {}
        for colour in colours:
            if not self.files.get(colour):
                raise PrepareError(
                    f"{key}: no {colour} band file, needed by the band set; set "
                    f"{key}.files.{colour}=<file> (Sentinel-2 {S2_BANDS[colour]}) or drop the "
                    "bands that need it"
                )
            path = self.path / self.files[colour]
            out[colour] = RasterInput(path, key, crs=self.crs, nodata=self.nodata)
        _check_same_crs(out.values())
        return out


def _check_same_crs(rasters: Iterable[RasterInput]) -> None:
    """Bands of one date must share a CRS: a mismatch means a mixed-up file."""
    seen: dict[str, Path] = {}
    for raster in rasters:
        with open_raster(raster.path, raster.key) as src:
            crs = raster.source_crs(src).to_string()
        seen.setdefault(crs, raster.path)
        if len(seen) > 1:
            (a, first), (b, _) = list(seen.items())[:2]
            raise PrepareError(
                f"{raster.path}: CRS {b} differs from {first} ({a}); the band files of one "
                f"date must share a CRS, fix {raster.key}.files"
            )


class GeoTiffStack(ImagerySource):
    """One multi-band GeoTIFF per date (e.g. an Earth Engine export).

    Args:
        path: the GeoTIFF.
        bands: band per colour: a band description (``B4``) or a 1-based index.
        **kwargs: see :class:`ImagerySource`.
    """

    def __init__(self, path: str, bands: Mapping[str, str | int], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.bands = dict(bands)

    def rasters(self, colours: Sequence[str], key: str) -> dict[str, RasterInput]:
        with open_raster(self.path, key) as src:
            names, count = list(src.descriptions), src.count
        out = {}
        for colour in colours:
            band = self.bands.get(colour)
            if isinstance(band, int) and 1 <= band <= count:
                index = band
            elif isinstance(band, str) and band in names:
                index = names.index(band) + 1
            else:
                described = ", ".join(n or "-" for n in names)
                raise PrepareError(
                    f"{self.path}: no {colour} band {band!r} (bands: {described}); set "
                    f"{key}.bands.{colour} to a band name or 1-based index"
                )
            out[colour] = RasterInput(self.path, key, index, self.crs, self.nodata)
        return out


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

    def rasters(self, colours: Sequence[str], key: str) -> dict[str, RasterInput]:
        out = {}
        for colour in colours:
            band = S2_BANDS[colour]
            pattern = f"R10m/*_{band}_10m.jp2" if self.level2a else f"*_{band}.jp2"
            out[colour] = RasterInput(self._image(pattern, key), key, crs=self.crs, nodata=0)
        return out

    def cloud_raster(self, key: str) -> tuple[RasterInput, Sequence[int]] | None:
        if not self.level2a or not self.cloud_classes:
            return None
        scl = self._image("R20m/*_SCL_20m.jp2", key)
        return RasterInput(scl, key, crs=self.crs), self.cloud_classes


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
