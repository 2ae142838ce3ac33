"""Face tracking for video extract: find faces with a full-frame scan, then follow them cheaply.

The full-frame HOG scan with upsample 1 (what finds 40 px faces) costs ~0.12 s on a 640x480 frame and
~0.8 s on 1080p; the 68-point shape predictor ~1 ms. So the full scan runs every `scan_every` processed
frames, on a scene cut, soon after a face was lost, and every `detect_every` frames while no face is
in view. In between, each tracked face is followed by:

1. Lucas-Kanade optical flow of its landmarks -> the face's image motion (a similarity) and a
   predicted box (independent of the shape predictor, so its noise does not feed back);
2. every `detect_every` frames, a *re-detection* with the same HOG detector on a small region around
   that box (2x the face), rescaled so the face is ~100 px: a factor 2^upsample * (5/6)^j, which keeps
   the scanned pyramid levels a subset of the full scan's, so the box is the kind the full scan gives
   (and the kind the shape predictor was trained on), at ~4 ms instead of 120 ms;
3. the shape predictor on that box. A face the region detector misses is carried on the flow box for
   at most `max_missed` frames (the fit must keep its size), then dropped.

Landmarks are then smoothed with a One-Euro filter (adaptive low-pass: strong smoothing when still,
little lag when moving), normalised by face size so the same settings fit small and large faces, and
*motion-compensated*: before each update the filter's state is carried along by the flow similarity,
so head and camera motion pass through without lag and only the shape predictor's frame-to-frame
jitter is filtered. Scene cuts are found by the mean absolute difference of 32x24 grey thumbnails: a
cut ends all tracks and triggers a full scan on that very frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import cv2
import numpy as np

from .. import faces as F

CUT_THRESHOLD = 28.0            # mean |grey thumbnail difference| (0-255) that counts as a scene cut
ROI_FACE_PX = 100               # region re-detection rescales the face to about this size
ROI_MARGIN = 0.5                # region = predicted box grown by this fraction of its side, each way


class OneEuro:
    """One-Euro filter (Casiez et al. 2012) on an array of values, in units of face size."""

    def __init__(self, freq: float, min_cutoff: float = 1.5, beta: float = 0.5, d_cutoff: float = 1.0):
        self.freq, self.min_cutoff, self.beta, self.d_cutoff = freq, min_cutoff, beta, d_cutoff
        self.x: Optional[np.ndarray] = None
        self.dx: Optional[np.ndarray] = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.freq)

    def reset(self) -> None:
        self.x = self.dx = None

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
    seen_at: int = 0                # frame index of the last detector confirmation
    since_detect: int = 0           # processed frames since the detector last ran for this face
    motion: Optional[np.ndarray] = None   # 2x3 similarity from the previous frame (optical flow)

    def predict_box(self) -> tuple:
        cx, cy, s = _extent(self.raw)
        dx, dy, r = self.rel
        bx, by, bs = cx + dx * s, cy + dy * s, r * s / 2
        return (bx - bs, by - bs, bx + bs, by + bs)


def flow_motion(prev_gray: np.ndarray, gray: np.ndarray, pts: np.ndarray) -> Optional[np.ndarray]:
    """The face's image motion between two frames: Lucas-Kanade flow of its landmark points, then a
    robust similarity fit (2x3). Independent of the shape predictor, so its noise does not feed back."""
    # on a window around the face, not the whole frame: LK builds an image pyramid of what it is given
    h, w = gray.shape[:2]
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    g = 0.5 * max(x1 - x0, y1 - y0) + 48     # 48 px > what LK with 3 levels and a 21 px window follows
    x0, y0 = int(max(0, x0 - g)), int(max(0, y0 - g))
    x1, y1 = int(min(w, x1 + g + 1)), int(min(h, y1 + g + 1))
    if x1 - x0 < 24 or y1 - y0 < 24:
        return None
    off = np.array([x0, y0], np.float32)
    p0 = (pts.reshape(-1, 1, 2) - off).astype(np.float32)
    p1, st, _ = cv2.calcOpticalFlowPyrLK(prev_gray[y0:y1, x0:x1], gray[y0:y1, x0:x1], p0, None,
                                         winSize=(21, 21), maxLevel=2)
    p0, p1 = p0 + off, p1 + off
    ok = st.reshape(-1) == 1
    if ok.sum() < 12:
        return None
    m, _ = cv2.estimateAffinePartial2D(p0[ok], p1[ok], method=cv2.LMEDS)
    return m


def move_box(box: Sequence[float], m: np.ndarray) -> tuple:
    """`box` carried by a similarity `m` (stays axis-aligned: centre moved, sides scaled)."""
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    half = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    nc = m[:, :2] @ c + m[:, 2]
    return (nc[0] - half[0] * scale, nc[1] - half[1] * scale, nc[0] + half[0] * scale, nc[1] + half[1] * scale)


def roi_scale(side: float, upsample: int) -> float:
    """Resize factor for re-detecting a face of `side` px: 2^upsample * (5/6)^j with the largest j that
    keeps the face >= ROI_FACE_PX (dlib's HOG pyramid steps by 5/6, so these levels are a subset of
    the full scan's and the boxes come out the same size)."""
    r = 2.0 ** upsample
    while r * side * 5 / 6 >= ROI_FACE_PX:
        r *= 5 / 6
    return r


def detect_near(rgb: np.ndarray, box: Sequence[float], detector: str = "hog", upsample: int = 1,
                margin: float = ROI_MARGIN) -> Optional[tuple]:
    """Re-detect the face expected at `box` in a region around it; the detection (x0, y0, x1, y1, score)
    that overlaps `box` most (IoU >= 0.3), or None."""
    h, w = rgb.shape[:2]
    side = max(box[2] - box[0], box[3] - box[1], 1.0)
    g = side * margin
    x0, y0 = int(max(0, math.floor(box[0] - g))), int(max(0, math.floor(box[1] - g)))
    x1, y1 = int(min(w, math.ceil(box[2] + g))), int(min(h, math.ceil(box[3] + g)))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    r = roi_scale(side, upsample)
    crop = rgb[y0:y1, x0:x1]
    if r != 1.0:
        crop = cv2.resize(crop, (max(1, round((x1 - x0) * r)), max(1, round((y1 - y0) * r))),
                          interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
    else:
        crop = np.ascontiguousarray(crop)
    best, best_iou = None, 0.3
    for d in F.detect(crop, detector, 0):
        fb = (d[0] / r + x0, d[1] / r + y0, d[2] / r + x0, d[3] / r + y0)
        iou = box_iou(fb, box)
        if iou >= best_iou:
            best, best_iou = (*fb, float(d[4])), iou
    return best


def _thumb(gray: np.ndarray) -> np.ndarray:
    return cv2.resize(gray, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32)


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
    detect_every: int = 5           # re-detect each tracked face (in a region around it) every N frames
    smooth: bool = True
    freq: float = 25.0              # processed frames per second (fps / every)
    min_cutoff: float = 1.5
    beta: float = 0.5
    scan_every: int = 25            # full-frame scan for new faces every N frames (and on cuts)
    max_missed: int = 10            # frames a face may go without a detector confirmation before it is dropped
    refeed: int = 1                 # landmark fits averaged per face (faceswap's re-feed; faces.landmarks)
    tracks: List[Track] = field(default_factory=list)
    _prev_gray: Optional[np.ndarray] = None
    _prev_thumb: Optional[np.ndarray] = None
    _next_id: int = 0
    _since_detect: int = 10**9      # frames since the last full-frame scan
    _rescan: bool = False           # a face was lost: scan again (at most every detect_every frames)
    scanned: bool = False           # whether the last `step` ran the full-frame scan

    def reset(self) -> None:
        self.tracks = []
        self._since_detect = 10**9
        self._prev_gray = self._prev_thumb = None
        self._rescan = False

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

    def _scan(self, rgb: np.ndarray, index: int, cut: bool) -> None:
        """Full-frame detection: re-anchor the tracks it finds, start new ones, end the others."""
        dets = [d for d in F.detect(rgb, self.detector, self.upsample)
                if min(d[2] - d[0], d[3] - d[1]) >= self.min_size]
        kept: List[Track] = []
        free = [] if cut else list(self.tracks)
        where = {t.id: t.predict_box() if t.motion is None else move_box(t.box, t.motion) for t in free}
        for d in sorted(dets, key=lambda d: -d[4]):
            box = tuple(float(v) for v in d[:4])
            pts = F.landmarks(rgb, box, self.refeed)
            best = max(free, key=lambda t: box_iou(where[t.id], box), default=None)
            if best is not None and box_iou(where[best.id], box) >= 0.3:
                free.remove(best)
                tr = best
                tr.raw, tr.box, tr.score, tr.rel = pts, box, float(d[4]), self._relation(pts, box)
            else:
                tr = self._new_track(pts, box, float(d[4]), index)
            tr.seen_at, tr.since_detect = index, 0
            kept.append(tr)
        # a track the full scan does not see ends here (it may have left, turned, or been a false
        # positive); it is re-created if the detector finds it again
        self.tracks = kept

    def _follow(self, rgb: np.ndarray, gray: np.ndarray, index: int) -> None:
        h, w = rgb.shape[:2]
        alive: List[Track] = []
        for tr in self.tracks:
            box = tr.predict_box() if tr.motion is None else move_box(tr.box, tr.motion)
            if box[2] < 0 or box[3] < 0 or box[0] > w or box[1] > h:
                self._rescan = True
                continue
            tr.since_detect += 1
            detected = False
            if tr.since_detect >= self.detect_every:
                d = detect_near(rgb, box, self.detector, self.upsample)
                if d is not None and min(d[2] - d[0], d[3] - d[1]) >= self.min_size:
                    box, detected = tuple(float(v) for v in d[:4]), True
                    tr.score, tr.seen_at, tr.since_detect = d[4], index, 0
            if not detected and tr.since_detect > self.max_missed:
                self._rescan = True     # not confirmed for too long: drop it, look again
                continue
            pts = F.landmarks(rgb, box, self.refeed)
            s_new = _extent(pts)[2]
            if not (0.7 < s_new / max(_extent(tr.raw)[2], 1.0) < 1.4):
                self._rescan = True     # the fit jumped: lost the face
                continue
            if detected:
                tr.rel = self._relation(pts, box)
            tr.raw, tr.box = pts, box
            # two tracks that have come onto one face (e.g. faces crossing): keep the first (ranked
            # higher by the last scan)
            if any(box_iou(o.box, box) > 0.5 for o in alive):
                continue
            alive.append(tr)
        self.tracks = alive

    def step(self, rgb: np.ndarray, index: int, force_detect: bool = False) -> List[TrackedFace]:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        thumb = _thumb(gray)
        cut = self._prev_thumb is not None and float(np.abs(thumb - self._prev_thumb).mean()) > CUT_THRESHOLD
        # with no face in view a scan is all there is to do: then it runs every detect_every frames
        interval = self.scan_every if self.tracks else min(self.scan_every, self.detect_every)
        scan = (force_detect or cut or self._since_detect >= interval
                or (self._rescan and self._since_detect >= self.detect_every))
        for tr in self.tracks:
            tr.motion = None if cut or self._prev_gray is None else flow_motion(self._prev_gray, gray, tr.raw)
        self.scanned = scan
        if scan:
            self._since_detect, self._rescan = 0, False
            self._scan(rgb, index, cut)
        else:
            self._since_detect += 1
            self._follow(rgb, gray, index)
        self._prev_gray, self._prev_thumb = gray, thumb
        out: List[TrackedFace] = []
        for tr in self.tracks:
            if self.smooth:
                if tr.motion is not None and tr.filt.x is not None:
                    # motion-compensated: carry the filter's state along with the face's image motion,
                    # so only the shape predictor's jitter is smoothed, not the head/camera movement
                    m = tr.motion
                    tr.filt.x = ((tr.filt.x * tr.scale) @ m[:, :2].T + m[:, 2]) / tr.scale
                tr.smooth = tr.filt(tr.raw / tr.scale) * tr.scale
            else:
                tr.smooth = tr.raw
            out.append(TrackedFace(tr, tr.box, tr.score, tr.since_detect == 0, tr.smooth.astype(np.float32)))
        return out
