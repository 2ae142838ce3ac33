"""`detect eval DS1 DS2 ...`: one detector on several datasets at once (e.g. the test split of its own
dataset plus an eval-only set built with `detect dataset --test-only` from other tools' videos): the
metrics of each dataset, and of all of them pooled (frame AUC over every face crop, video AUC over
every video, per manipulation method across datasets). `detect.evaluate.evaluate` stays the one-dataset
function; this reuses its helpers."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from swap.errors import InputError

from . import dataset as D
from . import metrics as M
from .evaluate import crop_probs, per_method, video_scores
from .model import Detector

SPLITS = D.SPLITS + ("all",)


@dataclass
class PooledReport:
    detector: str
    split: str
    threshold: float
    datasets: Dict[str, dict]               # path -> {"frame", "video", "videos", "per_method"}
    frame: dict                             # pooled
    video: dict
    videos: int
    per_method: Dict[str, dict]
    seconds: float
    warnings: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"detector": self.detector, "split": self.split, "threshold": self.threshold,
                "datasets": self.datasets, "pooled": {"frame": self.frame, "video": self.video,
                                                      "videos": self.videos, "per_method": self.per_method},
                "seconds": round(self.seconds, 3), "warnings": self.warnings}


def evaluate_many(datasets: Sequence[Path], detector_dir: Path, split: str = "test", batch_size: int = 32,
                  detector: Optional[Detector] = None, device: str = "cpu",
                  progress: Optional[Callable[[str], None]] = None) -> PooledReport:
    """Frame / video metrics of one detector on each dataset's `split` ("all": every sample) and pooled."""
    t0 = time.perf_counter()
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if not datasets:
        raise InputError("no dataset given")
    loaded = [(Path(p), D.load(p)) for p in datasets]       # every dataset readable before any work
    det = detector or Detector(detector_dir, device=device)
    thr = det.threshold
    per: Dict[str, dict] = {}
    warnings: List[str] = []
    all_y: List[int] = []
    all_p: List[np.ndarray] = []
    all_s: List[D.Sample] = []
    all_v: Dict[str, dict] = {}
    methods: Dict[str, Optional[str]] = {}
    for k, (path, ds) in enumerate(loaded):
        samples = ds.samples if split == "all" else ds.split(split)
        if not samples:
            warnings.append(f"{path}: no {split} samples")
            continue
        if progress:
            progress(f"{path} ({len(samples)} faces)")
        p = crop_probs(ds, samples, det, batch_size)
        y = np.array([s.label for s in samples])
        vs = video_scores(samples, p)
        vy = np.array([v["label"] for v in vs.values()])
        vp = np.array([v["score"] for v in vs.values()])
        meth = {f"{k}:{vid}": v.method for vid, v in ds.videos.items()}
        per[str(path)] = {"frame": M.compute(y, p, thr).to_dict(), "video": M.compute(vy, vp, thr).to_dict(),
                          "videos": len(vs),
                          "per_method": per_method(samples, p, vs, {v: e.method for v, e in ds.videos.items()})}
        if per[str(path)]["frame"]["auc"] is None:
            warnings.append(f"{path}: the {split} samples hold one class only (AUC undefined there)")
        tagged = [D.Sample(**{**s.__dict__, "video": f"{k}:{s.video}"}) for s in samples]
        all_s += tagged
        all_y += y.tolist()
        all_p.append(p)
        all_v.update({f"{k}:{vid}": r for vid, r in vs.items()})
        methods.update(meth)
    if not all_s:
        raise InputError(f"none of the datasets has {split} samples")
    p = np.concatenate(all_p)
    y = np.array(all_y)
    vy = np.array([v["label"] for v in all_v.values()])
    vp = np.array([v["score"] for v in all_v.values()])
    frame, video = M.compute(y, p, thr).to_dict(), M.compute(vy, vp, thr).to_dict()
    if frame["auc"] is None:
        warnings.append("the pooled samples hold one class only: AUC/EER are undefined")
    return PooledReport(str(detector_dir), split, thr, per, frame, video, len(all_v),
                        per_method(all_s, p, all_v, methods), time.perf_counter() - t0, warnings)
