"""Faces in sampled frames of a video, with track ids (so each person is scored on their own).

Runs `swap.tracking.FaceTracker` in-process on the sampled frames only: consecutive samples close in
time are followed by optical flow with periodic region re-detection (the extract stage's tracker);
samples far apart (more than `max_gap` frames) get a full-frame scan, and the scan matches faces to
existing tracks by box overlap, so ids stay stable for faces that do not jump.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np

from swap.faces.tracking import FaceTracker
from swap.video import Frame, iter_frames

MAX_GAP = 5


@dataclass
class FrameFaces:
    frame: Frame
    faces: List["FaceBox"]


@dataclass
class FaceBox:
    track: int
    box: tuple                  # x0, y0, x1, y1 (detector box or tracked box), frame px
    landmarks: np.ndarray       # 68 x 2, frame px
    score: float


class TrackLinker:
    """Stable face ids across sampled frames. The tracker's own ids restart whenever it loses a face
    (samples far apart, fast motion); here a face joins the track whose last box is nearest, if the
    centres are within `reach` x the face size and the sizes within a factor `size_ratio`."""

    def __init__(self, reach: float = 0.6, size_ratio: float = 1.6):
        self.reach, self.size_ratio = reach, size_ratio
        self.last: dict = {}            # id -> box
        self.next_id = 0

    def link(self, faces: List["FaceBox"]) -> None:
        free = dict(self.last)
        for f in faces:
            cx, cy, s = _centre(f.box)
            best, best_d = None, None
            for tid, b in free.items():
                bx, by, bs = _centre(b)
                d = np.hypot(cx - bx, cy - by) / max(s, bs, 1.0)
                if d <= self.reach and max(s, bs) / max(min(s, bs), 1.0) <= self.size_ratio and (best_d is None or d < best_d):
                    best, best_d = tid, d
            if best is None:
                best, self.next_id = self.next_id, self.next_id + 1
            else:
                del free[best]
            f.track = best
            self.last[best] = f.box


def _centre(box) -> tuple:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, ((box[2] - box[0]) + (box[3] - box[1])) / 2


def track_faces(video: Path, indices: Optional[Sequence[int]] = None, detector: str = "hog",
                upsample: int = 1, min_size: int = 32, max_gap: int = MAX_GAP,
                detect_every: int = 5, scan_every: int = 25) -> Iterator[FrameFaces]:
    """Yield the faces of each selected frame (all frames when `indices` is None), largest first."""
    wanted = None if indices is None else set(int(i) for i in indices)
    tracker = FaceTracker(detector, upsample, min_size, detect_every, smooth=False, scan_every=scan_every)
    prev = None
    linker = TrackLinker()
    for fr in iter_frames(Path(video), select=None if wanted is None else wanted.__contains__):
        far = prev is None or fr.index - prev > max_gap
        tracked = tracker.step(fr.rgb, fr.index, force_detect=far)
        prev = fr.index
        faces = [FaceBox(t.track.id, tuple(float(v) for v in t.box), np.asarray(t.landmarks, np.float32), float(t.score))
                 for t in tracked]
        faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        linker.link(faces)
        yield FrameFaces(fr, faces)
