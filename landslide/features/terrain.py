"""Terrain features from a DEM (slope, hillshade) and the sun position that lights them.

The paper derives slope and hillshade from a DEM as two of its ten input bands (Section
III-A). The functions here follow the formulas of ESRI's Slope and Hillshade tools and GDAL's
``gdaldem`` (Horn's 3x3 gradient). No maintained pure-Python terrain library is in the
environment (richdem, xdem and pysheds are not dependencies), so the few lines are written
here with numpy and checked against analytic surfaces in ``tests/test_world.py``.

Conventions: the DEM is a north-up grid (row 0 is the northern edge, columns go east) with
square pixels of ``res`` metres and elevations in metres.
"""

import calendar
import datetime as dt
import math

import numpy as np

#: Local solar time of Sentinel-2's descending-node overpass (10:30), in hours.
SENTINEL2_SOLAR_HOUR = 10.5


def horn_gradient(dem: np.ndarray, res: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Elevation gradient by Horn's (1981) 3x3 finite difference.

    With the 3x3 neighbourhood of a pixel named

    ::

        a b c
        d e f
        g h i

    (row ``a b c`` to the north), the gradient is

    .. math::

        \partial z / \partial x = ((c + 2f + i) - (a + 2d + g)) / (8\,res)

        \partial z / \partial y = ((a + 2b + c) - (g + 2h + i)) / (8\,res)

    with ``x`` pointing east and ``y`` pointing north. Edge pixels use replicate padding
    (the border row/column is repeated), so the output has the input's shape.

    Args:
        dem: 2-D elevation grid in metres, north up.
        res: pixel size in metres (square pixels).

    Returns:
        ``(dz_dx, dz_dy)``: float64 gradients (metres per metre) towards east and north.

    Raises:
        ValueError: if ``dem`` is not 2-D or ``res`` is not positive.
    """
    dem = np.asarray(dem)
    if dem.ndim != 2:
        raise ValueError(f"dem must be a 2-D grid, got shape {dem.shape}")
    if not res > 0:
        raise ValueError(f"res must be a positive pixel size in metres, got {res}")
    z = np.pad(dem.astype(np.float64, copy=False), 1, mode="edge")
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dz_dx = ((c + 2.0 * f + i) - (a + 2.0 * d + g)) / (8.0 * res)
    dz_dy = ((a + 2.0 * b + c) - (g + 2.0 * h + i)) / (8.0 * res)
    return dz_dx, dz_dy


def slope_degrees(dem: np.ndarray, res: float) -> np.ndarray:
    """Slope angle of a DEM in degrees: ``atan(sqrt(dz_dx^2 + dz_dy^2))``.

    The gradient is Horn's, see :func:`horn_gradient` (as ESRI Slope and ``gdaldem slope``).

    Args:
        dem: 2-D elevation grid in metres, north up.
        res: pixel size in metres (square pixels).

    Returns:
        float32 slope in [0, 90) degrees, same shape as ``dem``.
    """
    dz_dx, dz_dy = horn_gradient(dem, res)
    return np.degrees(np.arctan(np.hypot(dz_dx, dz_dy))).astype(np.float32)


def hillshade(dem: np.ndarray, res: float, azimuth_deg: float, altitude_deg: float) -> np.ndarray:
    r"""Shaded relief of a DEM lit by a sun at ``azimuth_deg`` and ``altitude_deg``.

    ESRI's hillshade formula (also ``gdaldem hillshade``), with Horn's gradient:

    .. math::

        H = 255 \, \max(0, \cos Z \cos S + \sin Z \sin S \cos(A_m - \mathrm{aspect}))

    where ``Z = 90 - altitude`` is the solar zenith angle, ``S`` the slope angle,
    ``A_m = 360 - azimuth + 90`` the sun's azimuth in math convention (counter-clockwise from
    east) and ``aspect`` the math-convention direction of steepest descent,
    ``atan2(-dz_dy, -dz_dx)`` with ``y`` north. It is computed in the equivalent vector form
    ``255 * max(0, n . s)``, ``n`` the unit surface normal ``(-dz_dx, -dz_dy, 1) / |.|`` and
    ``s`` the unit vector towards the sun, which needs no special case for flat pixels. A
    flat surface gives ``255 * sin(altitude)``. Unlike ``gdaldem`` (which maps to 1..255
    and keeps 0 for nodata) the value is not rounded.

    Args:
        dem: 2-D elevation grid in metres, north up.
        res: pixel size in metres (square pixels).
        azimuth_deg: sun azimuth, degrees clockwise from north (ESRI default 315).
        altitude_deg: sun elevation above the horizon in degrees (ESRI default 45).

    Returns:
        float32 hillshade in [0, 255], same shape as ``dem``; 0 is self-shadowed (cast
        shadows are not modelled, as in ESRI and GDAL).
    """
    dz_dx, dz_dy = horn_gradient(dem, res)
    zenith = math.radians(90.0 - altitude_deg)
    azimuth = math.radians(azimuth_deg)
    sun_east = math.sin(zenith) * math.sin(azimuth)
    sun_north = math.sin(zenith) * math.cos(azimuth)
    sun_up = math.cos(zenith)
    shade = (sun_up - dz_dx * sun_east - dz_dy * sun_north) / np.sqrt(
        1.0 + dz_dx * dz_dx + dz_dy * dz_dy
    )
    return (255.0 * np.clip(shade, 0.0, 1.0)).astype(np.float32)


def sun_position(
    lat: float,
    lon: float,
    date: str,
    utc_hour: float | None = None,
    solar_hour: float = SENTINEL2_SOLAR_HOUR,
) -> tuple[float, float]:
    """Sun azimuth and altitude at a place and date, by NOAA's solar-geometry formulas.

    With ``gamma = 2 pi / 365 (doy - 1 + (t_utc - 12) / 24)`` the fractional year, Spencer's
    (1971) Fourier series give the declination ``delta`` and the equation of time ``E``
    (minutes), as in NOAA's "General Solar Position Calculations":

    * ``delta = 0.006918 - 0.399912 cos g + 0.070257 sin g - 0.006758 cos 2g
      + 0.000907 sin 2g - 0.002697 cos 3g + 0.00148 sin 3g`` (radians);
    * ``E = 229.18 (0.000075 + 0.001868 cos g - 0.032077 sin g - 0.014615 cos 2g
      - 0.040849 sin 2g)``.

    Local solar time is ``solar_hour`` (default 10:30, Sentinel-2's overpass) or, when
    ``utc_hour`` is given, ``utc_hour + lon / 15 + E / 60``. The hour angle is
    ``h = 15 (t_solar - 12)`` degrees, and with latitude ``phi``:

    * altitude: ``sin(alt) = sin(phi) sin(delta) + cos(phi) cos(delta) cos(h)``;
    * azimuth (clockwise from north):
      ``atan2(sin h, cos h sin phi - tan delta cos phi) + 180``.

    Refraction is ignored (under 0.1 degree above 20 degrees altitude).

    Args:
        lat: latitude in degrees (north positive).
        lon: longitude in degrees (east positive); used for the clock time only.
        date: ISO date ``YYYY-MM-DD``.
        utc_hour: acquisition time in UTC hours, or None for ``solar_hour`` local solar time.
        solar_hour: local solar time in hours when ``utc_hour`` is None.

    Returns:
        ``(azimuth_deg, altitude_deg)``: azimuth clockwise from north in [0, 360), altitude
        above the horizon in degrees (negative when the sun is down).

    Raises:
        ValueError: if ``date`` is not an ISO date or ``lat`` is outside [-90, 90].
    """
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude must be in [-90, 90], got {lat}")
    try:
        day = dt.date.fromisoformat(str(date))
    except ValueError as err:
        raise ValueError(f"date must be an ISO date YYYY-MM-DD, got {date!r}") from err
    doy = day.timetuple().tm_yday
    days_in_year = 366 if calendar.isleap(day.year) else 365
    t_utc = utc_hour if utc_hour is not None else solar_hour - lon / 15.0
    g = 2.0 * math.pi / days_in_year * (doy - 1 + (t_utc - 12.0) / 24.0)
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    if utc_hour is None:
        t_solar = solar_hour
    else:
        eqtime = 229.18 * (
            0.000075
            + 0.001868 * math.cos(g)
            - 0.032077 * math.sin(g)
            - 0.014615 * math.cos(2 * g)
            - 0.040849 * math.sin(2 * g)
        )
        t_solar = utc_hour + lon / 15.0 + eqtime / 60.0
    h = math.radians(15.0 * (t_solar - 12.0))
    phi = math.radians(lat)
    sin_alt = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(h)
    altitude = math.degrees(math.asin(max(-1.0, min(1.0, sin_alt))))
    azimuth = math.degrees(
        math.atan2(math.sin(h), math.cos(h) * math.sin(phi) - math.tan(decl) * math.cos(phi))
    )
    return (azimuth + 180.0) % 360.0, altitude
