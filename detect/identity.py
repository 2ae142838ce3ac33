"""Who is in a face track, and is it a face at all.

- `is_face`: a second opinion on a detector box. dlib HOG fires on things that are not faces (the mission
  patch on the astronaut's suit, in every frame of her clips); dlib's MMOD CNN detector, run on a padded
  crop of the box, does not. Measured on the astronaut clip (16 frames, 640x480): the face track's boxes
  have HOG scores 1.3-1.8 and the CNN finds the face in every crop (0.5-0.7 s each on 2 cores); the patch
  boxes score 0.02-0.08 and the CNN finds nothing in any of them (0.2-0.5 s). The 68-landmark fit looks
  plausible on the patch too, so landmarks alone cannot tell.
- `track_verdicts`: per track, a few of its boxes (highest HOG score first) checked with `is_face` (a box
  with a HOG score >= 0.5 counts as a face without the check); a track where none is a face is dropped; the identity embedding (dlib ResNet, 128-d) of its faces, averaged.
- `reference_embedding`: a person named by a photo file, a built-in photo name (astronaut, grace_hopper) or
  a wheel identity name (swap.samples.extra_identities), for `--hold-out-identity` and the sources CSV.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from swap.errors import InputError

SAME_PERSON = 0.6           # dlib's same-person distance
CHECKS_PER_TRACK = 3
SURE_FACE = 0.5             # a HOG detection scoring this much needs no second opinion (faces here: 1.3-1.8)


def is_face(rgb: np.ndarray, box: Sequence[float], margin: float = 0.5) -> bool:
    """Does dlib's CNN (MMOD) detector find a face overlapping `box` in a crop of `margin` x the box around
    it? Small boxes are upsampled to ~160 px first (the CNN's smallest face is ~80 px)."""
    import cv2

    from swap.faces import detect

    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    side = max(x1 - x0, y1 - y0, 1.0)
    g = side * margin
    cx0, cy0 = int(max(0, x0 - g)), int(max(0, y0 - g))
    cx1, cy1 = int(min(w, x1 + g)), int(min(h, y1 + g))
    if cx1 - cx0 < 8 or cy1 - cy0 < 8:
        return False
    crop = np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1])
    k = max(1.0, 160.0 / side)
    if k > 1.0:
        crop = cv2.resize(crop, (int(round(crop.shape[1] * k)), int(round(crop.shape[0] * k))),
                          interpolation=cv2.INTER_LINEAR)
    bx = ((x0 - cx0) * k, (y0 - cy0) * k, (x1 - cx0) * k, (y1 - cy0) * k)
    for d in detect(crop, "cnn", 0):
        ix = max(0.0, min(d[2], bx[2]) - max(d[0], bx[0]))
        iy = max(0.0, min(d[3], bx[3]) - max(d[1], bx[1]))
        inter = ix * iy
        union = (d[2] - d[0]) * (d[3] - d[1]) + (bx[2] - bx[0]) * (bx[3] - bx[1]) - inter
        if union > 0 and inter / union >= 0.2:
            return True
    return False


@dataclass
class TrackInfo:
    track: int
    frames: int
    face: bool = True                       # False: no box of it passed `is_face`
    checked: int = 0
    embedding: Optional[List[float]] = field(default=None, repr=False)
    mean_score: float = 0.0
    reason: str = ""                        # why it was dropped (if it was)

    def emb(self) -> Optional[np.ndarray]:
        return None if self.embedding is None else np.asarray(self.embedding, np.float32)


def track_verdicts(observations: Sequence[Tuple[int, np.ndarray, Sequence[float], Optional[np.ndarray], float]],
                   checks: int = CHECKS_PER_TRACK, embed: int = 4, verify: bool = True) -> Dict[int, TrackInfo]:
    """`observations`: (track, frame rgb, box, 68 landmarks or None, detector score) for every face seen.
    Per track: `checks` of its boxes (highest score first) go through `is_face` (verify=False: all faces);
    `embed` of them give the mean identity embedding."""
    from swap.faces import embedding

    by: Dict[int, list] = {}
    for ob in observations:
        by.setdefault(int(ob[0]), []).append(ob)
    out: Dict[int, TrackInfo] = {}
    for tid, obs in sorted(by.items()):
        obs = sorted(obs, key=lambda o: -float(o[4]))
        info = TrackInfo(tid, len(obs), mean_score=round(float(np.mean([o[4] for o in obs])), 4))
        if verify:
            ok = 0
            for o in obs[:checks]:
                info.checked += 1
                if float(o[4]) >= SURE_FACE or is_face(o[1], o[2]):
                    ok += 1
                    break
            if not ok:
                info.face = False
                info.reason = (f"not a face: dlib's CNN detector found no face in {info.checked} of its boxes "
                               f"(HOG score {info.mean_score:.2f})")
        embs = [embedding(o[1], np.asarray(o[3], np.float64)) for o in obs[:embed] if o[3] is not None]
        if embs:        # also for a track judged no face: the caller may keep it (nothing else confirmed)
            info.embedding = np.round(np.mean(embs, 0), 5).tolist()
        out[tid] = info
    return out


def _photo_embedding(rgb: np.ndarray, what: str) -> np.ndarray:
    from swap.faces import FaceAnalyzer

    try:
        return FaceAnalyzer(upsample=1, min_size=20).reference_embedding(np.ascontiguousarray(rgb))
    except InputError:
        raise InputError(f"no face found in {what}") from None


def reference_embedding(spec: str) -> Tuple[str, np.ndarray]:
    """(name, 128-d embedding) of a person given as a photo file, a built-in photo name or a wheel
    identity name."""
    p = Path(spec)
    if p.is_file():
        from swap.video import read_image

        return p.stem, _photo_embedding(read_image(p), str(p))
    from swap import samples as S

    if spec in S.PHOTOS:
        return spec, _photo_embedding(S.load_photo(spec), spec)
    try:
        extras = S.extra_identities()
    except Exception:  # noqa: BLE001 - wheels not fetched: the name is simply not known
        extras = []
    for x in extras:
        if x.name == spec:
            return spec, np.asarray(x.embedding, np.float32)
    known = list(S.PHOTOS) + [x.name for x in extras]
    raise InputError(f"unknown identity {spec!r}: give a photo file or one of {', '.join(known)}")


def nearest(emb: Optional[np.ndarray], refs: Dict[str, np.ndarray]) -> Tuple[Optional[str], float]:
    """The reference nearest to `emb` and its distance (None, inf without one)."""
    if emb is None or not refs:
        return None, float("inf")
    from swap.faces import distance

    best = min(refs, key=lambda n: distance(emb, refs[n]))
    return best, distance(emb, refs[best])
