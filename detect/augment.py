"""Training augmentations in the manner of the DFDC winner: JPEG quality 60-100, Gaussian noise, blur,
horizontal flip, grayscale, brightness/contrast, small shift/scale, downscale-upscale, and cutout of a landmark region
(eyes, nose or mouth) so the model cannot rely on one part of the face.

Each augmentation is (probability, function(img, landmarks, rng) -> img) in a registry; `strength`
scales every probability (0 turns augmentation off)."""
from __future__ import annotations

from typing import Callable, Optional

import cv2
import numpy as np

from provenance.registry import Registry

AugFn = Callable[[np.ndarray, Optional[np.ndarray], np.random.Generator], np.ndarray]
AUGMENTATIONS = Registry("augmentation")       # name -> (probability, fn)
REGIONS = {"eyes": list(range(36, 48)) + list(range(17, 27)), "nose": list(range(27, 36)), "mouth": list(range(48, 68))}


def register(name: str, p: float):
    def deco(fn: AugFn) -> AugFn:
        AUGMENTATIONS.register(name, (p, fn))
        return fn
    return deco


@register("cutout", 0.3)
def cutout(img, pts, rng):
    h, w = img.shape[:2]
    out = img.copy()
    if pts is not None and len(pts) == 68 and rng.random() < 0.7:
        region = pts[REGIONS[rng.choice(list(REGIONS))]]
        x0, y0 = np.floor(region.min(0) - 0.04 * w).astype(int)
        x1, y1 = np.ceil(region.max(0) + 0.04 * w).astype(int)
    else:
        s = int(w * rng.uniform(0.15, 0.35))
        x0, y0 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        x1, y1 = x0 + s, y0 + s
    out[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 0
    return out


@register("shift_scale", 0.3)
def shift_scale(img, pts, rng):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-10, 10), rng.uniform(0.9, 1.1))
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * (w, h)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)


@register("flip", 0.5)
def flip(img, pts, rng):
    return np.ascontiguousarray(img[:, ::-1])


@register("brightness_contrast", 0.3)
def brightness_contrast(img, pts, rng):
    a, b = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    return np.clip(img.astype(np.float32) * a + b, 0, 255).astype(np.uint8)


@register("blur", 0.15)
def blur(img, pts, rng):
    k = int(rng.choice([3, 5]))
    return cv2.GaussianBlur(img, (k, k), 0)


@register("noise", 0.15)
def noise(img, pts, rng):
    return np.clip(img.astype(np.float32) + rng.normal(0, rng.uniform(3, 10), img.shape), 0, 255).astype(np.uint8)


@register("grayscale", 0.1)
def grayscale(img, pts, rng):
    return np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def down_up(img: np.ndarray, scale: float) -> np.ndarray:
    """`img` resized to `scale` of its size (area) and back (linear): the detail a smaller source lacks."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@register("downscale", 0.2)
def downscale(img, pts, rng):
    """The whole crop down to 25-70 % and back: a face from a small or re-scaled video (FF++ c40, a 0.5x
    re-upload) must not look fake just for its softness, and SBI's frequency cue must survive it."""
    return down_up(img, rng.uniform(0.25, 0.7))


@register("jpeg", 0.5)
def jpeg(img, pts, rng):
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 101))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy() if ok else img


def augment(img: np.ndarray, landmarks: Optional[np.ndarray], rng: np.random.Generator,
            strength: float = 1.0) -> np.ndarray:
    """Apply each registered augmentation with its probability x strength, in registry order
    (region cutout first, while landmarks still match the pixels; JPEG last, like a re-upload)."""
    for p, fn in AUGMENTATIONS.values():
        if strength > 0 and rng.random() < p * strength:
            img = fn(img, landmarks, rng)
    return img
