"""Scoring and ranking a faces folder: `sort_faces` (scores from faces.json, else from the pixels; the rules;
the ranking)."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from ..errors import InputError
from ..video import list_images, read_image
from .moves import _carry_moves, _load_entries
from .report import FACES_JSON, REJECTED, FaceScore, SortReport, SortSettings, _now, _round
from .scorers import SCORERS, FaceInputs, ScoreContext, grey_hist


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
    from ..faces import FaceAnalyzer

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
            from ..faces import blur_score
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
                    from ..faces import embedding
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
    from .. import faces as F

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
