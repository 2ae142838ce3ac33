"""Sort and clean a faces folder before training (faceswap's `tools sort`, DeepFaceLab's `sort` / best-N).

Every crop gets scores: `blur` (sharpness), `identity` (distance to the folder's median embedding or to a
reference face), `yaw` / `pitch` (head pose from the 68 landmarks) and `hist` (grey-histogram distance to
the folder's mean). Rules mark faces to reject (too blurry, another person, not among the best N spread
over head poses); `SortReport.apply` moves them into FACES_DIR/rejected/ (never deletes), where `train`
no longer sees them, and `restore_faces` moves them back.

Scores come from FACES_DIR/faces.json when extract stored them (blur, embedding, crop-space landmarks), so
a folder of thousands of faces sorts in seconds; a crop without an entry is scored from its pixels with the
same dlib models extract uses. faces.json is read as a stream (`alignments.stream_faces_json`), so memory holds
only what is scored (a 128-d vector and a few floats per face), not the whole index.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

import numpy as np

from . import __version__
from .alignments import spool_entry, stream_faces_json, write_faces_index
from .errors import InputError
from .lock import folder_lock
from .video import atomic_write_bytes, list_images, read_image

FORMAT = "veriswap-sort"
VERSION = 1
SORT_JSON = "sort.json"
REJECTED = "rejected"               # subfolder: train reads only FACES_DIR's own files (video.list_images)
FACES_JSON = "faces.json"
DEFAULT_MAX_DISTANCE = 0.6          # as extract's --max-distance: dlib's same-person threshold

# Head pose from 2-D landmarks with the generic 3-D face of the common 6-point PnP model (nose tip at the
# origin, outer eye corners at (+-225, 170, -135), mouth corners at (+-150, -150, -125)), seen from the
# front (orthographic). Turning the head by yaw moves the nose tip sideways from the eye corners' midpoint
# by 135 sin(yaw) while their half-distance is 225 cos(yaw); pitch moves it vertically from the mid-line of
# eyes and mouth (130 behind it, half-height 160, the nose 10 below that line when frontal).
YAW_K = 135 / 225                   # 0.6:    yaw ratio   = YAW_K * tan(yaw)
PITCH_K = 130 / 160                 # 0.8125: pitch ratio = PITCH_0 - PITCH_K * tan(pitch)
PITCH_0 = 10 / 160                  # 0.0625


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
            return self._apply()

    def _apply(self) -> List[str]:
        t0 = time.perf_counter()
        folder = Path(self.folder)
        plan = [f for f in self.rejected if (folder / f.file).is_file()]
        if plan:
            rej = folder / REJECTED
            rej.mkdir(exist_ok=True)
            names = {f.file for f in plan}
            _merge_entries(folder / FACES_JSON, rej / FACES_JSON, names, overwrite=True,
                           keep=lambda n: n in names or (rej / n).is_file())
        now = _now()
        try:
            for f in plan:
                _move(folder / f.file, folder / REJECTED / f.file)
                f.where, f.moved = "rejected", {"reject": dict(f.reject), "time": now}
                self.moved.append(f.file)
        finally:        # also on Ctrl-C: sort.json records the moves made so far
            self.faces = self.ranked + [f for f in self.faces if f.where != "top"]
            self.seconds += time.perf_counter() - t0
            self.write()
        return list(self.moved)


# ---- scorers: name -> how to score, in the manner of faces.DETECTORS ----------------------------------

@dataclass
class FaceInputs:
    """What scorers read for one face: from faces.json, else from its pixels."""

    blur: Optional[float] = None
    embedding: Optional[np.ndarray] = None      # (128,) float32
    landmarks: Optional[np.ndarray] = None      # (68, 2) crop pixels
    hist: Optional[np.ndarray] = None           # (256,) float32, sums to 1


@dataclass
class ScoreContext:
    ref_embedding: Optional[np.ndarray] = None  # --ref-face's largest face
    ref_face: Optional[str] = None
    reference: dict = field(default_factory=dict)   # scorers note what they measured against


ScoreFn = Callable[[Sequence[FaceInputs], ScoreContext], np.ndarray]


@dataclass(frozen=True)
class Scorer:
    fn: ScoreFn                 # inputs of every face (FACES_DIR and rejected/) -> scores, NaN = unknown
    needs: FrozenSet[str]       # FaceInputs fields it reads
    order: str                  # "desc": higher is better; "asc": lower is better; "value": no better/worse
    describe: str


SCORERS: Dict[str, Scorer] = {}
RULES = ("blur", "identity", "keep")


def register_scorer(name: str, needs: Sequence[str], order: str, describe: str):
    def deco(fn: ScoreFn) -> ScoreFn:
        SCORERS[name] = Scorer(fn, frozenset(needs), order, describe)
        return fn
    return deco


def _column(inputs: Sequence[FaceInputs], name: str) -> np.ndarray:
    return np.array([np.nan if getattr(x, name) is None else getattr(x, name) for x in inputs], np.float64)


@register_scorer("blur", ["blur"], "desc", "sharpness: variance of the Laplacian, higher is sharper")
def _score_blur(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    return _column(inputs, "blur")


def _known(inputs: Sequence[FaceInputs], name: str) -> Tuple[List[int], np.ndarray]:
    """The faces that have input `name`, and a NaN score for every face (unknown until scored)."""
    return [i for i, x in enumerate(inputs) if getattr(x, name) is not None], np.full(len(inputs), np.nan)


@register_scorer("identity", ["embedding"], "asc", "identity distance to the reference, lower is more alike")
def _score_identity(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    have, out = _known(inputs, "embedding")
    if not have:
        return out
    embs = np.stack([inputs[i].embedding for i in have]).astype(np.float32)
    if ctx.ref_embedding is not None:
        ref = np.asarray(ctx.ref_embedding, np.float32)
        ctx.reference["identity"] = f"largest face in {ctx.ref_face}"
    else:
        # the element-wise median: a few other people or bad detections barely move it (a mean would)
        ref = np.median(embs, 0)
        ctx.reference["identity"] = f"median of {len(have)} embeddings in the folder"
    out[have] = np.linalg.norm(embs - ref, axis=1)
    return out


@register_scorer("yaw", ["landmarks"], "value", "head yaw in degrees from the landmarks, + = nose to the right")
def _score_yaw(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    return np.array([head_pose(x.landmarks)[0] if x.landmarks is not None else np.nan for x in inputs])


@register_scorer("pitch", ["landmarks"], "value", "head pitch in degrees from the landmarks, + = looking up")
def _score_pitch(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    return np.array([head_pose(x.landmarks)[1] if x.landmarks is not None else np.nan for x in inputs])


@register_scorer("hist", ["hist"], "asc", "grey-histogram distance to the folder's mean, lower is more typical")
def _score_hist(inputs: Sequence[FaceInputs], ctx: ScoreContext) -> np.ndarray:
    import cv2

    have, out = _known(inputs, "hist")
    if not have:
        return out
    mean = np.mean([inputs[i].hist for i in have], 0).astype(np.float32)
    ctx.reference["hist"] = f"mean grey histogram of {len(have)} faces (central face ellipse)"
    for i in have:
        out[i] = cv2.compareHist(inputs[i].hist, mean, cv2.HISTCMP_BHATTACHARYYA)
    return out


def head_pose(landmarks: np.ndarray) -> Tuple[float, float]:
    """(yaw, pitch) in degrees from 68 landmarks of an aligned crop (roll already removed by the alignment),
    NaN where the points are degenerate. Approximate (a generic face, see YAW_K / PITCH_K): good for ordering
    and binning one person's faces; the absolute pitch depends on the person's proportions by ~10-15 deg."""
    lm = np.asarray(landmarks, np.float64)
    eye_x, half_w = (lm[36, 0] + lm[45, 0]) / 2, (lm[45, 0] - lm[36, 0]) / 2
    eye_y, mouth_y = (lm[36, 1] + lm[45, 1]) / 2, (lm[48, 1] + lm[54, 1]) / 2
    half_h = (mouth_y - eye_y) / 2
    if half_w <= 1e-6 or half_h <= 1e-6:        # eyes swapped or mouth above the eyes: not a usable face
        return math.nan, math.nan
    yaw = math.degrees(math.atan((lm[30, 0] - eye_x) / half_w / YAW_K))
    pitch = math.degrees(math.atan((PITCH_0 - (lm[30, 1] - (eye_y + half_h)) / half_h) / PITCH_K))
    return yaw, pitch


def grey_hist(rgb: np.ndarray) -> np.ndarray:
    """256-bin grey histogram (sums to 1) over the central face ellipse of an aligned crop, so that the
    background and hair around the face weigh little."""
    import cv2

    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, int(h * 0.55)), (int(w * 0.32), int(h * 0.38)), 0, 0, 360, 255, -1)
    hist = cv2.calcHist([cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)], [0], mask, [256], [0, 256]).reshape(-1)
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


# ---- sorting --------------------------------------------------------------------------------------

def sort_faces(faces_dir: Path | str, settings: Optional[SortSettings] = None,
               progress: Optional[Callable[[int, int], None]] = None, write: bool = True) -> SortReport:
    """Score every face of FACES_DIR (and of FACES_DIR/rejected/), rank FACES_DIR's faces by `settings.by`,
    mark the ones the rules reject, and write FACES_DIR/sort.json (unless `write=False`). Nothing is moved:
    call `report.apply()` for that. `progress(done, total)` is called while crops are read from disk.

    The identity reference (median embedding), the mean histogram and the pose range that --keep bins are
    measured over every face, those already in rejected/ included, so a re-run of the same settings after
    `apply` gives the same scores and rejects nothing new."""
    t0 = time.perf_counter()
    s = settings or SortSettings()
    s.check()
    folder = Path(faces_dir)
    if not folder.is_dir():
        raise InputError(f"faces folder not found: {folder}")
    rej = folder / REJECTED
    top_files = list_images(folder)
    rej_files = list_images(rej) if rej.is_dir() else []
    if not top_files:
        more = f" ({len(rej_files)} in {rej}: `veriswap sort {folder} --restore` moves them back)" if rej_files else ""
        raise InputError(f"no face images (PNG/JPG) in {folder}{more}")

    names = [("top", p.name) for p in top_files] + [("rejected", p.name) for p in rej_files]
    by_rule = {"blur": s.reject_blur is not None, "identity": s.effective_max_distance() is not None,
               "keep": s.keep is not None}
    scores = [s.by] + [n for n, on in (("blur", by_rule["blur"] or by_rule["keep"]), ("identity", by_rule["identity"]),
                                       ("yaw", by_rule["keep"]), ("pitch", by_rule["keep"])) if on and n != s.by]
    needs: Set[str] = set().union(*(SCORERS[n].needs for n in scores))

    ctx = ScoreContext(ref_face=None if s.ref_face is None else str(s.ref_face))
    if s.ref_face is not None and "embedding" in needs:
        ctx.ref_embedding = _reference_embedding(Path(s.ref_face))

    inputs = [FaceInputs() for _ in names]
    faces = [FaceScore(n, where, landmarks=None) for where, n in names]
    if not s.rescore:
        index = {(w, n): i for i, (w, n) in enumerate(names)}
        for where, jpath in (("top", folder / FACES_JSON), ("rejected", rej / FACES_JSON)):
            _load_entries(jpath, lambda n, w=where: (w, n) in index,
                          lambda n, e, w=where: _take(e, inputs[index[(w, n)]], needs), required=where == "top")
        # a face moved by `apply` keeps its entry in faces.json too: use it when rejected/faces.json lacks one
        missing = {n for i, (w, n) in enumerate(names) if w == "rejected" and not _has(inputs[i], needs)}
        if missing:
            at = {n: i for i, (w, n) in enumerate(names) if w == "rejected" and n in missing}
            _load_entries(folder / FACES_JSON, lambda n: n in at, lambda n, e: _take(e, inputs[at[n]], needs))
    for i, x in enumerate(inputs):
        if x.landmarks is not None:
            faces[i].landmarks = "faces.json"

    todo = [i for i, x in enumerate(inputs) if not _has(x, needs)]
    _score_pixels(folder, names, inputs, faces, todo, needs, progress)

    values = {n: SCORERS[n].fn(inputs, ctx) for n in scores}
    for n, v in values.items():
        for f, x in zip(faces, v):
            setattr(f, n, None if np.isnan(x) else float(x))
    reference = dict(ctx.reference)

    top = [f for f in faces if f.where == "top"]
    _apply_rules(top, s, faces, reference)
    ranked = _rank(top, s.by)
    report = SortReport(folder, s, ranked + [f for f in faces if f.where != "top"], scores, reference,
                        created=_now())
    if s.ref_face is not None and "identity" not in scores:
        report.warnings.append("--ref-face is used only with --by identity or --max-distance: ignored")
    _carry_moves(folder, report)
    report.seconds = time.perf_counter() - t0
    if write:
        report.write()
    return report


def _reference_embedding(path: Path) -> np.ndarray:
    from .faces import FaceAnalyzer

    if not path.is_file():
        raise InputError(f"reference face not found: {path}")
    rgb = read_image(path)
    try:
        return FaceAnalyzer().reference_embedding(rgb)
    except InputError as e:
        raise InputError(f"{e}: {path}") from None
    except ModuleNotFoundError as e:
        raise InputError(f"--ref-face needs dlib ({e.name} is not installed: pip install dlib-bin)") from None


def _has(x: FaceInputs, needs: Set[str]) -> bool:
    return all(getattr(x, n) is not None for n in needs)


def _take(entry: object, x: FaceInputs, needs: Set[str]) -> None:
    """Copy what is needed from a faces.json entry (anything missing or malformed stays None: scored from pixels)."""
    if not isinstance(entry, dict):
        return
    try:
        if "blur" in needs and x.blur is None and isinstance(entry.get("blur"), (int, float)):
            x.blur = float(entry["blur"])
        if "embedding" in needs and x.embedding is None and entry.get("embedding") is not None:
            e = np.asarray(entry["embedding"], np.float32)
            x.embedding = e if e.shape == (128,) else None
        if "landmarks" in needs and x.landmarks is None and entry.get("landmarks") is not None:
            lm = np.asarray(entry["landmarks"], np.float32)
            x.landmarks = lm if lm.shape == (68, 2) else None
    except (TypeError, ValueError):
        pass


def _score_pixels(folder: Path, names: List[Tuple[str, str]], inputs: List[FaceInputs], faces: List[FaceScore],
                  todo: List[int], needs: Set[str], progress: Optional[Callable[[int, int], None]]) -> None:
    """Read the crops that faces.json cannot score (or all, with --rescore / --by hist) and score them."""
    if progress:
        progress(0, len(todo))
    for k, i in enumerate(todo):
        where, name = names[i]
        x, f = inputs[i], faces[i]
        rgb = read_image(folder / name if where == "top" else folder / REJECTED / name)
        f.scored_from = "pixels" if f.scored_from != "faces.json" or not _any(x) else "faces.json+pixels"
        if "blur" in needs and x.blur is None:
            from .faces import blur_score
            x.blur = blur_score(rgb)
        if "hist" in needs and x.hist is None:
            x.hist = grey_hist(rgb)
        if ("landmarks" in needs and x.landmarks is None) or ("embedding" in needs and x.embedding is None):
            try:
                lm = x.landmarks
                if lm is None:
                    lm, how = _crop_landmarks(rgb)
                    if "landmarks" in needs:
                        x.landmarks, f.landmarks = lm, how
                if "embedding" in needs and x.embedding is None:
                    from .faces import embedding
                    x.embedding = embedding(np.ascontiguousarray(rgb), lm)
            except ModuleNotFoundError as e:
                raise InputError(f"scoring {len(todo) - k} face(s) without a faces.json entry from their pixels needs "
                                 f"dlib ({e.name} is not installed: pip install dlib-bin)") from None
        if progress:
            progress(k + 1, len(todo))


def _any(x: FaceInputs) -> bool:
    return any(v is not None for v in (x.blur, x.embedding, x.landmarks))


def _crop_landmarks(rgb: np.ndarray) -> Tuple[np.ndarray, str]:
    """68 landmarks of the face in an aligned crop: dlib's shape predictor on the largest HOG box, or, where
    HOG finds none (blurred, dark or badly aligned crops), on the face area every aligned crop has."""
    from . import faces as F

    h, w = rgb.shape[:2]
    rgb = np.ascontiguousarray(rgb)
    boxes = F.detect(rgb, "hog", 0 if min(h, w) >= 160 else 1)   # the face fills the crop: no upsampling needed
    if boxes:
        box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        return F.landmarks(rgb, box[:4]), "detected"
    return F.landmarks(rgb, F.crop_face_box(rgb.shape)), "template"


def _apply_rules(top: List[FaceScore], s: SortSettings, everyone: List[FaceScore], reference: dict) -> None:
    md = s.effective_max_distance()
    for f in top:
        if s.reject_blur is not None and f.blur is not None and f.blur < s.reject_blur:
            f.reject["blur"] = f"blur {f.blur:.1f} < {s.reject_blur:g}"
        if md is not None and f.identity is not None and f.identity > md:
            f.reject["identity"] = f"identity distance {f.identity:.3f} > {md:g}"
    if s.keep is None:
        return
    cands = [f for f in top if not f.reject]
    yaw_r, pitch_r = _pose_range(everyone, "yaw"), _pose_range(everyone, "pitch")
    ny, npi = keep_bins(s.keep)
    reference["keep_bins"] = {"yaw": [_round(v) for v in yaw_r], "pitch": [_round(v) for v in pitch_r],
                              "yaw_bins": ny, "pitch_bins": npi}
    picked = pick_spread(cands, s.keep, yaw_r, pitch_r)
    for f in cands:
        if f.file not in picked:
            f.reject["keep"] = f"not among the best {s.keep} spread over yaw/pitch"


def keep_bins(n: int) -> Tuple[int, int]:
    """(yaw bins, pitch bins) for --keep N: yaw first (the pose that varies most in footage)."""
    ny = min(n, 32)
    return ny, min(max(n // ny, 1), 8)


def _pose_range(faces: List[FaceScore], name: str) -> Tuple[float, float]:
    v = [getattr(f, name) for f in faces if getattr(f, name) is not None]
    return (min(v), max(v)) if v else (0.0, 0.0)


def pick_spread(cands: Sequence[FaceScore], n: int, yaw_range: Tuple[float, float],
                pitch_range: Tuple[float, float]) -> Set[str]:
    """DeepFaceLab's "best N": the N faces spread over head poses. Yaw is cut into min(N, 32) equal bins over
    `yaw_range`, pitch into min(N / yaw bins, 8); each round takes every non-empty bin's sharpest face not yet
    taken (the last round the sharpest of those). Faces without a pose share one bin.

    With fixed ranges the pick does not change when faces it did not pick are removed (each bin's picks are
    its sharpest), so an `apply` interrupted half way and run again keeps the same N."""
    if len(cands) <= n:
        return {f.file for f in cands}
    ny, npi = keep_bins(n)

    def bin_of(v: Optional[float], lo_hi: Tuple[float, float], k: int) -> int:
        lo, hi = lo_hi
        return 0 if v is None or hi - lo <= 1e-9 else min(max(int((v - lo) / (hi - lo) * k), 0), k - 1)

    def sharp(f: FaceScore) -> Tuple[float, str]:
        return (-(f.blur if f.blur is not None else -math.inf), f.file)

    cells: Dict[tuple, List[FaceScore]] = {}
    for f in cands:
        key = ("none",) if f.yaw is None or f.pitch is None else (bin_of(f.yaw, yaw_range, ny), bin_of(f.pitch, pitch_range, npi))
        cells.setdefault(key, []).append(f)
    for c in cells.values():
        c.sort(key=sharp)
    picked: List[str] = []
    r = 0
    while len(picked) < n:
        round_ = sorted((c[r] for c in cells.values() if len(c) > r), key=sharp)
        picked += [f.file for f in round_[: n - len(picked)]]
        r += 1
    return set(picked)


def _rank(top: List[FaceScore], by: str) -> List[FaceScore]:
    order = SCORERS[by].order

    def key(f: FaceScore):
        v = f.score(by)
        if v is None:
            return (1, 0.0, f.file)             # unknown: last
        return (0, -v if order == "desc" else v, f.file)
    return sorted(top, key=key)


def _carry_moves(folder: Path, report: SortReport) -> None:
    """Faces in rejected/ keep the record of why they were moved (from the previous sort.json; this run's
    reasons for a file an interrupted `apply` moved before it could write sort.json)."""
    old = {}
    try:
        doc = json.loads((folder / SORT_JSON).read_text())
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            old = {k: v.get("moved") for k, v in doc.get("faces", {}).items() if isinstance(v, dict)}
    except FileNotFoundError:
        pass
    except (OSError, ValueError, AttributeError):
        report.warnings.append(f"ignored an unreadable {folder / SORT_JSON} (the record of earlier moves)")
    for f in report.faces:
        if f.where == "rejected":
            f.moved = old.get(f.file) or {"reject": dict(f.reject) or {"unknown": "not moved by this veriswap sort run"},
                                          "time": None}


# ---- restore --------------------------------------------------------------------------------------

def restore_faces(faces_dir: Path | str) -> RestoreSummary:
    """Move every image in FACES_DIR/rejected/ back into FACES_DIR (os.replace each; re-running is safe), put
    back the faces.json entries an extract re-run dropped while they were away, and note it in sort.json.
    A file whose name is taken in FACES_DIR (extract made it again) stays in rejected/ and is reported."""
    folder = Path(faces_dir)
    if not folder.is_dir():
        raise InputError(f"faces folder not found: {folder}")
    with folder_lock(folder, "veriswap sort --restore"):
        return _restore(folder)


def _restore(folder: Path) -> RestoreSummary:
    t0 = time.perf_counter()
    rej = folder / REJECTED
    out = RestoreSummary(str(folder))
    files = list_images(rej) if rej.is_dir() else []
    rj = rej / FACES_JSON
    if rj.is_file():
        present = {p.name for p in files} | {p.name for p in list_images(folder)}
        out.entries_restored = _merge_entries(rj, folder / FACES_JSON, present, overwrite=False, keep=lambda n: True)
    for p in files:
        if (folder / p.name).exists():
            out.conflicts.append(p.name)
            continue
        _move(p, folder / p.name)
        out.restored.append(p.name)
    if rj.is_file():            # rejected/faces.json keeps only the entries of files still there
        left = {p.name for p in list_images(rej)}
        if left:
            _merge_entries(rj, rj, left, overwrite=True, keep=lambda n: n in left)
        else:
            rj.unlink()
    try:
        rej.rmdir()             # only when empty: anything else the user put there stays
    except OSError:
        pass
    _note_restore(folder, out)
    out.seconds = time.perf_counter() - t0
    return out


def _note_restore(folder: Path, out: RestoreSummary) -> None:
    path = folder / SORT_JSON
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return
    for name in out.restored:
        f = doc.get("faces", {}).get(name)
        if isinstance(f, dict):
            f["in"], f["moved"] = "top", None
    doc["restored"] = {"time": _now(), "files": len(out.restored), "conflicts": out.conflicts}
    if isinstance(doc.get("counts"), dict):
        doc["counts"]["in_rejected"] = sum(isinstance(f, dict) and f.get("in") == "rejected"
                                           for f in doc.get("faces", {}).values())
    atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())


# ---- faces.json entries, streamed -----------------------------------------------------------------

def _load_entries(path: Path, want: Callable[[str], bool], put: Callable[[str, object], None],
                  required: bool = False) -> Optional[int]:
    """Stream a faces.json: `put(name, entry)` for each wanted entry; returns its crop size (None: no file).
    An unreadable file is an InputError when `required` (FACES_DIR's own), else ignored."""
    try:
        return stream_faces_json(path, put, want)
    except (OSError, ValueError) as e:      # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        if required:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(f"unreadable {path}: {msg}") from None
        return None


def _merge_entries(src: Path, dst: Path, names: Set[str], overwrite: bool, keep: Callable[[str], bool]) -> int:
    """Write `dst` (atomically, sorted by name, faces.json format) with its own entries that pass `keep`
    plus `src`'s entries for `names` (replacing dst's when `overwrite`; dst == src rewrites src with just
    `names`). Entries wait as JSON lines in a temp file (alignments.write_faces_index). Returns the entries
    added; an unreadable dst is an InputError, never replaced."""
    if not src.is_file():
        return 0
    with tempfile.TemporaryFile(dir=dst.parent) as spool:
        def put_into(index: Dict[str, int]) -> Callable[[str, object], None]:
            return lambda name, entry: index.__setitem__(name, spool_entry(spool, entry))

        old: Dict[str, int] = {}
        dst_size = None if dst == src else _load_entries(dst, keep, put_into(old), required=True)
        new: Dict[str, int] = {}
        src_size = _load_entries(src, lambda n: n in names, put_into(new))
        if src_size is None or (dst_size is not None and dst_size != src_size):
            return 0        # unreadable, or made for another crop size: leave dst as it is
        added = {n: at for n, at in new.items() if overwrite or n not in old}
        write_faces_index(dst, src_size, spool, {**old, **added})
    return len(added)


# ---- small helpers --------------------------------------------------------------------------------

def _move(src: Path, dst: Path) -> None:
    """One face moved: a rename within the folder, atomic (the file is whole in one place or the other)."""
    os.replace(src, dst)


def _round(v: Optional[float], nd: int = 4) -> Optional[float]:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), nd)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
