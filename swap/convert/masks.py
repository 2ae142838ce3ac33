"""Face masks for compositing a swapped crop back into its frame (convert's `--mask`).

- `hull`: the convex hull of the 68 landmarks with the brows raised towards the forehead (faceswap's
  "extended" hull), eroded and feathered so the seam falls inside the face, not on the hairline.
- `learned`: the mask predicted by the model's mask head (`hq`), feathered the same way.
"""
from __future__ import annotations

from typing import Callable, Optional

import cv2
import numpy as np

from provenance.registry import Registry

from ..errors import InputError

MaskFn = Callable[[np.ndarray, int, Optional[np.ndarray]], np.ndarray]
MASKS = Registry("mask", option="--mask")       # name -> fn(landmarks_crop, size, learned) -> 0/1 float32 mask


def hull_mask(landmarks_crop: np.ndarray, size: int) -> np.ndarray:
    """Binary (0/1 float32) size x size mask of the face area from 68 landmarks in crop pixels."""
    pts = np.asarray(landmarks_crop, np.float32).copy()
    nose = pts[30]
    # raise the brows by 30% of their distance from the nose tip: covers the lower forehead
    pts[17:27] = pts[17:27] + 0.3 * (pts[17:27] - nose)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    m = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(m, hull, 1)
    return m.astype(np.float32)


@MASKS.register("hull")
def _hull(landmarks_crop: np.ndarray, size: int, learned: Optional[np.ndarray]) -> np.ndarray:
    return hull_mask(landmarks_crop, size)


@MASKS.register("learned")
def _learned(landmarks_crop: np.ndarray, size: int, learned: Optional[np.ndarray]) -> np.ndarray:
    if learned is None:
        raise InputError("this model has no mask head (train --model hq for a learned mask); use --mask hull")
    return (learned > 0.5).astype(np.float32)


def feather(mask: np.ndarray, face_size: float, erode: float = 0.03, blur: float = 0.06) -> np.ndarray:
    """Erode by `erode` x face size, then blur with a Gaussian of `blur` x face size (soft seam)."""
    m = mask.astype(np.float32)
    e = int(round(erode * face_size))
    if e > 0:
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * e + 1, 2 * e + 1)))
    k = int(round(blur * face_size)) | 1
    if k > 1:
        m = cv2.GaussianBlur(m, (k, k), 0)
    return np.clip(m, 0.0, 1.0)


def face_mask(kind: str, landmarks_crop: np.ndarray, size: int, learned: Optional[np.ndarray],
              coverage_margin: int, erode: float = 0.03, blur: float = 0.06) -> np.ndarray:
    """The soft compositing mask of one face in crop pixels; zero outside the part the model saw."""
    m = MASKS.lookup(kind)(landmarks_crop, size, learned)
    if coverage_margin > 0:
        c = coverage_margin
        m[:c], m[-c:], m[:, :c], m[:, -c:] = 0, 0, 0, 0
    eyes = np.asarray(landmarks_crop, np.float32)
    face_size = float(np.linalg.norm(eyes[36:42].mean(0) - eyes[42:48].mean(0))) * 2.5
    return feather(m, face_size, erode, blur)
