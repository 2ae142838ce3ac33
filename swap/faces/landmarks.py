"""68 landmarks (dlib's shape predictor) and the similarity alignment to a square crop.

Alignment uses dlib's own canonical face template (`get_face_chip_details`, the same similarity
transform dlib uses before its recogniser), expressed as a 2x3 affine so crops, masks and the
warp back into the frame in `convert` all share one matrix.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .detection import _dlib_model

DEFAULT_SIZE = 256
DEFAULT_PADDING = 0.25          # dlib chip padding: 0.25 keeps brows to chin plus a margin


def landmarks(rgb: np.ndarray, box: Sequence[float], refeed: int = 1) -> np.ndarray:
    """68x2 float32 landmarks for a face box (x0, y0, x1, y1). `refeed` > 1 (faceswap's re-feed): the mean of
    the predictor's fits on that many boxes, the given one and copies shifted by 4% of its size around a
    circle and scaled by -+3% in turn; the predictor's dependence on the exact box (its jitter) averages out."""
    import dlib

    predict = _dlib_model("landmarks")
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    w, h = x1 - x0, y1 - y0
    fits = []
    for k in range(max(1, int(refeed))):
        dx = dy = 0.0
        sc = 1.0
        if k:
            a = 2 * np.pi * (k - 1) / (refeed - 1)
            dx, dy, sc = 0.04 * w * np.cos(a), 0.04 * h * np.sin(a), 1.03 if k % 2 else 0.97
        cx, cy = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy
        rect = dlib.rectangle(*(int(round(v)) for v in (cx - w * sc / 2, cy - h * sc / 2,
                                                         cx + w * sc / 2, cy + h * sc / 2)))
        fits.append([(p.x, p.y) for p in predict(rgb, rect).parts()])
    return np.mean(np.asarray(fits, np.float32), 0)


def _shape(points: np.ndarray):
    import dlib

    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
    return dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points])


def align_matrix(points: np.ndarray, size: int = DEFAULT_SIZE, padding: float = DEFAULT_PADDING) -> np.ndarray:
    """2x3 similarity matrix mapping frame pixels to the aligned size x size crop."""
    import dlib

    cd = dlib.get_face_chip_details(_shape(points), size, padding)
    r = cd.rect
    c = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    s = (cd.cols - 1) / max(r.right() - r.left(), 1e-6)
    a = -cd.angle
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = np.zeros((2, 3), np.float64)
    m[:, :2] = s * rot
    m[:, 2] = -s * rot @ c + (cd.cols - 1) / 2
    return m


def warp_crop(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def crop_face_box(shape: Sequence[int]) -> tuple:
    """(x0, y0, x1, y1) of the face in an aligned crop of `shape` (it fills the crop's centre): the box to
    use where the detector finds nothing in a crop (blurred, dark, or itself generated)."""
    h, w = shape[:2]
    return (0.15 * w, 0.15 * h, 0.85 * w, 0.9 * h)
