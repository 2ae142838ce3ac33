"""What sort decides and writes: its settings, each face's scores, and the report (sort.json)."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional

from provenance.fsutil import atomic_write_bytes

from .. import __version__
from ..errors import InputError
from ..lock import folder_lock
from .scorers import SCORERS

FORMAT = "veriswap-sort"
VERSION = 1
SORT_JSON = "sort.json"
REJECTED = "rejected"               # subfolder: train reads only FACES_DIR's own files (video.list_images)
FACES_JSON = "faces.json"
DEFAULT_MAX_DISTANCE = 0.6          # as extract's --max-distance: dlib's same-person threshold
RULES = ("blur", "identity", "keep")


# ---- settings, per-face scores, report ------------------------------------------------------------

@dataclass
class SortSettings:
    by: str = "blur"                        # a SCORERS name: the ranking shown and stored
    ref_face: Optional[str] = None          # photo: identity = distance to its largest face (else the folder's median)
    reject_blur: Optional[float] = None     # reject faces whose blur score is below this
    max_distance: Optional[float] = None    # reject faces whose identity distance is above this
    keep: Optional[int] = None              # keep the best N, spread over yaw/pitch; reject the rest
    rescore: bool = False                   # ignore faces.json's scores: score every face from its pixels

    def effective_max_distance(self) -> Optional[float]:
        """--max-distance, or 0.6 when ranking by identity against --ref-face (as extract does)."""
        if self.max_distance is None and self.by == "identity" and self.ref_face is not None:
            return DEFAULT_MAX_DISTANCE
        return self.max_distance

    def check(self) -> None:
        if self.by not in SCORERS:
            raise InputError(f"unknown --by {self.by!r}; choose from {', '.join(SCORERS)}")
        if self.keep is not None and self.keep < 1:
            raise InputError(f"--keep must be >= 1, got {self.keep}")
        for name, v in (("--reject-blur", self.reject_blur), ("--max-distance", self.max_distance)):
            if v is not None and not math.isfinite(v):
                raise InputError(f"{name} must be a number, got {v}")


@dataclass
class FaceScore:
    """One crop: where it is, its scores (None: not computed or unknown) and why it would be rejected."""

    file: str
    where: str = "top"                      # "top": FACES_DIR; "rejected": FACES_DIR/rejected
    blur: Optional[float] = None            # variance of the Laplacian (higher = sharper)
    identity: Optional[float] = None        # embedding distance to the reference (lower = more alike)
    yaw: Optional[float] = None             # degrees, + = nose towards the crop's right (the person's left)
    pitch: Optional[float] = None           # degrees, + = looking up
    hist: Optional[float] = None            # Bhattacharyya distance to the mean grey histogram
    scored_from: str = "faces.json"         # "faces.json" | "pixels" | "faces.json+pixels"
    landmarks: Optional[str] = None         # "faces.json" | "detected" (dlib on the crop) | "template" (no face found)
    reject: Dict[str, str] = field(default_factory=dict)    # rule -> why ({} = kept)
    moved: Optional[dict] = None            # set while in rejected/: {"reject": {...}, "time": ...}

    def score(self, name: str) -> Optional[float]:
        return getattr(self, name)


@dataclass
class RestoreSummary:
    folder: str
    restored: List[str] = field(default_factory=list)
    entries_restored: int = 0               # faces.json entries put back (dropped by an extract re-run)
    conflicts: List[str] = field(default_factory=list)  # left in rejected/: a file of that name is in FACES_DIR
    seconds: float = 0.0


@dataclass
class SortReport:
    folder: Path
    settings: SortSettings
    faces: List[FaceScore]                  # FACES_DIR's faces in rank order, then rejected/'s
    scores: List[str]                       # the scores computed, `settings.by` first
    reference: dict                         # what identity / hist / pose bins were measured against
    seconds: float = 0.0
    moved: List[str] = field(default_factory=list)     # moved to rejected/ by `apply`
    warnings: List[str] = field(default_factory=list)
    created: str = ""

    @property
    def ranked(self) -> List[FaceScore]:
        """FACES_DIR's faces, best first (by `settings.by`; yaw/pitch: ascending)."""
        return [f for f in self.faces if f.where == "top"]

    @property
    def rejected(self) -> List[FaceScore]:
        """FACES_DIR's faces that the rules reject (what `apply` moves)."""
        return [f for f in self.ranked if f.reject]

    @property
    def kept(self) -> List[FaceScore]:
        return [f for f in self.ranked if not f.reject]

    def counts(self) -> dict:
        moved = set(self.moved)
        rejected = [f for f in self.faces if f.reject and (f.where == "top" or f.file in moved)]
        by_rule: Dict[str, int] = {r: sum(r in f.reject for f in rejected) for r in RULES}
        return {"faces": len(self.ranked) + len(moved), "in_rejected": len(self.faces) - len(self.ranked) - len(moved),
                "from_faces_json": sum(f.scored_from == "faces.json" for f in self.faces),
                "from_pixels": sum(f.scored_from != "faces.json" for f in self.faces),
                "rejected": len(rejected), "rejected_by": by_rule, "moved": len(moved)}

    def to_json(self) -> dict:
        faces = {}
        for i, f in enumerate(self.faces):
            d = {"in": f.where, "rank": i + 1 if f.where == "top" else None}
            d.update({k: _round(f.score(k)) for k in self.scores})
            d.update(scored_from=f.scored_from, landmarks=f.landmarks, reject=f.reject, moved=f.moved)
            faces[f.file] = d
        s = asdict(self.settings)
        s["max_distance"] = self.settings.effective_max_distance()
        s["ref_face"] = None if self.settings.ref_face is None else str(self.settings.ref_face)
        return {"format": FORMAT, "version": VERSION, "created_by": f"veriswap {__version__}",
                "created": self.created, "folder": str(Path(self.folder).resolve()), "settings": s,
                "scores": self.scores, "reference": self.reference, "counts": self.counts(),
                "seconds": round(self.seconds, 3), "ranking": [f.file for f in self.ranked], "faces": faces}

    def write(self) -> Path:
        """FACES_DIR/sort.json, atomically."""
        path = Path(self.folder) / SORT_JSON
        atomic_write_bytes(path, (json.dumps(self.to_json(), indent=1) + "\n").encode())
        return path

    def apply(self) -> List[str]:
        """Move the rejected faces into FACES_DIR/rejected/ (os.replace each: an interrupted run leaves every
        file whole in one place or the other) and record the moves in sort.json. Their faces.json entries
        stay, and are copied to rejected/faces.json so that `restore_faces` can put them back after an
        extract re-run dropped them. Returns the files moved; re-running with the same settings moves none."""
        with folder_lock(Path(self.folder), "veriswap sort --apply"):   # not while extract writes there
            from .moves import apply_moves
            return apply_moves(self)


def _round(v: Optional[float], nd: int = 4) -> Optional[float]:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), nd)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
