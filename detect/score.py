"""`detect score`: judge videos. Faces are found and tracked in N evenly spaced frames
(`detect.faces`), cropped like the training data, scored in batches across frames, and each face
track is judged by an aggregation rule (`detect.aggregate`, DFDC's "confident frames" by default).
The video is fake when any of its (non-spurious) face tracks is: a swap of one person among several
is not averaged away by the real ones.

Small and degraded faces (a swap re-encoded at CRF 40 and halved, ~45 px faces): when dlib HOG at 2x
upsampling finds a face in fewer than half the sampled frames, the frames are scanned again at 4x, and if
that finds nothing, with dlib's CNN detector; the pass that finds faces in the most frames is scored and
`face_detector` says which (a slower pass is first tried on 4 of the frames and run on all of them only
if it finds a face there, so a faceless video costs a few seconds more, not minutes). Tracks that are not faces (dlib's CNN finds none in their best boxes, like the
patch on the astronaut's suit) do not decide the verdict, as long as another track is confirmed as a face
(a poor swap can look like no face to the CNN too: with none confirmed, every track counts). A video where no face is found at all raises
`NoFaceFound`; `score_many` turns that into a row that says the video could not be judged."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from swap.errors import InputError
from swap.labels import find_labels, read_labels
from swap.video import probe

from .aggregate import DEFAULT_RULE, RULES, aggregate
from .crops import crop_face, evenly_spaced
from .faces import track_faces
from .model import Detector
from .truth import GroundTruth, compare


class NoFaceFound(InputError):
    """No face in any sampled frame (after every detector pass): the video cannot be judged."""


FALLBACK_SHARE = 0.5        # below this share of sampled frames with a face, try the next detector pass
PROBE_FRAMES = 4            # a fallback pass is tried on this many frames first (a faceless video stays cheap)


@dataclass
class FaceScore:
    track: int
    box: List[float]
    prob: float


@dataclass
class FrameScore:
    index: int
    time: float
    faces: List[FaceScore]
    prob: Optional[float]           # max over the frame's faces; None = no face found


@dataclass
class TrackScore:
    track: int
    frames: int
    score: float                    # aggregated with the rule
    mean: float
    fake: bool
    decisive: bool                  # seen in enough frames to count for the verdict
    face: bool = True               # False: dlib's CNN found no face in its boxes (e.g. a logo): not decisive


@dataclass
class Heatmap:
    """Grad-CAM of one of a track's most suspicious frames (detect.explain)."""
    track: int
    frame: int
    time: float
    prob: float
    crop: np.ndarray                # RGB uint8, the detector's crop
    matrix: np.ndarray              # 2x3: frame px -> crop px
    cam: np.ndarray                 # float32 in [0, 1], the crop's size


@dataclass
class VideoScore:
    path: str
    frames_total: int
    frames_sampled: int
    fps: float
    rule: str
    threshold: float
    score: Optional[float]          # max over decisive tracks; None when not judged
    fake: bool
    tracks: List[TrackScore]
    timeline: List[FrameScore]
    seconds: float = 0.0
    warnings: List[str] = field(default_factory=list)
    heatmaps: List[Heatmap] = field(default_factory=list, repr=False)
    ground_truth: Optional[GroundTruth] = None   # the timeline against convert's labels, when beside the video
    judged: bool = True             # False: no face found, `score` is None and `reason` says why
    reason: Optional[str] = None
    face_detector: str = "hog x2"   # the detector pass whose faces were scored

    @property
    def verdict(self) -> str:
        if not self.judged:
            return "not judged"
        return "fake" if self.fake else "real"

    def to_dict(self) -> dict:
        maps, self.heatmaps = self.heatmaps, []     # pixels are no JSON: the report writes them as PNGs
        try:
            d = asdict(self)
        finally:
            self.heatmaps = maps
        d["heatmaps"] = [{"track": h.track, "frame": h.frame, "time": h.time, "prob": round(h.prob, 6),
                          "crop_matrix": np.round(h.matrix, 6).tolist()} for h in maps]
        d["verdict"] = self.verdict
        d["seconds"] = round(self.seconds, 3)
        return d


def _ground_truth(video: Path, timeline: List["FrameScore"], threshold: float,
                  warnings: List[str]) -> Optional[GroundTruth]:
    """The timeline against the labels `convert` wrote beside the video, if any (a damaged labels file
    costs the comparison, not the verdict)."""
    lp = find_labels(video)
    if lp is None:
        return None
    try:
        return compare(timeline, read_labels(lp), threshold, str(lp))
    except InputError as e:
        warnings.append(f"labels not used: {e}")
        return None


def check_options(frames: int = 32, rule: str = DEFAULT_RULE, batch_size: int = 32, heatmaps: int = 0) -> None:
    """The options of `score_video` (and `veriswap detect score`), checked before any work."""
    RULES.lookup(rule)
    if frames < 0 or batch_size < 1 or heatmaps < 0:
        raise InputError("--frames and --heatmaps must be >= 0 and --batch-size >= 1")


def _passes(height: int, width: int) -> List[tuple]:
    """Detector passes, in order: (name, detector, upsample). The CNN pass upsamples only small frames
    (its cost grows with the pixels: ~2 s per 320x240 frame at 2x on 2 cores)."""
    return [("hog x2", "hog", 1), ("hog x4", "hog", 2),
            ("cnn x2" if height * width <= 400_000 else "cnn", "cnn", 1 if height * width <= 400_000 else 0)]


def _scan(video: Path, detector: Detector, det_name: str, upsample: int, indices: List[int], batch_size: int,
          heatmaps: int, verify_faces: bool, progress: Optional[Callable[[int, int], None]]):
    """One detector pass over `indices`: the timeline, each track's most suspicious crops (for heatmaps)
    and its 2 best detections (for the face check)."""
    cfg = detector.config
    timeline: List[FrameScore] = []
    pending: list = []              # (FaceScore, crop, FrameScore) waiting for a batch
    suspects: Dict[int, list] = {}  # track -> its `heatmaps` most suspicious (prob, frame, time, crop)
    best: Dict[int, list] = {}      # track -> its 2 highest-scoring detections (score, rgb, box)

    def flush() -> None:
        if pending:
            probs = detector.predict([c.rgb for _, c, _ in pending], batch_size)
            for (fs, crop, fr), p in zip(pending, probs):
                fs.prob = float(p)
                if heatmaps:
                    top = suspects.setdefault(fs.track, [])
                    top.append((fs.prob, fr.index, fr.time, crop))
                    top.sort(key=lambda t: -t[0])
                    del top[heatmaps:]
            pending.clear()

    for ff in track_faces(video, indices, detector=det_name, upsample=upsample):
        faces: List[FaceScore] = []
        frame = FrameScore(ff.frame.index, round(ff.frame.time, 4), faces, None)
        for f in ff.faces:
            fs = FaceScore(f.track, [round(v, 1) for v in f.box], math.nan)
            pending.append((fs, crop_face(ff.frame.rgb, f.box, None, cfg.crop_scale, cfg.crop_size), frame))
            faces.append(fs)
            if verify_faces:
                b = best.setdefault(f.track, [])
                b.append((float(f.score), ff.frame.rgb, f.box))
                b.sort(key=lambda t: -t[0])
                del b[2:]
        timeline.append(frame)
        if len(pending) >= batch_size:
            flush()
        if progress:
            progress(len(timeline), len(indices))
    flush()
    return timeline, suspects, best


def _best_pass(video: Path, info, pick: List[int], detector: Detector, fallback: bool, run):
    """The detector pass that finds a face in the most sampled frames: HOG first, slower passes for small or
    degraded faces only when it finds too few (each tried on a few frames first)."""
    tried = []
    chosen = None
    for name, det_name, up in (_passes(info.height, info.width) if fallback else _passes(0, 0)[:1]):
        if tried:       # a slower pass: first on a few frames, and on all of them only if it finds a face there
            few = evenly_spaced(pick, PROBE_FRAMES)
            if len(few) < len(pick) and not any(fr.faces for fr in run(det_name, up, few)[0]):
                tried.append((name + f" (on {len(few)} frames)", 0))
                continue
        res = run(det_name, up, pick)
        with_face = sum(1 for fr in res[0] if fr.faces)
        tried.append((name, with_face))
        if chosen is None or with_face > chosen[1]:
            chosen = (name, with_face, res)
        if with_face >= FALLBACK_SHARE * max(len(res[0]), 1):
            break
    return chosen[0], tried, chosen[2]


def _not_faces(best: Dict[int, list], per_track: Dict[int, List[float]]):
    """Tracks whose best detections dlib's CNN does not call a face (left out of the verdict), and whether
    that was every track (then none is left out: a bad swap can look like no face to the CNN too)."""
    from .identity import SURE_FACE, is_face

    not_face = {t for t, obs in best.items() if not any(sc >= SURE_FACE or is_face(rgb, box) for sc, rgb, box in obs)}
    if not_face and not_face >= set(per_track):
        return set(), True
    return not_face, False


def score_video(video: Path, detector: Detector, frames: int = 32, rule: str = DEFAULT_RULE,
                batch_size: int = 32, min_track_share: float = 0.1,
                progress: Optional[Callable[[int, int], None]] = None, heatmaps: int = 0,
                truth: bool = True, fallback: bool = True, verify_faces: bool = True) -> VideoScore:
    """Score one video. `frames` evenly spaced frames (0 = every frame); `heatmaps`: Grad-CAM of each
    track's that many most suspicious frames; `truth`: compare the timeline with the labels `convert`
    wrote beside the video, if there are any (detect.truth); `fallback`: more detector passes for small or
    degraded faces; `verify_faces`: tracks where dlib's CNN finds no face do not decide the verdict.
    Raises NoFaceFound when no face is found in any sampled frame."""
    t0 = time.perf_counter()
    check_options(frames, rule, batch_size, heatmaps)
    video = Path(video)
    info = probe(video)
    pick = evenly_spaced(range(max(info.frames, 1)), frames)
    face_detector, tried, (timeline, suspects, best) = _best_pass(
        video, info, pick, detector, fallback,
        lambda det_name, up, idx: _scan(video, detector, det_name, up, idx, batch_size, heatmaps, verify_faces,
                                        progress))
    for fr in timeline:
        fr.prob = max((f.prob for f in fr.faces), default=None)
    per_track: Dict[int, List[float]] = {}
    for fr in timeline:
        for f in fr.faces:
            per_track.setdefault(f.track, []).append(f.prob)
    passes = ", ".join(f"{n}: {k}" for n, k in tried)
    if not per_track:
        raise NoFaceFound(f"no face found in {len(timeline)} sampled frames of {video} (frames with a face per "
                          f"detector pass: {passes})")
    not_face, unconfirmed = _not_faces(best, per_track) if verify_faces else (set(), False)
    need = max(2, math.ceil(min_track_share * len(timeline))) if len(timeline) >= 4 else 1
    tracks = []
    for tid, ps in sorted(per_track.items()):
        sc = aggregate(ps, rule)
        tracks.append(TrackScore(tid, len(ps), round(sc, 6), round(float(np.mean(ps)), 6),
                                 sc >= detector.threshold, len(ps) >= need and tid not in not_face,
                                 tid not in not_face))
    warnings = []
    if len(tried) > 1:
        warnings.append(f"small or degraded faces: scored the {face_detector} pass (frames with a face: {passes})")
    if unconfirmed:
        warnings.append("no face track confirmed by dlib's CNN detector (a poor swap or a degraded face can look like "
                        "none): every detection scored")
    if not_face:
        warnings.append(f"{len(not_face)} track(s) not a face by dlib's CNN detector, left out of the verdict: "
                        + ", ".join(f"track {t}" for t in sorted(not_face)))
    faces_ok = [t for t in tracks if t.face]
    if not any(t.decisive for t in faces_ok):
        for t in faces_ok:
            t.decisive = True
        warnings.append("every face track is short; all of them decide the verdict")
    score = max(t.score for t in tracks if t.decisive)
    maps: List[Heatmap] = []
    picked = [(tid, *s) for tid in sorted(suspects) for s in suspects[tid]]   # (track, prob, frame, time, crop)
    if picked:
        from .explain import gradcam
        try:
            cams = gradcam(detector, [c.rgb for *_, c in picked], batch_size)
        except InputError as e:     # e.g. a ViT: the verdict stands, only the maps are missing
            warnings.append(f"no heatmaps: {e}")
        else:
            maps = [Heatmap(tid, fi, t, p, c.rgb, c.matrix, cam) for (tid, p, fi, t, c), cam in zip(picked, cams)]
    gt = _ground_truth(video, timeline, detector.threshold, warnings) if truth else None
    return VideoScore(str(video), info.frames, len(timeline), info.fps, rule, detector.threshold, round(score, 6),
                      score >= detector.threshold, tracks, timeline, time.perf_counter() - t0, warnings, maps, gt,
                      face_detector=face_detector)


def not_judged(video: Path, reason: str, detector: Detector, rule: str = DEFAULT_RULE, seconds: float = 0.0) -> VideoScore:
    """The row of a video that could not be judged (no face found, unreadable): score None, fake False."""
    try:
        info = probe(Path(video))
        total, fps = info.frames, info.fps
    except InputError:
        total, fps = 0, 0.0
    return VideoScore(str(video), total, 0, fps, rule, detector.threshold, None, False, [], [], seconds, [],
                      judged=False, reason=reason, face_detector="")


def score_many(videos: Sequence[Path], detector: Detector, frames: int = 32, rule: str = DEFAULT_RULE,
               batch_size: int = 32, on_start: Optional[Callable[[Path], Optional[Callable[[int, int], None]]]] = None,
               **kw) -> List[VideoScore]:
    """Score every video; one that cannot be judged (no face found, unreadable) becomes a `not_judged` row
    and the batch goes on. `on_start(video)` may return a per-video progress callback."""
    out: List[VideoScore] = []
    for v in videos:
        t0 = time.perf_counter()
        prog = on_start(Path(v)) if on_start else None
        try:
            out.append(score_video(v, detector, frames, rule, batch_size, progress=prog, **kw))
        except NoFaceFound as e:
            out.append(not_judged(v, str(e), detector, rule, time.perf_counter() - t0))
        except InputError as e:
            out.append(not_judged(v, f"could not be read: {e}", detector, rule, time.perf_counter() - t0))
    return out
