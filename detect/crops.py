"""Face crops for the detector: a square of `scale` x the face box (FaceForensics++/DeepfakeBench use
1.3), centred on the box, resized to `size` px. Parts outside the frame are filled by edge replication
(no black bars that a classifier could learn), and landmarks follow the crop."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import cv2
import numpy as np

CROP_SCALE = 1.3
CROP_SIZE = 256


@dataclass
class Crop:
    rgb: np.ndarray                   # size x size x 3 uint8
    matrix: np.ndarray                # 2x3 frame px -> crop px
    landmarks: Optional[np.ndarray]   # 68x2 in crop px (None if not given)


def crop_matrix(box: Sequence[float], scale: float = CROP_SCALE, size: int = CROP_SIZE) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    side = max(x1 - x0, y1 - y0) * scale
    k = size / max(side, 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[k, 0, size / 2 - k * cx], [0, k, size / 2 - k * cy]], np.float64)


def crop_face(rgb: np.ndarray, box: Sequence[float], landmarks: Optional[np.ndarray] = None,
              scale: float = CROP_SCALE, size: int = CROP_SIZE) -> Crop:
    m = crop_matrix(box, scale, size)
    out = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA if m[0, 0] < 1 else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    pts = None
    if landmarks is not None:
        pts = np.asarray(landmarks, np.float64) @ m[:, :2].T + m[:, 2]
    return Crop(out, m, pts)


def evenly_spaced(indices: Sequence[int], k: int) -> List[int]:
    """k evenly spaced items of a sorted sequence (all of them when k <= 0 or k >= len)."""
    idx = list(indices)
    if k <= 0 or k >= len(idx):
        return idx
    pos = np.linspace(0, len(idx) - 1, k).round().astype(int)
    return [idx[p] for p in sorted(set(pos.tolist()))]
