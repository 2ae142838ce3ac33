"""Self-blended images (SBI, Shiohara & Yamasaki, CVPR 2022): a fake made from one real face alone.

A copy of the face is changed in colour (RGB shift, hue/saturation, brightness/contrast), in frequency
(downscale-upscale or sharpen) and slightly in geometry (scale/shift), then blended back into the
original inside a mask: the landmark convex hull, randomly deformed and feathered, at a random blend
ratio. The result carries the artefacts every face swap has (blending boundary, colour and resolution
mismatch, landmark misalignment) without any particular swap method, which is why it generalises.
"""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from .augment import down_up

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def _odd(k: float) -> int:
    k = max(3, int(k))
    return k if k % 2 else k + 1


def blend_mask(pts: Optional[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """float32 mask in [0, 1]: deformed, feathered landmark hull (an ellipse without landmarks)."""
    m = np.zeros((size, size), np.float32)
    if pts is not None and len(pts) == 68:
        p = np.asarray(pts, np.float32).copy()
        if rng.random() < 0.5:                       # extend the hull over the lower forehead
            nose = p[30]
            p[17:27] = nose + (p[17:27] - nose) * rng.uniform(1.1, 1.4)
        hull = cv2.convexHull(p.astype(np.int32))
        cv2.fillConvexPoly(m, hull, 1.0)
    else:
        cv2.ellipse(m, (size // 2, size // 2), (int(size * 0.3), int(size * 0.38)), 0, 0, 360, 1.0, -1)
    # deform: a random affine around the mask's centre (stands in for SBI's elastic transform)
    ys, xs = np.nonzero(m)
    if xs.size:
        c = (float(xs.mean()), float(ys.mean()))
        a = cv2.getRotationMatrix2D(c, rng.uniform(-5, 5), 1.0)
        a[:, :2] = a[:, :2] @ np.diag(rng.uniform(0.9, 1.08, 2))
        a[:, 2] = np.asarray(c) - a[:, :2] @ np.asarray(c)
        m = cv2.warpAffine(m, a, (size, size))
    # feather (two blurs: the first erodes/dilates after re-thresholding, the second smooths)
    k1 = _odd(size * rng.uniform(0.02, 0.1))
    m = cv2.GaussianBlur(m, (k1, k1), 0)
    m = (m > rng.uniform(0.2, 0.8)).astype(np.float32)
    k2 = _odd(size * rng.uniform(0.02, 0.1))
    m = cv2.GaussianBlur(m, (k2, k2), 0)
    return np.clip(m, 0.0, 1.0) * float(rng.choice(BLEND_RATIOS))


def _color(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    f = img.astype(np.float32)
    f += rng.uniform(-20, 20, 3)                                    # RGB shift
    hsv = cv2.cvtColor(np.clip(f, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-5, 5)) % 180         # hue (OpenCV: 0..180)
    hsv[..., 1] *= rng.uniform(0.85, 1.15)
    f = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    f = f * rng.uniform(0.9, 1.1) + rng.uniform(-10, 10)            # brightness / contrast
    return np.clip(f, 0, 255).astype(np.uint8)


def _frequency(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return down_up(img, rng.uniform(0.35, 0.8))
    blur = cv2.GaussianBlur(img, (0, 0), 1.5)
    return np.clip(img.astype(np.float32) * 1.6 - blur.astype(np.float32) * 0.6, 0, 255).astype(np.uint8)


def self_blend(img: np.ndarray, landmarks: Optional[np.ndarray], rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """(blended RGB uint8, mask float32) from one real face crop and its 68 landmarks (crop px)."""
    h, w = img.shape[:2]
    src, tgt = img.copy(), img.copy()
    if rng.random() < 0.5:
        src = _color(src, rng)
    else:
        tgt = _color(tgt, rng)
    src = _frequency(src, rng)
    a = np.array([[rng.uniform(0.95, 1.05), 0, 0], [0, rng.uniform(0.95, 1.05), 0]], np.float64)
    a[:, 2] = (1 - a[[0, 1], [0, 1]]) * (w / 2, h / 2) + rng.uniform(-0.03, 0.03, 2) * (w, h)
    src = cv2.warpAffine(src, a, (w, h), borderMode=cv2.BORDER_REFLECT)
    mask = blend_mask(landmarks, w, rng) if h == w else cv2.resize(blend_mask(landmarks, max(h, w), rng), (w, h))
    out = src.astype(np.float32) * mask[..., None] + tgt.astype(np.float32) * (1 - mask[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask
