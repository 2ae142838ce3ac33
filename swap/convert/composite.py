"""Putting a swapped crop back: unsharp-mask sharpening and the warp + blend into the frame."""
from __future__ import annotations

import cv2
import numpy as np


def sharpen(face: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp mask (faceswap's convert sharpening): face + amount * (face - gaussian blur), the blur's
    sigma 0.6% of the crop (about 1.5 px at 256), so only the fine detail the decoder smoothed is lifted."""
    if amount <= 0:
        return face
    f = face.astype(np.float32)
    soft = cv2.GaussianBlur(f, (0, 0), max(0.5, 0.006 * face.shape[0]))
    return np.clip(f + amount * (f - soft) + 0.5, 0, 255).astype(np.uint8)


def _paste(frame: np.ndarray, face: np.ndarray, mask: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Warp a crop and its soft mask back into the frame (only over the face's bounding box) and blend.
    Returns the frame-sized mask actually applied, as uint8 0-255."""
    h, w = frame.shape[:2]
    s = face.shape[0]
    corners = np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64) @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    full = np.zeros((h, w), np.uint8)
    if x1 <= x0 or y1 <= y0:
        return full
    m = inv.copy()
    m[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    fw = cv2.warpAffine(face, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mw = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    a = mw[..., None]
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - a) + fw.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)
    full[y0:y1, x0:x1] = np.clip(mw * 255 + 0.5, 0, 255).astype(np.uint8)
    return full
