"""`detect eval`: a detector on a dataset split (test by default), DeepfakeBench's metrics:
frame AUC, video AUC (a video's score = mean of its frame probabilities), EER, AP, accuracy at 0.5
and at the detector's calibrated threshold; and per manipulation method (each method's fakes against
all the split's reals), as DeepfakeBench reports FF++'s four methods apart."""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

from swap.errors import InputError

from . import dataset as D
from . import metrics as M
from .model import Detector


@dataclass
class EvalReport:
    dataset: str
    detector: str
    split: str
    threshold: float
    frame: dict
    video: dict
    videos: int
    seconds: float
    per_video: Dict[str, dict] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    per_method: Dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "detector": self.detector, "split": self.split,
                "threshold": self.threshold, "frame": self.frame, "video": self.video,
                "videos": self.videos, "seconds": round(self.seconds, 3), "per_method": self.per_method,
                "per_video": self.per_video, "warnings": self.warnings}


def video_scores(samples: List[D.Sample], probs: np.ndarray) -> Dict[str, dict]:
    """Per video: label and mean frame probability (frames with several faces count once per face)."""
    acc: Dict[str, list] = defaultdict(list)
    labels: Dict[str, int] = {}
    for s, p in zip(samples, probs):
        acc[s.video].append(float(p))
        labels[s.video] = s.label
    return {v: {"label": labels[v], "score": float(np.mean(ps)), "samples": len(ps)} for v, ps in sorted(acc.items())}


def per_method(samples: List[D.Sample], probs: np.ndarray, vs: Dict[str, dict],
               methods: Dict[str, Optional[str]]) -> Dict[str, dict]:
    """For each manipulation method in the split: its fakes against all the split's reals, frame and video
    AUC (fakes of datasets made before methods were recorded count as "unknown")."""
    out: Dict[str, dict] = {}
    name = lambda v: methods.get(v) or "unknown"  # noqa: E731
    for m in sorted({name(s.video) for s in samples if s.label == 1}):
        keep = [i for i, s in enumerate(samples) if s.label == 0 or name(s.video) == m]
        vids = [v for v, r in vs.items() if r["label"] == 0 or name(v) == m]
        out[m] = {"fake_videos": sum(vs[v]["label"] == 1 for v in vids),
                  "fake_faces": sum(samples[i].label == 1 for i in keep),
                  "frame_auc": M.auc([samples[i].label for i in keep], probs[keep]),
                  "video_auc": M.auc([vs[v]["label"] for v in vids], [vs[v]["score"] for v in vids])}
    return out


def check_left_out(det: Detector, ds: "D.Dataset", leave_out: Sequence[str]) -> None:
    """`--leave-out-method NAME`: NAME (a method or a family: autoencoder, graphic) must have fakes in the
    eval dataset and must not have been trained on (the detector was trained with --leave-out-method NAME,
    or on a dataset without it), so its per-method figures are a cross-method measurement."""
    from .card import method_family

    extra = det.config.extra or {}
    left = set(extra.get("left_out_methods") or [])
    here = {v.method or "unknown" for v in ds.videos.values() if v.label == 1}
    tpath = extra.get("dataset")
    trained: set = set()
    if tpath and Path(tpath).exists():
        tds = D.load(tpath)
        trained = {v.method or "unknown" for v in tds.videos.values()
                   if v.label == 1 and v.split in ("train", "val")}
    for name in leave_out:
        if not any(name in (m, method_family(m)) for m in here):
            raise InputError(f"--leave-out-method {name!r}: no fakes of it in {ds.root} (methods: {', '.join(sorted(here)) or 'none'})")
        hit = [m for m in trained if name in (m, method_family(m)) and m not in left and method_family(m) not in left]
        if hit:
            raise InputError(f"--leave-out-method {name!r}: this detector was trained on it ({', '.join(sorted(hit))}); "
                             f"train with `detect train --leave-out-method {name}` first")


def crop_probs(ds: D.Dataset, samples: List[D.Sample], det: Detector, batch_size: int,
               progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """The detector's P(fake) of each sample's crop, read from the dataset folder in batches."""
    out = []
    for i in range(0, len(samples), batch_size):
        crops = []
        for s in samples[i:i + batch_size]:
            bgr = cv2.imread(str(ds.root / s.file), cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError(f"cannot read crop {s.file} in {ds.root}")
            crops.append(bgr[..., ::-1])
        out.append(det.predict(crops, batch_size))
        if progress:
            progress(min(i + batch_size, len(samples)), len(samples))
    return np.concatenate(out) if out else np.zeros(0)


def evaluate(dataset_dir: Path, detector_dir: Path, split: str = "test", batch_size: int = 32,
             detector: Optional[Detector] = None,
             progress: Optional[Callable[[int, int], None]] = None, device: str = "cpu",
             leave_out: Sequence[str] = ()) -> EvalReport:
    """Frame/video metrics of the detector on one split. `device` (cpu | cuda | auto) loads the detector
    when none is given. `leave_out`: methods checked to be unseen in training (see check_left_out)."""
    t0 = time.perf_counter()
    if split not in D.SPLITS:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(D.SPLITS)}")
    ds = D.load(dataset_dir)
    det = detector or Detector(detector_dir, device=device)
    if leave_out:
        check_left_out(det, ds, leave_out)
    samples = ds.split(split)
    if not samples:
        raise InputError(f"the dataset has no {split} samples")
    p = crop_probs(ds, samples, det, batch_size, progress)
    y = np.array([s.label for s in samples])
    thr = det.threshold
    frame = M.compute(y, p, thr).to_dict()
    vs = video_scores(samples, p)
    vy = np.array([v["label"] for v in vs.values()])
    vp = np.array([v["score"] for v in vs.values()])
    video = M.compute(vy, vp, thr).to_dict()
    rep = EvalReport(str(dataset_dir), str(detector_dir), split, thr, frame, video, len(vs),
                     time.perf_counter() - t0, vs)
    rep.per_method = per_method(samples, p, vs, {k: v.method for k, v in ds.videos.items()})
    if frame["auc"] is None:
        rep.warnings.append(f"the {split} split holds one class only: AUC/EER are undefined")
    return rep
