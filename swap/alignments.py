"""The alignments file: the contract between extract, convert and detect.

JSON, versioned (see README "Alignments file"). Per source -> per processed frame -> faces, each
with its box, 68 landmarks and affine matrix in *frame* pixels, identity embedding and blur score.
Every processed frame is present, also those without a face (an empty list), so a reader can
tell "no face here" from "not processed".

Also writes the faces folder's `faces.json` (crop-pixel landmarks), which `train` reads.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from .errors import InputError
from .video import atomic_write_bytes

FORMAT = "veriswap-alignments"
VERSION = 1
FACES_JSON_VERSION = 1


@dataclass
class FaceRecord:
    """One face in one frame. Coordinates in source-frame pixels."""

    face: int                       # index within the frame (largest first)
    track: int                      # id of the face track within the source (stable across frames)
    box: List[float]                # x0, y0, x1, y1: detector box, or the tracked box between detections
    score: float                    # detector score (carried along a track between detections)
    keyframe: bool                  # True where the detector ran on this frame
    landmarks: List[List[float]]    # 68 x [x, y] (smoothed over time for videos)
    matrix: List[List[float]]       # 2x3 affine: frame px -> aligned crop px
    size: int                       # aligned crop side in px
    embedding: Optional[List[float]]  # 128-d dlib embedding (refreshed per track, see README)
    blur: float                     # variance of the Laplacian of the aligned crop
    file: str                       # aligned crop's file name in the faces folder

    @classmethod
    def from_dict(cls, d: dict) -> "FaceRecord":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def landmarks_array(self) -> np.ndarray:
        return np.asarray(self.landmarks, np.float32)

    def matrix_array(self) -> np.ndarray:
        return np.asarray(self.matrix, np.float64)


@dataclass
class SourceRecord:
    path: str
    key: str                        # stem used in face file names
    width: int
    height: int
    fps: float
    frames_total: int               # frames in the source (container count for videos)
    is_image: bool
    fingerprint: Dict[str, int]     # size + mtime_ns: a changed file is re-extracted
    complete: bool = False
    frames: Dict[int, List[FaceRecord]] = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "frames"}
        d["frames"] = {str(i): [asdict(f) for f in fs] for i, fs in sorted(self.frames.items())}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "SourceRecord":
        frames = {int(i): [FaceRecord.from_dict(f) for f in fs] for i, fs in d.get("frames", {}).items()}
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k != "frames"}
        return cls(**fields, frames=frames)

    def faces(self) -> Iterator[Tuple[int, FaceRecord]]:
        for i in sorted(self.frames):
            for f in self.frames[i]:
                yield i, f


@dataclass
class Alignments:
    settings: dict
    sources: Dict[str, SourceRecord] = field(default_factory=dict)
    created_by: str = ""

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "created_by": self.created_by,
                "settings": self.settings,
                "sources": {k: s.to_json() for k, s in self.sources.items()}}

    def save(self, path: Path) -> None:
        data = json.dumps(self.to_json(), separators=(",", ":")).encode()
        atomic_write_bytes(Path(path), data)

    def source_for(self, path: str | Path) -> Optional[SourceRecord]:
        """Find a source by path as given, resolved path, or file name."""
        p = Path(path)
        for cand in (str(p), str(p.resolve()) if p.exists() else None):
            if cand and cand in self.sources:
                return self.sources[cand]
        hits = [s for s in self.sources.values() if Path(s.path).name == p.name]
        return hits[0] if len(hits) == 1 else None


def load(path: Path) -> Alignments:
    """Read an alignments file; clear InputError for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such alignments file: {path}")
    try:
        d = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"not an alignments file (bad JSON): {path}") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise InputError(f"not a veriswap alignments file: {path}")
    if d.get("version") != VERSION:
        raise InputError(f"alignments version {d.get('version')} not supported (this veriswap reads {VERSION}): {path}")
    try:
        sources = {k: SourceRecord.from_json(v) for k, v in d["sources"].items()}
        return Alignments(d["settings"], sources, d.get("created_by", ""))
    except (KeyError, TypeError, ValueError):
        raise InputError(f"alignments file is malformed: {path}") from None


def fingerprint(path: Path) -> Dict[str, int]:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        return {"size": sum(p.stat().st_size for p in files), "mtime_ns": max((p.stat().st_mtime_ns for p in files), default=0),
                "count": len(files)}
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_faces_json(faces_dir: Path, alignments: Alignments, size: int) -> int:
    """Merge this run's faces into FACES_DIR/faces.json (the training set index). Returns its count."""
    faces_dir = Path(faces_dir)
    path = faces_dir / "faces.json"
    entries: dict = {}
    if path.is_file():
        try:
            old = json.loads(path.read_bytes())
            if old.get("size") == size:
                entries = old.get("faces", {})
        except (ValueError, AttributeError):
            entries = {}
    for src in alignments.sources.values():
        for frame, f in src.faces():
            m = f.matrix_array()
            pts = f.landmarks_array() @ m[:, :2].T + m[:, 2]
            entries[f.file] = {"source": src.path, "frame": frame, "face": f.face,
                               "landmarks": np.round(pts, 2).tolist(), "embedding": f.embedding,
                               "blur": f.blur}
    # drop entries whose PNG is gone (e.g. user pruned bad crops by deleting files)
    entries = {k: v for k, v in entries.items() if os.path.exists(faces_dir / k)}
    data = {"version": FACES_JSON_VERSION, "size": size, "faces": dict(sorted(entries.items()))}
    atomic_write_bytes(path, json.dumps(data, separators=(",", ":")).encode())
    return len(entries)
