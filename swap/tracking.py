"""Face tracking for video extract: detect on keyframes, follow faces by landmarks in between.

The HOG detector is the slow part (~0.14 s on a 640x480 frame with upsample 1); the shape
predictor takes ~2 ms. So the detector runs every `detect_every` frames and, in between, each
face's box is predicted from its previous landmarks using the box<->landmarks relation measured
at the last detection (so the shape predictor sees the kind of box it was trained on). Landmarks
are then smoothed with a One-Euro filter (adaptive low-pass: strong smoothing when still, little
lag when moving), normalised by face size so the same settings fit small and large faces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import cv2
import numpy as np

from . import faces as F


class OneEuro:
    """One-Euro filter (Casiez et al. 2012) on an array of values, in units of face size."""

    def __init__(self, freq: float, min_cutoff: float = 1.5, beta: float = 0.5, d_cutoff: float = 1.0):
        self.freq, self.min_cutoff, self.beta, self.d_cutoff = freq, min_cutoff, beta, d_cutoff
        self.x: Optional[np.ndarray] = None
        self.dx: Optional[np.ndarray] = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.freq)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x
        dx = (x - self.x) * self.freq
        self.dx = self.dx + self._alpha(self.d_cutoff) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = self._alpha(cutoff)
        self.x = self.x + a * (x - self.x)
        return self.x


def _extent(pts: np.ndarray) -> tuple:
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    return (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0, 1.0)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    raw: np.ndarray                 # last unsmoothed landmarks (frame px)
    smooth: np.ndarray              # last smoothed landmarks
    box: tuple                      # last box used for the shape predictor
    score: float
    rel: tuple                      # detector box relative to the landmarks' extent: (dx, dy, scale)
    scale: float                    # face size when the track began (normalises the filter)
    filt: OneEuro
    embedding: Optional[np.ndarray] = None
    embedded_at: int = -10**9       # frame index of the last embedding
    seen_at: int = 0

    def predict_box(self) -> tuple:
        cx, cy, s = _extent(self.raw)
        dx, dy, r = self.rel
        bx, by, bs = cx + dx * s, cy + dy * s, r * s / 2
        return (bx - bs, by - bs, bx + bs, by + bs)


def _flow_box(prev_gray: np.ndarray, gray: np.ndarray, pts: np.ndarray, box: tuple) -> Optional[tuple]:
    """Move `box` by the face's image motion: Lucas-Kanade flow of the landmark points, then a
    robust similarity fit. Independent of the shape predictor, so its noise does not feed back."""
    p0 = pts.reshape(-1, 1, 2).astype(np.float32)
    p1, st, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, p0, None, winSize=(21, 21), maxLevel=2)
    ok = st.reshape(-1) == 1
    if ok.sum() < 12:
        return None
    m, _ = cv2.estimateAffinePartial2D(p0[ok], p1[ok], method=cv2.LMEDS)
    if m is None:
        return None
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    half = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    nc = m[:, :2] @ c + m[:, 2]
    return (nc[0] - half[0] * scale, nc[1] - half[1] * scale, nc[0] + half[0] * scale, nc[1] + half[1] * scale)


@dataclass
class TrackedFace:
    track: Track
    box: tuple
    score: float
    keyframe: bool
    landmarks: np.ndarray           # smoothed (or raw when smoothing is off)


@dataclass
class FaceTracker:
    """Per-source state machine; call `step` on consecutive processed frames."""

    detector: str = "hog"
    upsample: int = 1
    min_size: int = F.MIN_FACE
    detect_every: int = 5
    smooth: bool = True
    freq: float = 25.0              # processed frames per second (fps / every)
    min_cutoff: float = 1.5
    beta: float = 0.5
    tracks: List[Track] = field(default_factory=list)
    _prev_gray: Optional[np.ndarray] = None
    _next_id: int = 0
    _since_detect: int = 10**9

    def reset(self) -> None:
        self.tracks = []
        self._since_detect = 10**9
        self._prev_gray = None

    def _new_track(self, pts: np.ndarray, box: tuple, score: float, index: int) -> Track:
        t = Track(self._next_id, pts, pts, box, score, self._relation(pts, box), _extent(pts)[2],
                  OneEuro(self.freq, self.min_cutoff, self.beta), seen_at=index)
        self._next_id += 1
        return t

    @staticmethod
    def _relation(pts: np.ndarray, box: Sequence[float]) -> tuple:
        cx, cy, s = _extent(pts)
        bw = ((box[2] - box[0]) + (box[3] - box[1])) / 2
        return (((box[0] + box[2]) / 2 - cx) / s, ((box[1] + box[3]) / 2 - cy) / s, bw / s)

    def step(self, rgb: np.ndarray, index: int, force_detect: bool = False) -> List[TrackedFace]:
        h, w = rgb.shape[:2]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        keyframe = force_detect or self._since_detect >= self.detect_every
        out: List[TrackedFace] = []
        if keyframe:
            self._since_detect = 0
            dets = [d for d in F.detect(rgb, self.detector, self.upsample)
                    if min(d[2] - d[0], d[3] - d[1]) >= self.min_size]
            kept: List[Track] = []
            free = list(self.tracks)
            for d in sorted(dets, key=lambda d: -d[4]):
                box = tuple(float(v) for v in d[:4])
                pts = F.landmarks(rgb, box)
                best = max(free, key=lambda t: box_iou(t.predict_box(), box), default=None)
                if best is not None and box_iou(best.predict_box(), box) >= 0.3:
                    free.remove(best)
                    best.raw, best.box, best.score = pts, box, float(d[4])
                    best.rel = self._relation(pts, box)
                    tr = best
                else:
                    tr = self._new_track(pts, box, float(d[4]), index)
                tr.seen_at = index
                kept.append(tr)
            # a track the detector no longer sees ends here (it may have left, turned, or been a
            # false positive); it is re-created if the detector finds it again
            self.tracks = kept
        else:
            self._since_detect += 1
            alive: List[Track] = []
            for tr in self.tracks:
                box = _flow_box(self._prev_gray, gray, tr.raw, tr.box) if self._prev_gray is not None else None
                box = tr.predict_box() if box is None else box
                if box[2] < 0 or box[3] < 0 or box[0] > w or box[1] > h:
                    continue
                pts = F.landmarks(rgb, box)
                s_new = _extent(pts)[2]
                if not (0.7 < s_new / max(_extent(tr.raw)[2], 1.0) < 1.4):
                    continue  # the fit jumped: lost the face, wait for the next detection
                tr.raw, tr.box = pts, box
                alive.append(tr)
            self.tracks = alive
        self._prev_gray = gray
        for tr in self.tracks:
            if self.smooth:
                tr.smooth = tr.filt(tr.raw / tr.scale) * tr.scale
            else:
                tr.smooth = tr.raw
            out.append(TrackedFace(tr, tr.box, tr.score, keyframe, tr.smooth.astype(np.float32)))
        return out
