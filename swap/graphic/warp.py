"""Piecewise-affine (Delaunay triangle) warp of a source face onto a target face's landmarks.

The 68 dlib landmarks are extended with 10 forehead points (the brows raised away from the nose tip, as
the `hull` mask does), triangulated once on the source face, and each triangle of source texture is
warped by its own affine transform onto the same triangle of the target's points: FaceForensics++
"FaceSwap"'s graphics approach in 2D (no 3D model), and what most landmark face-swap demos do.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import cv2
import numpy as np

FOREHEAD_LIFT = 0.3     # brows raised by this fraction of their distance from the nose tip


def extend_landmarks(points: np.ndarray, lift: float = FOREHEAD_LIFT) -> np.ndarray:
    """68x2 -> 78x2: the landmarks plus the 10 brow points moved up towards the forehead."""
    pts = np.asarray(points, np.float64)
    if pts.shape != (68, 2) or not np.isfinite(pts).all():
        raise ValueError(f"expected 68x2 finite landmarks, got shape {pts.shape}")
    brows = pts[17:27] + lift * (pts[17:27] - pts[30])
    return np.vstack([pts, brows])


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles over `points` (Nx2) as an Mx3 array of point indices (OpenCV's Subdiv2D)."""
    pts = np.asarray(points, np.float64)
    x0, y0 = np.floor(pts.min(0)) - 2
    x1, y1 = np.ceil(pts.max(0)) + 2
    sub = cv2.Subdiv2D((int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1))
    for p in pts:
        sub.insert((float(p[0]), float(p[1])))
    tris: List[Tuple[int, int, int]] = []
    for t in sub.getTriangleList().reshape(-1, 3, 2):
        # map each vertex back to its point index (Subdiv2D returns coordinates)
        idx = [int(np.argmin(((pts - v) ** 2).sum(1))) for v in t]
        if len(set(idx)) == 3 and all(((pts[i] - v) ** 2).sum() < 1e-4 for i, v in zip(idx, t)):
            tris.append(tuple(sorted(idx)))
    return np.array(sorted(set(tris)), np.int32).reshape(-1, 3)


def pad_to_points(img: np.ndarray, pts: np.ndarray, margin: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """`img` grown by edge replication until every point (and `margin` px around it) lies inside, and the
    points shifted to match: forehead points of a tightly cropped source face fall outside its image."""
    p = np.asarray(pts, np.float32)
    h, w = img.shape[:2]
    left = max(0, int(np.ceil(margin - p[:, 0].min())))
    top = max(0, int(np.ceil(margin - p[:, 1].min())))
    right = max(0, int(np.ceil(p[:, 0].max() + margin + 1 - w)))
    bottom = max(0, int(np.ceil(p[:, 1].max() + margin + 1 - h)))
    if not (left or top or right or bottom):
        return img, p
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_REPLICATE), p + (left, top)


def warp_face(src: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, triangles: np.ndarray,
              dst_shape: Sequence[int]) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int, int, int]]:
    """Warp the source texture triangle by triangle onto `dst_pts`.

    Returns (warped RGB, coverage mask 0/1 uint8, roi) where both arrays cover only the roi (x0, y0, x1, y1)
    of the destination (the bounding box of `dst_pts`, clipped to `dst_shape`), to keep the per-frame work
    proportional to the face, not the frame."""
    h, w = dst_shape[:2]
    sp = np.asarray(src_pts, np.float32)
    src, sp = pad_to_points(src, sp)
    dp = np.asarray(dst_pts, np.float32)
    x0, y0 = np.maximum(np.floor(dp.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(dp.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.uint8), (0, 0, 0, 0)
    out = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    cover = np.zeros((y1 - y0, x1 - x0), np.float32)
    sh, sw = src.shape[:2]
    for tri in triangles:
        s = sp[tri]
        d = dp[tri] - (x0, y0)
        bx, by, bw, bh = cv2.boundingRect(np.round(d).astype(np.int32))
        # clip the triangle's box to the roi
        cx0, cy0 = max(bx, 0), max(by, 0)
        cx1, cy1 = min(bx + bw + 1, out.shape[1]), min(by + bh + 1, out.shape[0])
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        sx, sy, sbw, sbh = cv2.boundingRect(np.round(s).astype(np.int32))
        sx0, sy0 = max(sx - 1, 0), max(sy - 1, 0)
        sx1, sy1 = min(sx + sbw + 2, sw), min(sy + sbh + 2, sh)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        patch = src[sy0:sy1, sx0:sx1]
        m = cv2.getAffineTransform((s - (sx0, sy0)).astype(np.float32), (d - (cx0, cy0)).astype(np.float32))
        size = (cx1 - cx0, cy1 - cy0)
        warped = cv2.warpAffine(patch, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        tm = np.zeros((size[1], size[0]), np.float32)
        cv2.fillConvexPoly(tm, np.round(d - (cx0, cy0)).astype(np.int32), 1.0, lineType=cv2.LINE_8)
        # triangles share edges: fill only pixels not yet covered, so edges are not counted twice
        region = cover[cy0:cy1, cx0:cx1]
        take = tm * (1.0 - region)
        out[cy0:cy1, cx0:cx1] += warped.astype(np.float32) * take[..., None]
        region += take
    ok = cover > 0
    out[ok] /= cover[ok][:, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), ok.astype(np.uint8), (int(x0), int(y0), int(x1), int(y1))


# dlib 68-point index of each point's mirror image (left <-> right)
MIRROR_68 = np.array([*range(16, -1, -1), *range(26, 21, -1), *range(21, 16, -1), 27, 28, 29, 30,
                      *range(35, 30, -1), 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
                      *range(54, 47, -1), *range(59, 54, -1), *range(64, 59, -1), *range(67, 64, -1)])


def mirror(img: np.ndarray, points: np.ndarray) -> tuple:
    """The image flipped left-right and its 68 landmarks moved and renumbered to match."""
    w = img.shape[1]
    p = np.asarray(points, np.float32)[MIRROR_68].copy()
    p[:, 0] = w - 1 - p[:, 0]
    return np.ascontiguousarray(img[:, ::-1]), p


def yaw_ratio(points: np.ndarray) -> float:
    """Where the nose tip lies between the jaw's two ends along the eye line: 0.5 frontal, < 0.5 the face
    turned to the image's left (its right side hidden), > 0.5 to the right. A 2D pose cue, no 3D model."""
    p = np.asarray(points, np.float64)
    axis = p[42:48].mean(0) - p[36:42].mean(0)
    axis /= max(np.linalg.norm(axis), 1e-6)
    a, b, n = (float(np.dot(p[i], axis)) for i in (0, 16, 30))
    return (n - a) / (b - a) if abs(b - a) > 1e-6 else 0.5
