"""Faces on dlib: detection (`detection`), 68 landmarks and alignment (`landmarks`), identity embedding and
`FaceAnalyzer` (`analyzer`), head pose (`pose`) and face tracking through a video (`tracking`).

    from swap import faces as F
    F.FaceAnalyzer().analyze(rgb)       # [Face(box, landmarks, matrix, crop, embedding, blur)], largest first
"""
from .analyzer import Face, FaceAnalyzer, blur_score, distance, embedding
from .detection import DETECTORS, MIN_FACE, detect, models_dir, register_detector
from .landmarks import (DEFAULT_PADDING, DEFAULT_SIZE, align_matrix, crop_face_box, landmarks, transform_points,
                        warp_crop)
from .pose import head_pose

__all__ = ["DEFAULT_PADDING", "DEFAULT_SIZE", "DETECTORS", "MIN_FACE", "Face", "FaceAnalyzer", "align_matrix",
           "blur_score", "crop_face_box", "detect", "distance", "embedding", "head_pose", "landmarks", "models_dir",
           "register_detector", "transform_points", "warp_crop"]
