"""Face detection on dlib (HOG, MMOD CNN) and the dlib model files, behind a registry of detectors."""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from typing import Callable, List

import numpy as np

from provenance.registry import Registry

from ..errors import InputError

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
DETECTORS = Registry("detector")            # name -> fn(rgb, upsample) -> [(x0, y0, x1, y1, score)]
register_detector = DETECTORS.register


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
    return DETECTORS.lookup(detector)(rgb, upsample)
