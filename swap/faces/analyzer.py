"""Identity embedding (dlib ResNet), blur score and `FaceAnalyzer`: detect -> landmarks -> align -> embed."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import cv2
import numpy as np

from ..errors import InputError
from .detection import DETECTORS, MIN_FACE, _dlib_model, detect
from .landmarks import (DEFAULT_PADDING, DEFAULT_SIZE, _shape, align_matrix, crop_face_box, landmarks,
                        transform_points, warp_crop)


def embedding(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """128-d dlib ResNet identity embedding (same person: distance < 0.6)."""
    return np.array(_dlib_model("recognition").compute_face_descriptor(rgb, _shape(points)), np.float32)


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


class FaceAnalyzer:
    """Detect -> landmarks -> align -> embed, for single images (see `extract` for video)."""

    def __init__(self, detector: str = "hog", upsample: int = 1, min_size: int = MIN_FACE,
                 padding: float = DEFAULT_PADDING):
        DETECTORS.lookup(detector)
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
