"""Real-face sample media built from photos shipped inside packages (no downloads).

- astronaut: Eileen Collins, `skimage.data.astronaut()` (512x512)
- grace_hopper: Grace Hopper, matplotlib's sample data (512x600)

Videos move, scale, rotate and relight a photo over time and carry a sine-tone AAC track, so
tests and the demo run on real faces with real H.264 + audio files.
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Tuple

import av
import cv2
import numpy as np

from .errors import InputError

PHOTOS = ("astronaut", "grace_hopper")


def load_photo(name: str) -> np.ndarray:
    """RGB uint8 array of a built-in real face photo."""
    if name == "astronaut":
        try:
            from skimage import data
        except ImportError as e:  # pragma: no cover - depends on install
            raise InputError("the built-in photos need scikit-image: pip install 'veriswap[test]'") from e
        return np.ascontiguousarray(data.astronaut())
    if name == "grace_hopper":
        try:
            import matplotlib.cbook as cbook
        except ImportError as e:  # pragma: no cover
            raise InputError("the built-in photos need matplotlib: pip install 'veriswap[test]'") from e
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            buf = np.frombuffer(f.read(), np.uint8)
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    raise InputError(f"unknown built-in photo {name!r}; choose from {', '.join(PHOTOS)}")


def save_photo(name: str, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(load_photo(name), cv2.COLOR_RGB2BGR))
    return path


def two_face_frame(size: Tuple[int, int] = (1024, 600)) -> np.ndarray:
    """One frame holding both people side by side (astronaut left, Grace Hopper right)."""
    w, h = size
    canvas = np.full((h, w, 3), 40, np.uint8)
    a = load_photo("astronaut")
    g = load_photo("grace_hopper")
    ha = min(h, a.shape[0]); a = cv2.resize(a, (int(a.shape[1] * ha / a.shape[0]), ha))
    hg = min(h, g.shape[0]); g = cv2.resize(g, (int(g.shape[1] * hg / g.shape[0]), hg))
    canvas[:a.shape[0], :min(a.shape[1], w // 2)] = a[:, : w // 2]
    x0 = w - g.shape[1]
    canvas[:g.shape[0], max(x0, w // 2):] = g[:, max(0, w // 2 - x0):]
    return canvas


def motion_matrix(photo_shape: Tuple[int, ...], t: float, size: Tuple[int, int] = (640, 480)) -> np.ndarray:
    """2x3 matrix photo px -> video frame px at phase t in [0, 1) of `make_face_video`'s motion
    (tests use it as ground truth: landmarks of the photo mapped through it are where the face is)."""
    w, h = size
    ph, pw = photo_shape[:2]
    base = min(w / pw, h / ph) * 0.95
    scale = base * (1.0 + 0.08 * math.sin(2 * math.pi * t))
    angle = 4.0 * math.sin(2 * math.pi * t * 1.3)
    cx = w / 2 + 0.05 * w * math.sin(2 * math.pi * t * 0.9)
    cy = h / 2 + 0.04 * h * math.cos(2 * math.pi * t * 1.1)
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, scale)
    m[0, 2] += cx - pw / 2
    m[1, 2] += cy - ph / 2
    return m


def _frame_at(photo: np.ndarray, t: float, size: Tuple[int, int]) -> np.ndarray:
    """Photo under a smooth similarity transform + brightness drift, at phase t in [0, 1)."""
    out = cv2.warpAffine(photo, motion_matrix(photo.shape, t, size), size, flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    gain = 1.0 + 0.12 * math.sin(2 * math.pi * t * 0.7)
    return np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def make_face_video(path: Path, photo: str | np.ndarray = "astronaut", frames: int = 50,
                    size: Tuple[int, int] = (640, 480), fps: int = 25, audio: bool = True,
                    crf: int = 18) -> Path:
    """Write an H.264 MP4 (+ AAC sine tone) of a real face photo moving smoothly over time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = load_photo(photo) if isinstance(photo, str) else photo
    with av.open(str(path), mode="w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast"}
        aus = None
        if audio:
            aus = c.add_stream("aac", rate=44100)
            aus.layout = "mono"
        sr, spf = 44100, 1024
        a_pts = 0
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(_frame_at(img, i / max(frames, 1), size), format="rgb24")
            f.pts = i
            f.time_base = Fraction(1, fps)
            for p in vs.encode(f):
                c.mux(p)
            # keep audio roughly interleaved with video
            while aus is not None and a_pts < (i + 1) * sr / fps:
                tt = (np.arange(spf) + a_pts) / sr
                samples = (0.2 * np.sin(2 * np.pi * 440 * tt)).astype(np.float32)[None, :]
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                af.sample_rate = sr
                af.pts = a_pts
                af.time_base = Fraction(1, sr)
                for p in aus.encode(af):
                    c.mux(p)
                a_pts += spf
        for p in vs.encode(None):
            c.mux(p)
        if aus is not None:
            for p in aus.encode(None):
                c.mux(p)
    return path
