"""Colour correction and compositing of a warped source face into the target frame.

- colour: `lab` (Reinhard: mean/std of each L*a*b* channel inside the mask matched to the target face),
  `avg` (per-channel mean shift), `none`.
- mask: the convex hull of the target's extended landmarks (brows lifted to the forehead), limited to the
  pixels the warp covered, eroded and feathered so the seam falls inside the face.
- blend: `alpha` (feathered mask) or `seamless` (Poisson, OpenCV's seamlessClone, inside the eroded hull).
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from ..convert.masks import feather   # the same soft seam convert uses

COLORS = ("lab", "avg", "none")
BLENDS = ("alpha", "seamless")


def face_size(points: np.ndarray) -> float:
    """A face's scale in px: 2.5 x the distance between the eye centres (as swap's masks use)."""
    p = np.asarray(points, np.float64)
    return float(np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0))) * 2.5


def hull_mask(points: np.ndarray, shape: Tuple[int, int], offset: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """0/1 float32 mask of the convex hull of `points` (frame px) in an array of `shape` whose (0, 0) is
    frame pixel `offset`."""
    m = np.zeros(shape[:2], np.float32)
    hull = cv2.convexHull(np.round(np.asarray(points, np.float64) - offset).astype(np.int32))
    cv2.fillConvexPoly(m, hull, 1.0)
    return m


def match_color(kind: str, face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Recolour `face` so that inside `mask` (bool) its statistics match `target`'s (same-size RGB uint8)."""
    if kind == "none" or mask.sum() < 16:
        return face
    if kind == "avg":
        diff = target[mask].astype(np.float32).mean(0) - face[mask].astype(np.float32).mean(0)
        return np.clip(face.astype(np.float32) + diff + 0.5, 0, 255).astype(np.uint8)
    if kind == "lab":
        s = cv2.cvtColor(face, cv2.COLOR_RGB2LAB).astype(np.float32)
        t = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
        sm, ss = s[mask].mean(0), s[mask].std(0) + 1e-3
        tm, ts = t[mask].mean(0), t[mask].std(0) + 1e-3
        out = (s - sm) * (ts / ss) + tm
        return cv2.cvtColor(np.clip(out + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    raise ValueError(f"unknown colour correction {kind!r}; choose from {', '.join(COLORS)}")


def composite(frame: np.ndarray, warped: np.ndarray, cover: np.ndarray, roi: Tuple[int, int, int, int],
              dst_pts: np.ndarray, color: str = "lab", blend: str = "alpha", erode: float = 0.03,
              blur: float = 0.08) -> np.ndarray:
    """Blend the warped face (covering `roi` of `frame`) into `frame` in place. `dst_pts` are the target's
    extended landmarks in frame px. Returns the frame-sized mask applied (uint8 0-255)."""
    h, w = frame.shape[:2]
    full = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = roi
    if x1 <= x0 or y1 <= y0:
        return full
    size = face_size(dst_pts[:68])
    hard = hull_mask(dst_pts, (y1 - y0, x1 - x0), (x0, y0)) * cover
    core = feather(hard, size, erode, 0.0) > 0.5              # the eroded face: colour statistics come from here
    target = frame[y0:y1, x0:x1]
    face = match_color(color, warped, target, core)
    if blend == "seamless":
        # Poisson: gradients of the source face, boundary values of the target (no hard seam, no colour jump);
        # pad so the mask stays clear of the border (seamlessClone's requirement)
        pad = 8
        src = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        dst = cv2.copyMakeBorder(np.ascontiguousarray(target), pad, pad, pad, pad, cv2.BORDER_REFLECT)
        m = cv2.copyMakeBorder(core.astype(np.uint8) * 255, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        if core.sum() < 16:
            return full
        bx, by, bw, bh = cv2.boundingRect(m)
        cloned = cv2.seamlessClone(src, dst, m, (bx + bw // 2, by + bh // 2), cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
        alpha = feather(core.astype(np.float32), size, 0.0, min(blur, 0.03))   # soften the clone's own edge
        face = cloned
    elif blend == "alpha":
        alpha = feather(hard, size, erode, blur)
    else:
        raise ValueError(f"unknown blend {blend!r}; choose from {', '.join(BLENDS)}")
    a = alpha[..., None]
    frame[y0:y1, x0:x1] = np.clip(target.astype(np.float32) * (1 - a) + face.astype(np.float32) * a + 0.5,
                                  0, 255).astype(np.uint8)
    full[y0:y1, x0:x1] = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    return full
