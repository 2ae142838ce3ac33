"""Keyed spread-spectrum watermark in luma on a resolution-independent grid (numpy + OpenCV only).

Embedding: the coded payload (108 bits) is spread over a GRID x GRID canvas of chips: every chip belongs
to one coded bit (keyed permutation) and carries that bit times a keyed +-1 PN sign. The canvas is
band-limited (its lowest frequencies removed: they are both the most visible and the most masked by
picture content), stretched to the frame size with bilinear interpolation and added equally to R, G and
B (so only luma changes), scaled per pixel by a texture mask (stronger where the picture is busy, weaker
on flat skin and sky). The same canvas goes on every frame, so a frame-rate change, an excerpt or a
dropped frame changes nothing, and per-frame correlations simply add up over the video.

Detection: each frame's luma is resized to the canonical grid (any resolution or aspect: a downscaled
copy lands on the same grid), whitened (minus its local mean) and correlated with the PN signs, chip
group by chip group: one number per coded bit, normalised to a z-score. Summed over frames they go to the
soft Viterbi decoder (ecc.py); the CRC and a correlation threshold decide. A mirrored copy is tried too.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple

import cv2
import numpy as np

GRID = 128                 # canonical chip grid (GRID x GRID over the whole frame, whatever its aspect)
DEFAULT_KEY = b"veriswap-watermark-v1"
DEFAULT_STRENGTH = 3.0     # mean luma amplitude (0-255 scale) before the texture mask: ~41 dB PSNR


@dataclass(frozen=True)
class Layout:
    """The keyed chip layout: which coded bit each chip carries, and its PN sign."""

    bit_of: np.ndarray     # (GRID*GRID,) int: coded bit index of each chip
    pn: np.ndarray         # (GRID*GRID,) float32 +-1
    n_coded: int
    grid: int

    def spread(self, coded: np.ndarray) -> np.ndarray:
        """+-1 canvas (grid x grid) for coded bits (0/1)."""
        sym = 2.0 * np.asarray(coded, np.float32) - 1.0
        return (self.pn * sym[self.bit_of]).reshape(self.grid, self.grid)

    def despread(self, residual: np.ndarray) -> Tuple[np.ndarray, float]:
        """Per-coded-bit correlation sums of a whitened canvas, and the residual's std per chip."""
        r = residual.reshape(-1).astype(np.float64) * self.pn
        sums = np.bincount(self.bit_of, weights=r, minlength=self.n_coded)
        return sums, float(residual.std()) + 1e-9


@lru_cache(maxsize=8)
def layout(n_coded: int, key: bytes = DEFAULT_KEY, grid: int = GRID) -> Layout:
    seed = int.from_bytes(hashlib.sha256(key + b"|layout|%d|%d" % (n_coded, grid)).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    n = grid * grid
    bit_of = rng.permutation(np.arange(n) % n_coded)
    pn = rng.choice(np.array([-1.0, 1.0], np.float32), n)
    return Layout(bit_of.astype(np.int64), pn.astype(np.float32), n_coded, grid)


def _bandpass(canvas: np.ndarray) -> np.ndarray:
    """Remove the canvas's lowest frequencies (a wide blur subtracted); keep unit RMS."""
    c = canvas.astype(np.float32)
    c = c - cv2.GaussianBlur(c, (0, 0), 4.0, borderType=cv2.BORDER_REFLECT)
    return c / (c.std() + 1e-9)


def whiten(grid_luma: np.ndarray) -> np.ndarray:
    """Picture content out, watermark in: the sign of the luma minus its 3x3 median, on the chip grid.
    The median follows edges that a local mean smears into the residual, and the sign keeps the strong
    residuals left at edges and texture from outvoting the weak ones (a robust correlator). Measured at
    CRF 28 on moving real faces, per-frame z: 5.6 vs 1.1 for mean-subtraction without the sign."""
    y = np.ascontiguousarray(grid_luma, np.float32)
    return np.sign(y - cv2.medianBlur(y, 3))


def to_grid(frame: np.ndarray, grid: int = GRID) -> np.ndarray:
    """Luma of an RGB (or already single-channel) uint8 frame, area-resized to grid x grid."""
    if frame.ndim == 3:
        y = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    else:
        y = frame
    return cv2.resize(y, (grid, grid), interpolation=cv2.INTER_AREA).astype(np.float32)


def texture_mask(frame: np.ndarray, floor: float = 0.35) -> np.ndarray:
    """Per-pixel strength factor (mean ~1): local contrast at 1/4 resolution, smoothed, normalised."""
    h, w = frame.shape[:2]
    small = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame,
                       (max(w // 4, 8), max(h // 4, 8)), interpolation=cv2.INTER_AREA).astype(np.float32)
    act = np.abs(small - cv2.blur(small, (3, 3)))
    act = cv2.blur(act, (5, 5))
    act = act / (act.mean() + 1e-6)
    m = floor + (1.0 - floor) * np.minimum(act, 2.5)
    m = m / m.mean()
    return cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)


class Pattern:
    """The full-resolution additive luma pattern for one payload and one frame size (computed once)."""

    def __init__(self, coded: np.ndarray, size: Tuple[int, int], strength: float = DEFAULT_STRENGTH,
                 key: bytes = DEFAULT_KEY, grid: int = GRID):
        w, h = size
        lay = layout(len(coded), key, grid)
        canvas = _bandpass(lay.spread(coded))
        self.size = (w, h)
        self.strength = strength
        self.full = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(strength)

    def apply(self, frame: np.ndarray, mask: bool = True) -> np.ndarray:
        """Watermarked copy of an RGB uint8 frame of this pattern's size."""
        h, w = frame.shape[:2]
        if (w, h) != self.size:
            raise ValueError(f"pattern is {self.size[0]}x{self.size[1]}, frame is {w}x{h}")
        delta = self.full * texture_mask(frame) if mask else self.full
        out = frame.astype(np.float32)
        out += delta[..., None] if frame.ndim == 3 else delta
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def frame_scores(frame_or_grid: np.ndarray, n_coded: int, key: bytes = DEFAULT_KEY, grid: int = GRID,
                 mirrored: bool = False) -> np.ndarray:
    """z-scores, one per coded bit, for one frame (RGB uint8 at any size, or a grid x grid luma).
    Without a watermark they are ~N(0, 1); with one, they lean to the coded bits' signs."""
    g = frame_or_grid if frame_or_grid.shape[:2] == (grid, grid) and frame_or_grid.ndim == 2 \
        else to_grid(frame_or_grid, grid)
    if mirrored:
        g = g[:, ::-1]
    lay = layout(n_coded, key, grid)
    sums, sd = lay.despread(whiten(g))
    chips = np.bincount(lay.bit_of, minlength=n_coded)
    return sums / (sd * np.sqrt(chips))
