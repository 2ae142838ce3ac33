"""Faces folder -> in-memory uint8 tensors (images + face/eye/mouth masks from the 68 landmarks).

Reads the extract stage's contract: FACES_DIR/*.png aligned crops + FACES_DIR/faces.json
({"version": 1, "size": S, "faces": {"x.png": {"landmarks": [[x, y]*68], "embedding": [128] | null, ...}}}).
A PNG without an entry gets the mean landmarks of the others (or a generic template without any).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np
import torch

from provenance.schema import validate

from ..alignments import FACES_JSON_SPEC
from ..errors import InputError


@dataclass
class FaceSet:
    name: str
    images: torch.Tensor          # N,3,S,S uint8 RGB
    masks: torch.Tensor           # N,3,S,S uint8: face hull, eyes, mouth (0/255)
    files: List[str]
    centroid: Optional[np.ndarray]  # mean identity embedding (128,) or None
    landmarks: Optional[torch.Tensor] = None   # N,68,2 float32 in grid_sample's normalized crop coords

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device) -> "FaceSet":
        return FaceSet(self.name, self.images.to(device), self.masks.to(device), self.files, self.centroid,
                       None if self.landmarks is None else self.landmarks.to(device))


def _template_landmarks(size: int) -> np.ndarray:
    """Rough 68-point layout for a dlib-aligned crop (used only when no landmarks exist at all)."""
    s = size / 256.0
    pts = np.zeros((68, 2), np.float32)
    t = np.linspace(-1, 1, 17)
    pts[:17] = np.stack([128 + 105 * t, 90 + 150 * np.sqrt(1 - 0.8 * t ** 2) * (1 - 0.4 * (t ** 2))], 1)
    pts[17:27] = np.stack([np.linspace(40, 216, 10), np.full(10, 60)], 1)
    pts[27:36] = np.stack([np.full(9, 128), np.linspace(80, 150, 9)], 1)
    pts[36:42] = [[60, 90], [70, 84], [85, 84], [95, 90], [85, 95], [70, 95]]
    pts[42:48] = pts[36:42] * [-1, 1] + [256, 0]
    ang = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    pts[48:68] = np.stack([128 + 40 * np.cos(ang), 190 + 15 * np.sin(ang)], 1)
    return pts * s


def region_masks(landmarks: np.ndarray, size: int) -> np.ndarray:
    """3,S,S uint8: face ("extended" hull: jaw + brows lifted towards the forehead), eyes, mouth."""
    lm = np.asarray(landmarks, np.float32)
    out = np.zeros((3, size, size), np.uint8)
    pts = lm.copy()
    brows = lm[17:27].copy()
    lift = (lm[36:48].mean(0)[1] - brows[:, 1].mean()) * 0.6
    brows[:, 1] -= max(lift, 0)
    hull = cv2.convexHull(np.concatenate([pts[:17], brows]).astype(np.int32))
    cv2.fillConvexPoly(out[0], hull, 255)
    eye_pad = max(2, int(size * 0.02))
    for sl in (slice(36, 42), slice(42, 48)):
        h = cv2.convexHull(lm[sl].astype(np.int32))
        cv2.fillConvexPoly(out[1], h, 255)
    out[1] = cv2.dilate(out[1], np.ones((2 * eye_pad + 1, 2 * eye_pad + 1), np.uint8))
    cv2.fillConvexPoly(out[2], cv2.convexHull(lm[48:68].astype(np.int32)), 255)
    out[2] = cv2.dilate(out[2], np.ones((2 * eye_pad + 1, 2 * eye_pad + 1), np.uint8))
    return out


def face_yaws(fs: "FaceSet") -> np.ndarray:
    """Head yaw (degrees) of each face from its landmarks (swap.sort.head_pose; NaN where degenerate)."""
    from ..faces.pose import head_pose

    if fs.landmarks is None:
        return np.full(len(fs), np.nan)
    return np.array([head_pose(lm)[0] for lm in fs.landmarks.cpu().numpy()])


def uniform_yaw_weights(yaws: np.ndarray, bin_deg: float = 10.0) -> np.ndarray:
    """Sampling weights under which every occupied `bin_deg`-wide yaw bin is drawn equally often, and the
    faces within a bin alike (DeepFaceLab's uniform_yaw: the few profile faces of a mostly frontal set get
    trained as often as the frontal ones). Faces without a yaw form a bin of their own."""
    yaws = np.asarray(yaws, np.float64)
    bins = np.where(np.isfinite(yaws), np.floor(np.nan_to_num(yaws) / bin_deg), np.inf)
    _, inverse, counts = np.unique(bins, return_inverse=True, return_counts=True)
    return 1.0 / (counts[inverse] * len(counts))


def load_faces(folder: Path, size: int, coverage: float = 1.0, name: Optional[str] = None,
               max_faces: Optional[int] = None) -> FaceSet:
    """Load every aligned crop of a faces folder, resized so the central `coverage` part is `size` px."""
    from ..video import list_images, read_image

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"faces folder not found: {folder}")
    files = [p for p in list_images(folder)]
    if max_faces:
        files = files[:max_faces]
    if not files:
        raise InputError(f"no face images (PNG/JPG) in {folder}: run `veriswap extract` first")
    meta = {}
    fj = folder / "faces.json"
    if fj.exists():
        try:
            doc = json.loads(fj.read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"unreadable {fj}: {e}") from e
        meta = validate(doc, FACES_JSON_SPEC, fj)["faces"]     # types and shapes, named by field
    full = int(round(size / coverage))
    imgs, lms, embs, missing = [], {}, [], []
    for p in files:
        rgb = read_image(p)
        h, w = rgb.shape[:2]
        if h != w:
            raise InputError(f"{p} is not a square aligned face crop ({w}x{h})")
        ent = meta.get(p.name)
        if ent and ent.get("landmarks") is not None:
            lm = np.asarray(ent["landmarks"], np.float32)
            if lm.shape != (68, 2):
                raise InputError(f"{fj}: landmarks of {p.name} are not 68x2")
            lms[p.name] = lm * (full / w)
        else:
            missing.append(p.name)
        if ent and ent.get("embedding") is not None:
            embs.append(np.asarray(ent["embedding"], np.float32))
        interp = cv2.INTER_AREA if w > full else cv2.INTER_CUBIC
        imgs.append(cv2.resize(rgb, (full, full), interpolation=interp) if w != full else rgb)
    mean_lm = np.mean(list(lms.values()), 0) if lms else _template_landmarks(full)
    order = [p.name for p in files]
    pts = np.stack([lms.get(n, mean_lm) for n in order]).astype(np.float32)
    masks = [region_masks(lm, full) for lm in pts]
    images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return FaceSet(name or folder.resolve().name, images, torch.from_numpy(np.stack(masks)), order,
                   np.mean(embs, 0) if embs else None,
                   torch.from_numpy((pts + 0.5) / full * 2 - 1))   # pixel centres -> align_corners=False units
