"""Stationary fractal noise of unit variance that can be evaluated window by window.

A fractal field has most of its variance at long wavelengths, so a single FFT over the whole
scene is the natural way to make one; that needs the whole scene in memory. Here the power
spectrum ``P(k) ~ (k^2 + k0^2)^(-exponent / 2)`` is split smoothly into two bands whose
variances add:

* the **low band** (wavelengths above about ``4 COARSE`` pixels) is synthesised once by FFT on
  a coarse grid (``COARSE`` pixels per cell) covering the scene and a margin, and interpolated
  into each window with cubic convolution (small: 1 / ``COARSE``^2 of the scene's pixels);
* the **high band** is white noise convolved with the band's compact kernel. The white noise
  is drawn in fixed blocks, each seeded by its own index, so any window (plus the kernel's
  radius) is reproduced exactly and adjacent windows join seamlessly.

Memory per window is a few copies of the window; the output depends only on the field's seed
and the pixel coordinates, never on the window layout.
"""

import math

import numpy as np
from scipy.signal import fftconvolve

#: Scene pixels per cell of the coarse low-band grid.
COARSE = 4
#: Radius (pixels) of the high-band convolution kernel.
KERNEL_RADIUS = 32
# Side of the blocks of seeded white noise.
_NOISE_BLOCK = 64
# Offset that keeps block indexes non-negative for seeding.
_INDEX_OFFSET = 1 << 20


class NoiseField:
    """A seeded fractal Gaussian field of unit variance over a scene and its surroundings.

    Args:
        seed: the field's seed; two fields with the same arguments are identical.
        exponent: spectral exponent (``2 + 2H`` for a fractional Brownian surface).
        corr_px: the low-frequency corner ``1 / k0`` in pixels: wavelengths beyond it carry
            equal power (the largest features).
        scene_px: (rows, cols) of the scene.
        reach_px: how far outside the scene windows may reach (halos, shifted windows).
    """

    def __init__(
        self,
        seed: int,
        exponent: float,
        corr_px: float,
        scene_px: tuple[int, int],
        reach_px: int = 64,
    ) -> None:
        self.seed = int(seed)
        self.exponent = float(exponent)
        self.corr_px = float(corr_px)
        self._white_seed = int(np.random.SeedSequence([self.seed, 1]).generate_state(1)[0])
        # The coarse grid wraps around; a margin of a few correlation lengths hides that.
        self.margin = int(math.ceil(min(2.0 * corr_px, 3000.0))) + reach_px + 4 * COARSE
        rows, cols = (int(math.ceil((n + 2 * self.margin) / COARSE)) + 4 for n in scene_px)
        rng = np.random.default_rng([self.seed, 0])
        white = rng.standard_normal((rows, cols))
        ky = np.fft.fftfreq(rows)[:, None] / COARSE
        kx = np.fft.rfftfreq(cols)[None, :] / COARSE
        amp = self._amplitude(np.hypot(ky, kx)) * _low_pass(np.hypot(ky, kx)) / COARSE
        amp[0, 0] = 0.0
        self._coarse = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(rows, cols))
        ky_full = np.fft.fftfreq(rows)[:, None] / COARSE
        kx_full = np.fft.fftfreq(cols)[None, :] / COARSE
        k_full = np.hypot(ky_full, kx_full)
        low_var = float(np.mean((self._amplitude(k_full) * _low_pass(k_full) / COARSE) ** 2))
        self._kernel = self._high_kernel()
        high_var = float((self._kernel**2).sum())
        scale = 1.0 / math.sqrt(low_var + high_var)
        self._coarse = (self._coarse * scale).astype(np.float32)
        self._kernel = (self._kernel * scale).astype(np.float32)

    def _amplitude(self, k: np.ndarray) -> np.ndarray:
        return (k * k + (1.0 / self.corr_px) ** 2) ** (-self.exponent / 4.0)

    def _high_kernel(self) -> np.ndarray:
        """The high band's convolution kernel, tapered to :data:`KERNEL_RADIUS`."""
        n = 8 * KERNEL_RADIUS
        k = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
        amp = self._amplitude(k) * np.sqrt(np.clip(1.0 - _low_pass(k) ** 2, 0.0, 1.0))
        kernel = np.fft.fftshift(np.real(np.fft.ifft2(amp)))
        c, r = n // 2, KERNEL_RADIUS
        kernel = kernel[c - r : c + r + 1, c - r : c + r + 1]
        d = np.hypot(*np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij"))
        return kernel * np.where(d <= r, 0.5 * (1.0 + np.cos(np.pi * d / (r + 1))), 0.0)

    def window(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """The field on rows ``row .. row + height`` and columns ``col .. col + width``.

        Coordinates are scene pixels and may lie outside the scene by up to ``reach_px``.

        Returns:
            float32 array ``[height, width]``.
        """
        return self._low(row, col, height, width) + self._high(row, col, height, width)

    def _low(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        rows = _cubic_weights(row + self.margin, height, self._coarse.shape[0])
        cols = _cubic_weights(col + self.margin, width, self._coarse.shape[1])
        (r0, wr), (c0, wc) = rows, cols
        block = self._coarse[r0 : r0 + wr.shape[1], c0 : c0 + wc.shape[1]]
        return (wr @ block @ wc.T).astype(np.float32)

    def _high(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        r = KERNEL_RADIUS
        white = white_noise(self._white_seed, row - r, col - r, height + 2 * r, width + 2 * r)
        return fftconvolve(white, self._kernel, mode="valid").astype(np.float32)


def white_noise(seed: int, row: int, col: int, height: int, width: int) -> np.ndarray:
    """Unit Gaussian white noise on a window, the same whatever windows it is read in.

    The noise is drawn in fixed blocks of the scene, each seeded by ``seed`` and its index.

    Returns:
        float32 array ``[height, width]``.
    """
    out = np.empty((height, width), np.float32)
    b = _NOISE_BLOCK
    for br in range(row // b, (row + height - 1) // b + 1):
        for bc in range(col // b, (col + width - 1) // b + 1):
            rng = np.random.default_rng([seed, br + _INDEX_OFFSET, bc + _INDEX_OFFSET])
            block = rng.standard_normal((b, b), dtype=np.float32)
            r0, c0 = max(br * b, row), max(bc * b, col)
            r1, c1 = min((br + 1) * b, row + height), min((bc + 1) * b, col + width)
            out[r0 - row : r1 - row, c0 - col : c1 - col] = block[
                r0 - br * b : r1 - br * b, c0 - bc * b : c1 - bc * b
            ]
    return out


def _low_pass(k: np.ndarray) -> np.ndarray:
    """Smooth split of the spectrum: 1 below ``1 / (8 COARSE)``, 0 above ``1 / (4 COARSE)``."""
    k1, k2 = 1.0 / (8 * COARSE), 1.0 / (4 * COARSE)
    t = np.clip((k - k1) / (k2 - k1), 0.0, 1.0)
    return np.cos(0.5 * np.pi * t)


def _cubic_weights(start: int, n: int, cells: int) -> tuple[int, np.ndarray]:
    """Cubic-convolution weights (Keys, a = -0.5) from coarse cells to ``n`` fine pixels.

    Args:
        start: first fine pixel, counted from the coarse grid's origin.
        n: number of fine pixels.
        cells: number of coarse cells.

    Returns:
        ``(first, weights)``: the first coarse cell used and an ``[n, m]`` weight matrix over
        cells ``first .. first + m``.
    """
    pos = (start + np.arange(n) + 0.5) / COARSE - 0.5  # fine pixel centres, in cells
    base = np.floor(pos).astype(int)
    first = int(base.min()) - 1
    m = int(base.max()) - first + 3
    if first < 0 or first + m > cells:
        raise ValueError("window reaches beyond the noise field's margin")
    weights = np.zeros((n, m))
    frac = pos - base
    for tap in range(-1, 3):
        weights[np.arange(n), base - first + tap] = _keys(frac - tap)
    return first, weights


def _keys(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5``."""
    x = np.abs(x)
    return np.where(
        x <= 1.0,
        1.5 * x**3 - 2.5 * x**2 + 1.0,
        np.where(x < 2.0, -0.5 * x**3 + 2.5 * x**2 - 4.0 * x + 2.0, 0.0),
    )
