"""Fill values: a constant marking missing pixels in imagery that declares no nodata.

Mosaics, exports and image borders are often filled with 0 (sometimes 65535 or -9999) in
every band, without a nodata tag. Read as data, the fill counts as reflectance 0 and
bilinear resampling blends it into the real pixels along the border. A pixel is fill when
every band of one date holds the same candidate value (:func:`candidates`) there; the
imagery is then read again with that value left out before resampling.

The DEM is never searched for a fill: elevation 0 is sea level, so only a nodata value the
DEM file or ``dem.nodata`` declares is left out.
"""

from collections.abc import Iterable, Mapping

import numpy as np

#: A fill common in float and signed exports.
MINUS_9999 = -9999.0


def candidates(dtype: np.dtype) -> tuple[float, ...]:
    """The values that may fill a raster of ``dtype``.

    0 always; for integers wider than 8 bits the type's maximum (65535 for uint16) and, if
    signed, minimum; -9999 where the type holds it. 255 of 8-bit imagery is not one: in
    every band it is saturated white (cloud, snow, a bright scar), so an 8-bit fill of 255
    must be declared (``<date>.nodata=255``).
    """
    dtype = np.dtype(dtype)
    values = [0.0]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if info.bits > 8:
            values.append(float(info.max))
            if info.min < 0:
                values.append(float(info.min))
        if info.min <= MINUS_9999:
            values.append(MINUS_9999)
    else:
        values.append(MINUS_9999)
    return tuple(dict.fromkeys(values))


def find_fill(bands: Mapping[str, np.ndarray], dtypes: Iterable[np.dtype]) -> float | None:
    """The candidate value that every band holds at the most pixels, if any pixel.

    Args:
        bands: one date's bands on the target grid, read without a fill.
        dtypes: the bands' file data types, which give the candidates.
    """
    best, most = None, 0
    for value in dict.fromkeys(v for d in dtypes for v in candidates(d)):
        every = np.logical_and.reduce([band == np.float32(value) for band in bands.values()])
        count = int(every.sum())
        if count > most:
            best, most = value, count
    return best
