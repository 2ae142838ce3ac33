"""`detect dataset`: face crops of real videos and labelled swaps + an index (dataset.json).

- real videos (or folders of them): N evenly spaced frames, faces found by `detect.faces` (dlib +
  tracking), every face is a real sample;
- fakes: `veriswap convert` outputs, whose OUT.labels/labels.json says which frames and faces were
  swapped: N evenly spaced *swapped* frames, and only the swapped faces (boxes/landmarks from the
  labels, no detection); a fake video without labels is treated like a real one with label 1.

Crops: 1.3 x the face box, 256 px (DeepfakeBench). Split by *group* of videos, never by frame: videos
are grouped by content (`detect.grouping`: a fingerprint of decoded frames, the source named by labels or
the C2PA ingredient, a sources CSV), so the same footage never lands on both sides of a split, copied or
not; `split_by="identity"` also keeps each person on one side. Held-out identities go to test, and a
`test_only` dataset (an eval set from any real and fake videos) puts everything there. Detected face
tracks that are not faces (dlib's CNN finds none in their boxes) are dropped and reported
(`detect.identity`). Resumable: each finished video is recorded atomically in .parts/.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from swap import alignments as A
from provenance.fsutil import atomic_write_bytes, load_versioned_json
from swap.errors import InputError
from swap.lock import folder_lock
from swap.labels import Labels, find_labels, read_labels
from swap.video import VIDEO_EXTS, expand_inputs, probe, reencode

from .crops import CROP_SCALE, CROP_SIZE

FORMAT = "veriswap-detect-dataset"
VERSION = 1
PARTS = ".parts"
PART_VERSION = 2                        # parts of version 1 (no track checks, no fingerprint) are redone
SPLITS = ("train", "val", "test")
SPLIT_BY = ("content", "identity")


@dataclass
class DatasetSettings:
    frames: int = 32                    # evenly spaced frames per video (0 = all)
    size: int = CROP_SIZE
    scale: float = CROP_SCALE
    split: Tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0                       # changes the (deterministic) group order of the split
    detector: str = "hog"
    crf: Optional[int] = None           # re-encode each video with H.264 at this CRF first (FF++'s c23 / c40)
    hold_out: Tuple[str, ...] = ()      # identities (photo file or known name) whose groups all go to test
    test_only: bool = False             # every video in test: an eval-only dataset
    split_by: str = "content"           # "content": same footage together; "identity": each person on one side
    sources: Optional[str] = None       # CSV fake,source[,identity] for fakes that record no source
    verify_faces: bool = True           # drop detected tracks where dlib's CNN finds no face

    @staticmethod
    def parse_split(text: str) -> Tuple[float, float, float]:
        """"0.7,0.15,0.15" -> (0.7, 0.15, 0.15) (train, val, test fractions)."""
        try:
            parts = tuple(float(x) for x in text.split(","))
        except ValueError:
            raise InputError(f"--split takes three comma-separated fractions (train,val,test), got {text!r}") from None
        if len(parts) != 3:
            raise InputError(f"--split takes three comma-separated fractions (train,val,test), got {text!r}")
        return parts

    def key(self) -> dict:
        """Settings that change the crops of a video (a resume must match them)."""
        return {"frames": self.frames, "size": self.size, "scale": self.scale, "detector": self.detector,
                **({"crf": self.crf} if self.crf is not None else {}),
                **({} if self.verify_faces else {"verify_faces": False})}

    def check(self) -> None:
        """Ranges and choices (InputError naming the option), before any work."""
        if self.frames < 0 or not 32 <= self.size <= 1024 or not 1.0 <= self.scale <= 3.0:
            raise InputError("--frames must be >= 0, --size 32..1024, --scale 1.0..3.0")
        if self.crf is not None and not 0 <= self.crf <= 51:
            raise InputError(f"--crf must be 0..51 (H.264), got {self.crf}")
        if self.split_by not in SPLIT_BY:
            raise InputError(f"--split-by must be one of {', '.join(SPLIT_BY)}, got {self.split_by!r}")
        if self.test_only and self.hold_out:
            raise InputError("--test-only puts every video in test already; --hold-out-identity is not needed")


@dataclass
class Sample:
    file: str                           # crop PNG, relative to the dataset folder
    video: str                          # video id
    frame: int
    face: int
    track: int
    label: int                          # 0 real, 1 fake
    split: str = ""
    landmarks: Optional[List[List[float]]] = None   # 68 points in crop px


@dataclass
class VideoEntry:
    id: str
    path: str
    label: int
    kind: str                           # "real" | "labels" (convert output) | "video" (fake, no labels)
    group: str                          # split unit: a swap shares its source's group
    frames_total: int
    frames_sampled: int = 0
    samples: int = 0
    split: str = ""
    method: Optional[str] = None        # fakes: how they were made (from convert's labels), for per-method metrics
    grouped: Optional[str] = None       # why it shares its group (e.g. "same content as X"); None: alone
    held_out: Optional[str] = None      # the held-out identity that sent it to test
    identity: Optional[str] = None      # the known identity its main face matches (hold-out references)
    dropped: List[str] = field(default_factory=list)   # face tracks left out, and why


def manipulation(labels: Optional[Labels]) -> str:
    """A fake's method name: the swap model's architecture, hash prefix and direction from convert's labels
    (e.g. "veriswap original 0beaae00 a2b"), so `eval` can report each manipulation apart, as
    DeepfakeBench reports FF++'s four; "unlabelled" for a fake without labels (another tool's)."""
    if labels is None:
        return "unlabelled"
    model = labels.model or {}
    sha = str(model.get("sha256") or "").split(":")[-1][:8]
    return " ".join(x for x in ("veriswap", model.get("architecture"), sha, labels.direction) if x)


@dataclass
class Dataset:
    root: Path
    settings: dict
    videos: Dict[str, VideoEntry]
    samples: List[Sample]

    def split(self, name: str) -> List[Sample]:
        return [s for s in self.samples if s.split == name]

    def counts(self) -> Dict[str, Dict[str, int]]:
        out = {sp: {"real": 0, "fake": 0, "videos": 0} for sp in SPLITS}
        for s in self.samples:
            out[s.split]["fake" if s.label else "real"] += 1
        for v in self.videos.values():
            if v.split:
                out[v.split]["videos"] += 1
        return out


@dataclass
class DatasetSummary:
    root: str = ""
    videos: int = 0
    videos_resumed: int = 0
    samples: int = 0
    counts: Dict[str, Dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)     # what was dropped, held out, grouped (not problems)


# ---- inputs ----------------------------------------------------------------------------------

def _video_id(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)[:40] or "video"
    return f"{stem}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"


def _expand(paths: Sequence[Path], what: str) -> List[Path]:
    out = []
    for p in expand_inputs(paths):
        if p.is_dir() or p.suffix.lower() not in VIDEO_EXTS:
            raise InputError(f"--{what} takes videos or folders of videos, not {p}")
        out.append(p)
    return out


def plan_videos(real: Sequence[Path], fake: Sequence[Path]) -> List[Tuple[VideoEntry, Optional[Labels]]]:
    """Video entries (without split) and, for convert outputs, their labels. Validates everything
    before any work starts."""
    plans: List[Tuple[VideoEntry, Optional[Labels]]] = []
    seen: Dict[str, str] = {}
    for label, paths, what in ((0, real, "real"), (1, fake, "fake")):
        for p in _expand(paths, what):
            rp = str(p.resolve())
            if rp in seen:
                raise InputError(f"{p} is given twice (as {seen[rp]} and {what})")
            seen[rp] = what
            info = probe(p)
            labels, kind, group = None, "real" if label == 0 else "video", rp
            lp = find_labels(p) if label == 1 else None
            if lp is not None:
                labels, kind = read_labels(lp), "labels"
                src = labels.source
                if src:
                    group = str(Path(src).resolve()) if Path(src).exists() else str(src)
            plans.append((VideoEntry(_video_id(p), rp, label, kind, group, info.frames,
                                     method=manipulation(labels) if label == 1 else None), labels))
    if not plans:
        raise InputError("no videos given (use --real and/or --fake)")
    return plans


# ---- split -----------------------------------------------------------------------------------

from .split import assign_splits  # noqa: E402,F401 - part of this module's API (tests, bench)


# ---- per video -------------------------------------------------------------------------------

def _fingerprint(path: Path, labels_path: Optional[Path]) -> dict:
    fp = A.fingerprint(path)
    if labels_path is not None:
        fp["labels"] = A.fingerprint(labels_path)
    return fp


def _crop_rel(vid: str, frame: int, face: int) -> str:
    return f"crops/{vid}/{frame:06d}_{face}.png"


def _round_pts(pts: Optional[np.ndarray]) -> Optional[List[List[float]]]:
    return None if pts is None else np.round(pts, 1).tolist()


def _process_video(root: Path, v: VideoEntry, labels: Optional[Labels], s: DatasetSettings,
                   identity: Optional[Tuple[str, np.ndarray]] = None) -> dict:
    part = root / PARTS / f"{v.id}.json"
    lp = find_labels(Path(v.path)) if labels is not None else None
    fp = _fingerprint(Path(v.path), lp)
    want = {"version": PART_VERSION, "identity": identity[0] if identity else None}
    if part.is_file():
        try:
            doc = json.loads(part.read_bytes())
            if doc.get("settings") == s.key() and doc.get("fingerprint") == fp and \
                    all(doc.get(k) == w for k, w in want.items()) and \
                    all((root / x["file"]).is_file() for x in doc["samples"]):
                doc["resumed"] = True
                return doc
        except (ValueError, KeyError, TypeError):
            pass            # damaged part: redo the video
    from .grouping import content_fingerprint

    content = content_fingerprint(Path(v.path))
    src = Path(v.path)
    if s.crf is not None:           # the crops come from a compressed copy (same frames, same labels)
        src = root / PARTS / f".{v.id}.crf{s.crf}.mp4"
        src.parent.mkdir(parents=True, exist_ok=True)
        reencode(Path(v.path), src, s.crf)
    from .sampling import samples_of_detected, samples_of_labelled

    dropped: List[str] = []
    try:
        if labels is not None:
            samples, n, tracks = samples_of_labelled(root, v, src, labels, s)
        else:
            samples, n, tracks, dropped = samples_of_detected(root, v, src, s, identity)
    finally:
        if s.crf is not None:
            src.unlink(missing_ok=True)
    doc = {**want, "settings": s.key(), "fingerprint": fp, "frames_sampled": n, "content": content,
           "tracks": tracks, "dropped": dropped, "samples": [asdict(x) for x in samples]}
    atomic_write_bytes(part, json.dumps(doc, separators=(",", ":")).encode())
    return doc


# ---- the stage -------------------------------------------------------------------------------

def build_dataset(real: Sequence[Path], fake: Sequence[Path], out: Path,
                  settings: Optional[DatasetSettings] = None,
                  progress: Optional[Callable[[int, int, str], None]] = None) -> DatasetSummary:
    """Build (or resume) a dataset folder. `progress(done, total, video_name)` after each video. The folder
    is held while it is written: a second build into it is refused (swap.lock)."""
    if Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"output is not a folder: {out}")
    with folder_lock(Path(out), "veriswap detect dataset"):
        return _build_dataset(real, fake, out, settings, progress)


def _build_dataset(real: Sequence[Path], fake: Sequence[Path], out: Path, settings: Optional[DatasetSettings],
                   progress: Optional[Callable[[int, int, str], None]]) -> DatasetSummary:
    t0 = time.perf_counter()
    s = settings or DatasetSettings()
    s.check()
    out = Path(out)
    plans = plan_videos(real, fake)
    from .grouping import read_sources_csv
    from .split import assign, groups, references

    rows = read_sources_csv(Path(s.sources)) if s.sources else {}
    refs = references(s.hold_out, rows)
    out.mkdir(parents=True, exist_ok=True)
    summary = DatasetSummary(root=str(out))
    videos: Dict[str, VideoEntry] = {}
    samples: List[Sample] = []
    docs: Dict[str, dict] = {}
    for i, (v, labels) in enumerate(plans):
        row = rows.get(v.path)
        ident = (row.identity, refs[row.identity]) if row is not None and row.identity and labels is None else None
        doc = _process_video(out, v, labels, s, ident)
        docs[v.id] = doc
        summary.videos_resumed += bool(doc.get("resumed"))
        v.frames_sampled = int(doc["frames_sampled"])
        v.dropped = list(doc.get("dropped") or [])
        vs = [Sample(**x) for x in doc["samples"]]
        v.samples = len(vs)
        for d in v.dropped:
            summary.notes.append(f"dropped from {Path(v.path).name}: {d}")
        if not vs:
            summary.warnings.append(f"no faces in {Path(v.path).name}: left out")
        videos[v.id] = v
        samples.extend(vs)
        if progress:
            progress(i + 1, len(plans), Path(v.path).name)
    used = [v for v in videos.values() if v.samples]
    if not used:
        raise InputError("no faces found in any of the videos")
    group = groups(used, plans, docs, rows, s, summary)
    assign(used, group, docs, refs, s, summary)
    for x in samples:
        x.split = videos[x.video].split
    ds = Dataset(out, {**s.key(), "split": list(s.split), "seed": s.seed, "split_by": s.split_by,
                       "hold_out": list(s.hold_out), "test_only": s.test_only}, videos, samples)
    save(ds)
    summary.videos = len(videos)
    summary.samples = len(samples)
    summary.counts = ds.counts()
    for sp in SPLITS:
        c = summary.counts[sp]
        if (c["real"] or c["fake"]) and (c["real"] == 0 or c["fake"] == 0):
            more = " (with --sbi, training adds self-blended fakes to train and val)" if sp != "test" else \
                ": AUC on it is undefined"
            summary.warnings.append(f"the {sp} split has one class only: {c['real']} real and {c['fake']} fake "
                                    f"samples{more}")
        elif sp == "train" and not s.test_only and not c["real"] and not c["fake"]:
            summary.warnings.append("the train split is empty")
    summary.seconds = time.perf_counter() - t0
    return summary


def save(ds: Dataset) -> None:
    doc = {"format": FORMAT, "version": VERSION, "settings": ds.settings,
           "counts": ds.counts(),
           "videos": {k: asdict(v) for k, v in sorted(ds.videos.items())},
           "samples": [asdict(x) for x in ds.samples]}
    atomic_write_bytes(ds.root / "dataset.json", json.dumps(doc, separators=(",", ":")).encode())


def _dataset_spec():
    """What `load` accepts (provenance.schema: a wrong type is one line naming file and field)."""
    from provenance import schema as S

    def rel_file(v) -> None:    # a crop inside the dataset folder: relative, no way out
        if not isinstance(v, str) or not v or v.startswith(("/", "\\")) or ".." in v.replace("\\", "/").split("/"):
            S.fail(f"expected a path inside the dataset folder, got {S._got(v)}")

    opt_str = S.Opt(S.Str())
    video = S.Obj({"id": S.Str(), "path": S.Str(), "label": S.Int(0, 1), "kind": S.Str(), "group": S.Str(),
                   "frames_total": S.Int(0)},
                  {"frames_sampled": S.Int(0), "samples": S.Int(0), "split": S.Str(SPLITS + ("",)), "method": opt_str,
                   "grouped": opt_str, "held_out": opt_str, "identity": opt_str, "dropped": S.List_(S.Str())},
                  what="an object (a video entry)")
    sample = S.Obj({"file": rel_file, "video": S.Str(), "frame": S.Int(0), "face": S.Int(0), "track": S.Int(),
                    "label": S.Int(0, 1), "split": S.Str(SPLITS)},
                   {"landmarks": S.Opt(S.Array((68, 2), -1e6, 1e6, what="68 [x, y] points"))},
                   what="an object (a sample)")
    return S.Obj({"videos": S.Map(video, what="an object (video id -> entry)"), "samples": S.List_(sample)},
                 {"settings": S.Obj()}, what="an object (a dataset index)")


def load(root: Path) -> Dataset:
    from provenance.schema import SchemaError, validate

    root = Path(root)
    path = root / "dataset.json" if root.is_dir() else root
    if not path.is_file():
        raise InputError(f"not a dataset folder (no dataset.json): {root}")
    d = validate(load_versioned_json(path, FORMAT, VERSION, "detect dataset"), _dataset_spec(), path)
    for i, x in enumerate(d["samples"]):
        if x["video"] not in d["videos"]:
            raise SchemaError(f"{path}: field samples[{i}].video: {x['video']!r} is not among the videos")
    videos = {k: VideoEntry(**{f: v[f] for f in VideoEntry.__dataclass_fields__ if f in v}) for k, v in d["videos"].items()}
    samples = [Sample(**{f: x[f] for f in Sample.__dataclass_fields__ if f in x}) for x in d["samples"]]
    return Dataset(path.parent, d.get("settings", {}), videos, samples)
