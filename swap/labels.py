"""The labelled-swap record: what `convert` writes beside a swapped video and `detect` reads.

    OUT.mp4
    OUT.labels/labels.json        a `Labels` document (format "veriswap-labels", version 1)
    OUT.labels/masks/NNNNNN.png   per swapped frame: the manipulation mask (0-255, frame size)

`labels.json` holds the source video, the model (architecture, weights hash, identities), the direction
and settings, counts, and per frame: swapped or not, each swapped face's box (x0, y0, x1, y1) and 68
landmarks in frame pixels, and the mask file. `read_labels` / `write_labels` are its one reader and one
writer; frame ranges ("0-99,250-") that say which frames a partial swap altered are parsed and written
here too. The demo's mirrored copies of a swap carry the same record (with `mirrored_from`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from provenance import schema as S
from provenance.fsutil import atomic_write_bytes, load_versioned_json

from .errors import InputError

FORMAT = "veriswap-labels"
VERSION = 1
LABELS_FILE = "labels.json"
MASKS_DIR = "masks"

Ranges = List[Tuple[int, Optional[int]]]


# ---- where the record lives -----------------------------------------------------------------------

def default_labels_dir(out: Path) -> Path:
    """OUT.labels/ beside OUT.mp4."""
    return Path(out).with_name(Path(out).stem + ".labels")


def find_labels(video: Path) -> Optional[Path]:
    """The labels file `convert` wrote beside `video`, if there is one."""
    p = default_labels_dir(video) / LABELS_FILE
    return p if p.is_file() else None


def mask_name(index: int) -> str:
    return f"{index:06d}.png"


# ---- frame ranges ---------------------------------------------------------------------------------

def parse_frame_ranges(text: Optional[str]) -> Optional[Ranges]:
    """'0-99,250-,300' -> [(0, 99), (250, None), (300, 300)]: inclusive frame-index ranges (None: to the end).
    Partial swaps make the temporal-localisation material (which frames were altered) research needs."""
    if text is None:
        return None
    ranges: Ranges = []
    for part in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:(-)(\d*))?", part)
        if not m:
            raise InputError(f"bad --frames {text!r}: use frame indices and ranges like 0-99,250-")
        lo = int(m.group(1))
        hi = lo if not m.group(2) else None if m.group(3) == "" else int(m.group(3))   # "7" | "7-" | "7-9"
        if hi is not None and hi < lo:
            raise InputError(f"bad --frames range {part!r}: the end is before the start")
        ranges.append((lo, hi))
    return ranges


def format_frame_ranges(indices: List[int]) -> str:
    """[2, 3, 4, 5, 12, 13] -> '2-5,12-13' (the inverse of parse_frame_ranges for closed ranges)."""
    runs: List[List[int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def in_ranges(index: int, ranges: Optional[Ranges]) -> bool:
    return ranges is None or any(lo <= index and (hi is None or index <= hi) for lo, hi in ranges)


# ---- the record -----------------------------------------------------------------------------------

def _put(d: Dict[str, Any], **kv: Any) -> Dict[str, Any]:
    """Add the keys whose value is not None (optional fields are absent from the file, not null)."""
    d.update({k: v for k, v in kv.items() if v is not None})
    return d


@dataclass
class FaceLabel:
    """One swapped face in one frame (frame pixels)."""

    box: List[float]                            # x0, y0, x1, y1
    face: Optional[int] = None                  # index of the face in the alignments file's frame
    track: Optional[int] = None                 # face track (the same person through the video)
    landmarks: Optional[List[List[float]]] = None   # 68 x (x, y)
    mask_pixels: Optional[int] = None           # pixels of the frame's mask this face covers (> 50%)

    def to_dict(self) -> Dict[str, Any]:
        d = {"face": self.face, "track": self.track, "box": self.box}
        return _put(d, landmarks=self.landmarks, mask_pixels=self.mask_pixels)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "FaceLabel":
        return cls(d["box"], d.get("face"), d.get("track"), d.get("landmarks"), d.get("mask_pixels"))


@dataclass
class FrameLabel:
    """One frame of the output: swapped or not, its swapped faces and its mask file (relative to the labels)."""

    index: int
    time: Optional[float] = None
    swapped: bool = False
    faces: List[FaceLabel] = field(default_factory=list)
    mask: Optional[str] = None                  # "masks/NNNNNN.png" when swapped

    def to_dict(self) -> Dict[str, Any]:
        d = {"index": self.index, "time": self.time, "swapped": self.swapped,
             "faces": [f.to_dict() for f in self.faces]}
        return _put(d, mask=self.mask)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "FrameLabel":
        return cls(int(d["index"]), d.get("time"), bool(d.get("swapped")),
                   [FaceLabel.from_dict(f) for f in d.get("faces") or []], d.get("mask"))


@dataclass
class Labels:
    """A labelled swap: `labels.json` as a record (fields absent from a file are None)."""

    source: Optional[str] = None                # the real video the swap was made from (absolute path)
    frames: List[FrameLabel] = field(default_factory=list)
    output: Optional[str] = None                # the swapped video's file name
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    direction: Optional[str] = None             # "a2b" | "b2a"
    model: Optional[Dict[str, Any]] = None      # architecture, sha256 ("sha256:..."), iteration, identities
    settings: Optional[Dict[str, Any]] = None   # convert's settings
    counts: Optional[Dict[str, int]] = None     # frames, frames_swapped, faces_swapped, ...
    c2pa_manifest: Optional[str] = None         # the signed output's active manifest label
    mirrored_from: Optional[str] = None         # the demo's mirrored copies: the output they mirror
    created_by: Optional[str] = None
    version: int = VERSION

    def swapped_indices(self) -> List[int]:
        return [f.index for f in self.frames if f.swapped]

    @property
    def swapped_frames(self) -> str:
        """Every swapped frame as ranges ("40-79")."""
        return format_frame_ranges(self.swapped_indices())

    @property
    def model_sha256(self) -> Optional[str]:
        return (self.model or {}).get("sha256")

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"format": FORMAT, "version": self.version}
        _put(d, created_by=self.created_by)
        d["source"] = self.source
        _put(d, mirrored_from=self.mirrored_from, output=self.output)
        d.update({"width": self.width, "height": self.height})
        _put(d, fps=self.fps)
        d["direction"] = self.direction
        _put(d, model=self.model, settings=self.settings, counts=self.counts)
        d["frames"] = [f.to_dict() for f in self.frames]
        return _put(d, c2pa_manifest=self.c2pa_manifest)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Labels":
        """Lenient: a document with only `frames` (and each frame only `index`/`swapped`) is a record too."""
        return cls(source=d.get("source"), frames=[FrameLabel.from_dict(f) for f in d.get("frames") or []],
                   output=d.get("output"), width=d.get("width"), height=d.get("height"), fps=d.get("fps"),
                   direction=d.get("direction"), model=d.get("model"), settings=d.get("settings"),
                   counts=d.get("counts"), c2pa_manifest=d.get("c2pa_manifest"),
                   mirrored_from=d.get("mirrored_from"), created_by=d.get("created_by"),
                   version=d.get("version", VERSION))


def _mask_path(v: Any) -> None:
    """A mask file inside the labels folder ("masks/NNNNNN.png"): no absolute path, no way out."""
    if not isinstance(v, str) or not v or v.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", v):
        S.fail(f"expected a path inside the labels folder, got {S._got(v)}")


_FACE_SPEC = S.Obj({"box": S.Array((4,), -1e6, 1e6, what="a box [x0, y0, x1, y1]")},
                   {"face": S.Opt(S.Int(0)), "track": S.Opt(S.Int()),
                    "landmarks": S.Opt(S.Array((68, 2), -1e6, 1e6, what="68 [x, y] points")),
                    "mask_pixels": S.Opt(S.Int(0))},
                   what="an object (a swapped face)")
_FRAME_SPEC = S.Obj({"index": S.Int(0)},
                    {"time": S.Opt(S.Num(0)), "swapped": S.Opt(S.Bool()), "faces": S.Opt(S.List_(_FACE_SPEC)),
                     "mask": S.Opt(_mask_path)}, what="an object (a frame)")
LABELS_SPEC = S.Obj(
    {"frames": S.List_(_FRAME_SPEC)},
    {"source": S.Opt(S.Str()), "output": S.Opt(S.Str()), "width": S.Opt(S.Int(1)), "height": S.Opt(S.Int(1)),
     "fps": S.Opt(S.Num(0)), "direction": S.Opt(S.Str()), "created_by": S.Opt(S.Str()),
     "model": S.Opt(S.Obj(optional={"architecture": S.Opt(S.Str()), "sha256": S.Opt(S.Str()),
                                    "iteration": S.Opt(S.Int(0)), "identities": S.Opt(S.Obj())})),
     "settings": S.Opt(S.Obj()), "counts": S.Opt(S.Map(S.Int(0))), "c2pa_manifest": S.Opt(S.Str()),
     "mirrored_from": S.Opt(S.Str()), "version": S.Int(1)}, what="an object (a labels file)")


def as_labels(labels: Union[Labels, Dict[str, Any]]) -> Labels:
    return labels if isinstance(labels, Labels) else Labels.from_dict(labels)


def read_labels(path: Path) -> Labels:
    """Read a labels file (`labels.json` or the folder holding it); InputError for anything that is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / LABELS_FILE
    d = load_versioned_json(path, FORMAT, None, "labels file")
    if "frames" not in d:
        raise InputError(f"not a veriswap labels file: {path}")
    S.validate(d, LABELS_SPEC, path)
    try:
        return Labels.from_dict(d)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"labels file is malformed: {path}") from None


def labels_bytes(labels: Labels, indent: Optional[int] = None) -> bytes:
    """The file's bytes: compact (convert's output) or indented (the demo's mirrored copies)."""
    if indent is None:
        return json.dumps(labels.to_dict(), separators=(",", ":")).encode()
    return json.dumps(labels.to_dict(), indent=indent).encode()


def write_labels(labels_dir: Path, labels: Labels, indent: Optional[int] = None) -> Path:
    """Write LABELS_DIR/labels.json atomically; returns its path."""
    p = Path(labels_dir) / LABELS_FILE
    atomic_write_bytes(p, labels_bytes(labels, indent))
    return p
