"""`detect score`: judge videos. Faces are found and tracked in N evenly spaced frames
(`detect.faces`), cropped like the training data, scored in batches across frames, and each face
track is judged by an aggregation rule (`detect.aggregate`, DFDC's "confident frames" by default).
The video is fake when any of its (non-spurious) face tracks is: a swap of one person among several
is not averaged away by the real ones."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from swap.errors import InputError
from swap.labels import find_labels, read_labels
from swap.video import probe

from .aggregate import DEFAULT_RULE, RULES, aggregate
from .crops import crop_face, evenly_spaced
from .faces import track_faces
from .model import Detector
from .truth import GroundTruth, compare


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
    score: float                    # max over decisive tracks
    fake: bool
    tracks: List[TrackScore]
    timeline: List[FrameScore]
    seconds: float = 0.0
    warnings: List[str] = field(default_factory=list)
    heatmaps: List[Heatmap] = field(default_factory=list, repr=False)
    ground_truth: Optional[GroundTruth] = None   # the timeline against convert's labels, when beside the video

    @property
    def verdict(self) -> str:
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


def score_video(video: Path, detector: Detector, frames: int = 32, rule: str = DEFAULT_RULE,
                batch_size: int = 32, min_track_share: float = 0.1,
                progress: Optional[Callable[[int, int], None]] = None, heatmaps: int = 0,
                truth: bool = True) -> VideoScore:
    """Score one video. `frames` evenly spaced frames (0 = every frame); `heatmaps`: Grad-CAM of each
    track's that many most suspicious frames; `truth`: compare the timeline with the labels `convert`
    wrote beside the video, if there are any (detect.truth)."""
    t0 = time.perf_counter()
    check_options(frames, rule, batch_size, heatmaps)
    video = Path(video)
    info = probe(video)
    pick = evenly_spaced(range(max(info.frames, 1)), frames)
    cfg = detector.config
    timeline: List[FrameScore] = []
    pending: list = []              # (FaceScore, crop, FrameScore) waiting for a batch
    suspects: Dict[int, list] = {}  # track -> its `heatmaps` most suspicious (prob, frame, time, crop)

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

    for ff in track_faces(video, pick):
        faces: List[FaceScore] = []
        frame = FrameScore(ff.frame.index, round(ff.frame.time, 4), faces, None)
        for f in ff.faces:
            fs = FaceScore(f.track, [round(v, 1) for v in f.box], math.nan)
            pending.append((fs, crop_face(ff.frame.rgb, f.box, None, cfg.crop_scale, cfg.crop_size), frame))
            faces.append(fs)
        timeline.append(frame)
        if len(pending) >= batch_size:
            flush()
        if progress:
            progress(len(timeline), len(pick))
    flush()
    for fr in timeline:
        fr.prob = max((f.prob for f in fr.faces), default=None)
    per_track: Dict[int, List[float]] = {}
    for fr in timeline:
        for f in fr.faces:
            per_track.setdefault(f.track, []).append(f.prob)
    if not per_track:
        raise InputError(f"no face found in {len(timeline)} sampled frames of {video}")
    need = max(2, math.ceil(min_track_share * len(timeline))) if len(timeline) >= 4 else 1
    tracks = []
    for tid, ps in sorted(per_track.items()):
        sc = aggregate(ps, rule)
        tracks.append(TrackScore(tid, len(ps), round(sc, 6), round(float(np.mean(ps)), 6),
                                 sc >= detector.threshold, len(ps) >= need))
    warnings = []
    if not any(t.decisive for t in tracks):
        for t in tracks:
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
                      score >= detector.threshold, tracks, timeline, time.perf_counter() - t0, warnings, maps, gt)
