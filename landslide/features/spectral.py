"""Spectral indexes computed from reflectance bands."""

import numpy as np


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """Normalised Difference Vegetation Index, ``(nir - red) / (nir + red)``.

    For Sentinel-2, ``red`` is band B4 and ``nir`` band B8 (both at 10 m).

    Args:
        red: red reflectance.
        nir: near-infrared reflectance, same shape and units as ``red``.

    Returns:
        float32 NDVI in [-1, 1] for non-negative inputs; 0 where ``nir + red`` is 0.
    """
    red = np.asarray(red, dtype=np.float32)
    nir = np.asarray(nir, dtype=np.float32)
    total = nir + red
    out = np.zeros(np.broadcast_shapes(red.shape, nir.shape), dtype=np.float32)
    np.divide(nir - red, total, out=out, where=total != 0)
    return out
