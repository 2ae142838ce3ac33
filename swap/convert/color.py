"""Colour matching of a swapped face to the face it replaces (convert's `--color`), as a registry.

Each function takes the swapped crop, the original crop (RGB uint8, same size) and a boolean mask of
the face area, and returns the swapped crop recoloured so that, inside the mask, its colour
statistics match the original's (lighting of the target scene, not of the training photos).
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from provenance.registry import Registry

ColorFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
COLOR_TRANSFERS = Registry("colour transfer", option="--color")     # name -> fn(swapped, original, mask)
register_color = COLOR_TRANSFERS.register


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


@register_color("none")
def _none(swapped: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return swapped


@register_color("avg")
def _avg(swapped: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """faceswap's avg-color: shift each channel by the difference of the means inside the mask."""
    if not mask.any():
        return swapped
    diff = original[mask].astype(np.float32).mean(0) - swapped[mask].astype(np.float32).mean(0)
    return _u8(swapped.astype(np.float32) + diff)


@register_color("lab")
def _lab(swapped: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard et al. colour transfer: match mean and std of each L*a*b* channel inside the mask."""
    if mask.sum() < 16:
        return swapped
    s = cv2.cvtColor(swapped, cv2.COLOR_RGB2LAB).astype(np.float32)
    o = cv2.cvtColor(original, cv2.COLOR_RGB2LAB).astype(np.float32)
    sm, ss = s[mask].mean(0), s[mask].std(0) + 1e-3
    om, os_ = o[mask].mean(0), o[mask].std(0) + 1e-3
    out = (s - sm) * (os_ / ss) + om
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


@register_color("hist")
def _hist(swapped: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Histogram matching per RGB channel (faceswap's match-hist), statistics from inside the mask."""
    if mask.sum() < 16:
        return swapped
    out = np.empty_like(swapped)
    for c in range(3):
        src, ref = swapped[..., c][mask], original[..., c][mask]
        s_cdf = np.cumsum(np.bincount(src, minlength=256)).astype(np.float64) / src.size
        r_cdf = np.cumsum(np.bincount(ref, minlength=256)).astype(np.float64) / ref.size
        lut = np.clip(np.searchsorted(r_cdf, s_cdf), 0, 255).astype(np.uint8)
        out[..., c] = lut[swapped[..., c]]
    return out


@register_color("seamless")
def _seamless(swapped: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """faceswap's seamless-clone: Poisson blending (OpenCV's seamlessClone). Inside the mask the result keeps
    the swapped face's gradients (its detail) while its values are solved to meet the original crop at the
    mask's edge, so lighting and skin tone follow the target scene with no seam."""
    if mask.sum() < 16:
        return swapped
    pad = 8     # seamlessClone wants the mask clear of the border: pad, clone, crop back
    src = cv2.copyMakeBorder(swapped, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    dst = cv2.copyMakeBorder(original, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    m = cv2.copyMakeBorder(mask.astype(np.uint8) * 255, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(m)
    out = cv2.seamlessClone(src, dst, m, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    return out[pad:-pad, pad:-pad]


def color_transfer(name: str, swapped: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return COLOR_TRANSFERS.lookup(name)(swapped, original, mask.astype(bool))
