"""Face analysis on dlib: detection, 68 landmarks, similarity alignment, identity embedding, blur.

Alignment uses dlib's own canonical face template (`get_face_chip_details`, the same similarity
transform dlib uses before its recogniser), expressed as a 2x3 affine so crops, masks and the
warp back into the frame in `convert` all share one matrix.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

from .errors import InputError

DEFAULT_SIZE = 256
DEFAULT_PADDING = 0.25          # dlib chip padding: 0.25 keeps brows to chin plus a margin
MIN_FACE = 32                   # faces smaller than this (px, detector box side) are skipped


def models_dir() -> str:
    """Folder of dlib model files inside `face_recognition_models`, found without importing it
    (its __init__ needs pkg_resources, which new setuptools lacks)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("face_recognition_models is not installed: pip install face_recognition_models")
    return os.path.join(list(spec.submodule_search_locations)[0], "models")


@lru_cache(maxsize=None)
def _dlib_model(kind: str):
    import dlib

    path = lambda n: os.path.join(models_dir(), n)  # noqa: E731
    if kind == "hog":
        return dlib.get_frontal_face_detector()
    if kind == "cnn":
        return dlib.cnn_face_detection_model_v1(path("mmod_human_face_detector.dat"))
    if kind == "landmarks":
        return dlib.shape_predictor(path("shape_predictor_68_face_landmarks.dat"))
    if kind == "recognition":
        return dlib.face_recognition_model_v1(path("dlib_face_recognition_resnet_model_v1.dat"))
    raise KeyError(kind)


# ---- detector registry (faceswap-style plugins, kept to one function each) -------------------

DetectFn = Callable[[np.ndarray, int], List[tuple]]
DETECTORS: Dict[str, DetectFn] = {}


def register_detector(name: str):
    def deco(fn: DetectFn) -> DetectFn:
        DETECTORS[name] = fn
        return fn
    return deco


@register_detector("hog")
def _detect_hog(rgb: np.ndarray, upsample: int) -> List[tuple]:
    rects, scores, _ = _dlib_model("hog").run(rgb, upsample, 0.0)
    return [(r.left(), r.top(), r.right(), r.bottom(), float(s)) for r, s in zip(rects, scores)]


@register_detector("cnn")
def _detect_cnn(rgb: np.ndarray, upsample: int) -> List[tuple]:
    out = _dlib_model("cnn")(rgb, upsample)
    return [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), float(d.confidence)) for d in out]


def detect(rgb: np.ndarray, detector: str = "hog", upsample: int = 1) -> List[tuple]:
    """Face boxes (x0, y0, x1, y1, score) in pixel coords of `rgb`."""
    if detector not in DETECTORS:
        raise InputError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[detector](rgb, upsample)


# ---- landmarks, alignment, embedding ---------------------------------------------------------

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


def embedding(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """128-d dlib ResNet identity embedding (same person: distance < 0.6)."""
    return np.array(_dlib_model("recognition").compute_face_descriptor(rgb, _shape(points)), np.float32)


def crop_face_box(shape: Sequence[int]) -> tuple:
    """(x0, y0, x1, y1) of the face in an aligned crop of `shape` (it fills the crop's centre): the box to
    use where the detector finds nothing in a crop (blurred, dark, or itself generated)."""
    h, w = shape[:2]
    return (0.15 * w, 0.15 * h, 0.85 * w, 0.9 * h)


def blur_score(crop_rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned crop: higher = sharper."""
    gray = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


@dataclass
class Face:
    """One analysed face. Coordinates are in the source frame unless named `_crop`."""

    box: tuple                      # (x0, y0, x1, y1) detector box (or tracked box)
    score: float
    landmarks: np.ndarray           # 68x2, frame coords
    matrix: np.ndarray              # 2x3 frame -> crop
    size: int
    crop: Optional[np.ndarray] = field(default=None, repr=False)
    embedding: Optional[np.ndarray] = field(default=None, repr=False)
    blur: float = 0.0

    @property
    def landmarks_crop(self) -> np.ndarray:
        return transform_points(self.landmarks, self.matrix)

    @property
    def interocular(self) -> float:
        return float(np.linalg.norm(self.landmarks[36:42].mean(0) - self.landmarks[42:48].mean(0)))


class FaceAnalyzer:
    """Detect -> landmarks -> align -> embed, for single images (see `extract` for video)."""

    def __init__(self, detector: str = "hog", upsample: int = 1, min_size: int = MIN_FACE,
                 padding: float = DEFAULT_PADDING):
        if detector not in DETECTORS:
            raise InputError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
        self.detector, self.upsample, self.min_size, self.padding = detector, upsample, min_size, padding

    def face_from_box(self, rgb: np.ndarray, box: Sequence[float], score: float, size: int,
                      embed: bool = True, pts: Optional[np.ndarray] = None) -> Face:
        pts = landmarks(rgb, box) if pts is None else pts
        m = align_matrix(pts, size, self.padding)
        crop = warp_crop(rgb, m, size)
        emb = embedding(rgb, pts) if embed else None
        return Face(tuple(float(v) for v in box[:4]), score, pts, m, size, crop, emb, blur_score(crop))

    def analyze(self, rgb: np.ndarray, size: int = DEFAULT_SIZE, embed: bool = True) -> List[Face]:
        """All faces in an image, largest first, skipping those smaller than `min_size`."""
        boxes = [b for b in detect(rgb, self.detector, self.upsample)
                 if min(b[2] - b[0], b[3] - b[1]) >= self.min_size]
        boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        return [self.face_from_box(rgb, b[:4], b[4], size, embed) for b in boxes]

    def embed_crop(self, crop_rgb: np.ndarray) -> Optional[np.ndarray]:
        """Embedding of an already aligned crop (e.g. a generated swap); None if no face found."""
        faces = self.analyze(np.ascontiguousarray(crop_rgb), size=crop_rgb.shape[0], embed=True)
        if not faces:
            pts = landmarks(crop_rgb, crop_face_box(crop_rgb.shape))
            return embedding(np.ascontiguousarray(crop_rgb), pts)
        return faces[0].embedding

    def reference_embedding(self, rgb: np.ndarray) -> np.ndarray:
        """Embedding of the largest face of a reference photo (for --ref-face)."""
        faces = self.analyze(rgb, size=64, embed=True)
        if not faces:
            raise InputError("no face found in the reference image")
        return faces[0].embedding
